//! Undoing spurious reductions (RFC 2883 §5, RFC 3522, RFC 4015) in the simulator: the same
//! reordering seeds with undo on and off.

use std::time::{Duration, Instant};

use tunstack::tcp::{Algorithm, TcpConfig};

use super::sim::LinkConfig;
use super::{
    fast_link, report, seed_offset, sim_tcp_config, transfer_or_panic, Direction, Summary, MB,
};

/// Reordering is not loss: with 10% of the datagrams held back 1 ms (a tenth of the RTT),
/// three later segments overtake one often enough that the sender retransmits and halves
/// its window for nothing. Undoing those reductions (RFC 2883 §5 D-SACK, RFC 3522
/// timestamps, RFC 4015) keeps the window, and the transfer, where the clean link has it.
/// Compared on the same seeds with undo (and F-RTO) switched off, with and without
/// timestamps (without, D-SACK alone tells), and with CUBIC (whose W_max and epoch are
/// restored too, RFC 9438 §4.9).
#[test]
fn undo_keeps_the_window_through_reordering() {
    let started = Instant::now();
    let link = LinkConfig {
        reorder: 0.10,
        reorder_delay: Duration::from_millis(1),
        ..fast_link()
    };
    let bytes = 10 * MB;
    let mut lines = Vec::new();
    let runs = [
        (true, Algorithm::NewReno, "TS"),
        (false, Algorithm::NewReno, "no TS"),
        (true, Algorithm::Cubic, "CUBIC TS"),
    ];
    for (timestamps, congestion, name) in runs {
        let on = TcpConfig {
            timestamps,
            congestion,
            ..sim_tcp_config()
        };
        let off = TcpConfig {
            undo: false,
            frto: false,
            ..on.clone()
        };
        let mut sums: [Summary; 2] = Default::default();
        let mut by: [u64; 3] = [0; 3];
        for (i, tcp) in [&on, &off].into_iter().enumerate() {
            for seed in (1..=20).map(|s| s + seed_offset()) {
                let t = transfer_or_panic(
                    "reorder, undo",
                    seed,
                    &link,
                    tcp,
                    bytes,
                    Direction::Download,
                );
                if i == 0 {
                    by[0] += t.sender.undos_dsack;
                    by[1] += t.sender.undos_timestamp;
                    by[2] += t.sender.undos_frto;
                }
                sums[i].add(&t, bytes);
            }
        }
        lines.push(sums[0].line(&format!("reo {name} undo"), Direction::Download, bytes));
        lines.push(sums[1].line(&format!("reo {name} no undo"), Direction::Download, bytes));
        let total = |s: &Summary| s.times.iter().sum::<Duration>();
        let (with, without) = (total(&sums[0]), total(&sums[1]));
        lines.push(format!(
            "[sim] reorder 10%, {name}: undos by D-SACK {} / timestamps {} / F-RTO {}; \
             reductions kept {} with undo, {} without; total time {with:.2?} with undo, \
             {without:.2?} without",
            by[0],
            by[1],
            by[2],
            sums[0].recoveries + sums[0].rtos - sums[0].undos,
            sums[1].recoveries + sums[1].rtos,
        ));
        assert!(sums[0].undos > 0, "{name}: nothing was undone");
        assert_eq!(sums[1].undos, 0, "{name}: undone although switched off");
        if !timestamps {
            assert!(by[0] > 0, "without timestamps D-SACK must find them");
        }
        assert!(
            with < without,
            "{name}: undo should save time: {with:?} with it, {without:?} without"
        );
    }
    report(&format!(
        "{}\n[sim] reorder, undo: real time {:.2?}",
        lines.join("\n"),
        started.elapsed()
    ));
}
