//! `config key=value` lines onto `StackConfig`/`TcpConfig`, plus the runner's own knobs.

use std::time::Duration;

use tunstack::stack::StackConfig;

use super::parse::Script;
use super::run::{Failure, LOCAL_IP, PEER_ISN};

/// The stack configuration from `config` lines, plus the runner's own knobs.
pub fn stack_config(path: &str, script: &Script) -> Result<(StackConfig, Duration, u32), Failure> {
    let bad = |line: usize, msg: String| Failure::Setup(format!("{path}:{line}: {msg}"));
    let mtu = match script.config.iter().find(|(_, k, _)| k == "mtu") {
        Some((line, _, v)) => v
            .parse()
            .map_err(|_| bad(*line, format!("bad mtu `{v}`")))?,
        None => 1500,
    };
    // Fixed secret and seed: the ISN, port and timestamp offset are the same every run.
    let mut config = StackConfig::new(LOCAL_IP, mtu, [7; 16], 1);
    let mut tolerance = Duration::ZERO;
    let mut peer_isn = PEER_ISN;
    for (line, key, value) in &script.config {
        let line = *line;
        let num = || -> Result<usize, Failure> {
            value
                .parse()
                .map_err(|_| bad(line, format!("`{key}` needs a number, got `{value}`")))
        };
        let dur = || -> Result<Duration, Failure> {
            humantime::parse_duration(value).map_err(|_| {
                bad(
                    line,
                    format!("`{key}` needs a duration like 40ms, got `{value}`"),
                )
            })
        };
        let on = || -> Result<bool, Failure> {
            match value.as_str() {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err(bad(line, format!("`{key}` is on or off, got `{value}`"))),
            }
        };
        match key.as_str() {
            "backlog" => {
                config.backlog = num()?;
                continue;
            }
            "syn_cookies" => {
                config.syn_cookies = on()?;
                continue;
            }
            _ => {}
        }
        let tcp = &mut config.tcp;
        match key.as_str() {
            "mtu" => {}
            "mss" => tcp.mss = num()? as u16,
            "recv_buffer" => tcp.recv_buffer = num()?,
            "recv_buffer_max" => tcp.recv_buffer_max = num()?,
            "send_buffer" => tcp.send_buffer = num()?,
            "send_buffer_max" => tcp.send_buffer_max = num()?,
            "window_scale" | "window_scaling" => tcp.window_scaling = on()?,
            "timestamps" => tcp.timestamps = on()?,
            "sack" => tcp.sack = on()?,
            "rack" => tcp.rack = on()?,
            "tlp" => tcp.tlp = on()?,
            "undo" => tcp.undo = on()?,
            "frto" => tcp.frto = on()?,
            "nagle" => tcp.nagle = on()?,
            "delayed_ack" => tcp.delayed_ack = dur()?,
            "ack_stretch" => tcp.ack_stretch = num()? as u32,
            "sack_compression" => tcp.sack_compression = num()? as u32,
            "rto_initial" => tcp.rto.initial = dur()?,
            "rto_min" => tcp.rto.min = dur()?,
            "rto_max" => tcp.rto.max = dur()?,
            "time_wait" => tcp.time_wait = dur()?,
            "user_timeout" => tcp.user_timeout = dur()?,
            "syn_retries" => tcp.syn_retries = num()? as u32,
            "syn_linear_timeouts" => tcp.syn_linear_timeouts = num()? as u32,
            "data_retries" => tcp.data_retries = num()? as u32,
            "challenge_acks_per_second" => tcp.challenge_acks_per_second = num()? as u32,
            "keepalive" => tcp.keepalive = Some(dur()?),
            "congestion" => {
                tcp.congestion = match value.as_str() {
                    "newreno" => tunstack::tcp::Algorithm::NewReno,
                    "cubic" => tunstack::tcp::Algorithm::Cubic,
                    _ => {
                        return Err(bad(
                            line,
                            format!("`congestion` is newreno or cubic, got `{value}`"),
                        ))
                    }
                }
            }
            "keepalive_probes" => tcp.keepalive_probes = num()? as u32,
            "tolerance" => tolerance = dur()?,
            "peer_isn" => peer_isn = num()? as u32,
            _ => return Err(bad(line, format!("unknown config key `{key}`"))),
        }
    }
    Ok((config, tolerance, peer_isn))
}
