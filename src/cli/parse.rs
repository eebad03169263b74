//! Value parsers for the flags: modes, algorithms, rates, durations; each error says what to
//! write instead.

use crate::host::Mode;
use crate::tcp::Algorithm;

pub(super) fn parse_mode(text: &str) -> Result<Mode, String> {
    match text.to_ascii_lowercase().as_str() {
        "tun" => Ok(Mode::Tun),
        "tap" => Ok(Mode::Tap),
        _ => Err(format!("unknown mode '{text}' (use tun or tap)")),
    }
}

pub(super) fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    match text.to_ascii_lowercase().as_str() {
        "cubic" => Ok(Algorithm::Cubic),
        "newreno" | "reno" => Ok(Algorithm::NewReno),
        _ => Err(format!(
            "unknown congestion control '{text}' (use cubic or newreno)"
        )),
    }
}

pub(super) fn parse_user_agent(text: &str) -> Result<String, String> {
    if !crate::http::headers::is_valid_header_value(text) {
        return Err("the user agent holds a control character (CR, LF, NUL...)".to_owned());
    }
    Ok(text.to_owned())
}

/// Parses a `--limit-rate` value like curl: bytes per second, with an optional `k`, `m` or `g`
/// suffix (either case) meaning 1024, 1024² or 1024³.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let (digits, multiplier) = match trimmed.char_indices().last() {
        Some((at, unit)) if unit.is_ascii_alphabetic() => {
            let multiplier = match unit.to_ascii_lowercase() {
                'k' => 1u64 << 10,
                'm' => 1 << 20,
                'g' => 1 << 30,
                _ => return Err(format!("unknown unit '{unit}' (use k, m or g, e.g. 500k)")),
            };
            (&trimmed[..at], multiplier)
        }
        _ => (trimmed, 1),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a rate (bytes per second, e.g. 500k or 2m)"))?;
    match number.checked_mul(multiplier) {
        Some(0) => Err("the rate must be more than zero".to_owned()),
        Some(rate) => Ok(rate),
        None => Err(format!("'{text}' is too large")),
    }
}

pub(super) fn parse_positive_duration(text: &str) -> Result<humantime::Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|error| format!("{error} (try e.g. 30s, 2m)"))?;
    if duration.is_zero() {
        return Err("the duration must be longer than zero".to_owned());
    }
    Ok(duration.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_bytes_per_second_with_binary_units() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("500k"), Ok(512_000));
        assert_eq!(parse_rate("500K"), Ok(512_000));
        assert_eq!(parse_rate("2m"), Ok(2 << 20));
        assert_eq!(parse_rate("1G"), Ok(1 << 30));
        for bad in [
            "",
            "k",
            "0",
            "0k",
            "-1k",
            "1.5m",
            "5x",
            "12 kb",
            "99999999999999999999g",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
