//! One access-log line per request, in the common log format that log tools read:
//! `host ident user [day/Mon/year:HH:MM:SS +0000] "request line" status bytes`.

use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The log line for one answered request. `request_line` is quoted with `"` and `\`
/// escaped, so a hostile target cannot forge a second field or line.
pub fn line(
    client: Ipv4Addr,
    at: SystemTime,
    request_line: &str,
    status: u16,
    bytes: u64,
) -> String {
    let mut quoted = String::with_capacity(request_line.len());
    for c in request_line.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    let size = if bytes == 0 {
        "-".to_string()
    } else {
        bytes.to_string()
    };
    format!(
        "{client} - - [{}] \"{quoted}\" {status} {size}",
        clf_time(at)
    )
}

/// `10/Oct/2000:13:55:36 +0000`, in UTC.
fn clf_time(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02} +0000",
        MONTHS[month as usize - 1],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn common_log_format() {
        // 2000-10-10 13:55:36 UTC, the format's classic example.
        let at = UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(
            line(
                Ipv4Addr::new(10, 77, 1, 1),
                at,
                "GET /a HTTP/1.1",
                200,
                2326
            ),
            "10.77.1.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a HTTP/1.1\" 200 2326"
        );
        let hostile = line(Ipv4Addr::LOCALHOST, at, "GET /\"x\n HTTP/1.1", 404, 0);
        assert!(
            hostile.ends_with("\"GET /\\\"x\\x0a HTTP/1.1\" 404 -"),
            "{hostile}"
        );
    }

    #[test]
    fn calendar_edges() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
