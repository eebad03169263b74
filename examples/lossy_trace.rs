//! Writes a made-up `--trace` of a lossy transfer to standard output (`tunstack::plot::synth`),
//! for trying `tunstack plot` without a network; README's picture was made from it:
//!
//! ```sh
//! cargo run --release --example lossy_trace -- 1500000 0.02 0.01 7 > lossy.jsonl
//! target/release/tunstack plot lossy.jsonl -o lossy.svg
//! ```
//!
//! Arguments, all optional: BYTES, injected drop chance, path loss chance, seed.

use std::io::Write as _;

use tunstack::plot::synth::{lossy_transfer, Lossy};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| args.get(i).map(|a| a.parse::<f64>().expect("a number"));
    let defaults = Lossy::default();
    let spec = Lossy {
        bytes: number(0).map_or(defaults.bytes, |b| b as u64),
        injected: number(1).unwrap_or(defaults.injected),
        path: number(2).unwrap_or(defaults.path),
        seed: number(3).map_or(defaults.seed, |s| s as u64),
        ..defaults
    };
    let made = lossy_transfer(&spec);
    std::io::stdout()
        .write_all(made.text.as_bytes())
        .expect("stdout");
    eprintln!(
        "{} lines, {} injected drops, retransmissions {:?}",
        made.text.lines().count(),
        made.drops,
        made.rexmits
    );
}
