//! Time as the database stores it: Unix milliseconds.

use time::OffsetDateTime;

pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// A stored timestamp as people read it in the console (UTC, to the second).
pub fn display(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "—".into())
}

/// A stored timestamp on the wire: RFC 3339 in UTC, to the millisecond.
pub fn iso(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// A configured duration in words: "24 hours", "90 seconds".
pub fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        _ if s.is_multiple_of(86_400) && s >= 86_400 * 2 => (s / 86_400, "days"),
        _ if s.is_multiple_of(3600) && s >= 3600 => (s / 3600, if s == 3600 { "hour" } else { "hours" }),
        _ if s.is_multiple_of(60) && s >= 60 => (s / 60, if s == 60 { "minute" } else { "minutes" }),
        _ => (s, if s == 1 { "second" } else { "seconds" }),
    };
    format!("{n} {unit}")
}

/// Time left until `at` in the largest whole unit: "in 29 days",
/// "in 3 hours", "expired 2 days ago".
pub fn countdown(at: i64, now: i64) -> String {
    fn amount(ms: i64) -> String {
        let s = ms / 1000;
        let (n, unit) = match s {
            _ if s >= 2 * 86_400 => (s / 86_400, "days"),
            _ if s >= 2 * 3600 => (s / 3600, "hours"),
            _ if s >= 2 * 60 => (s / 60, "minutes"),
            _ => (s, if s == 1 { "second" } else { "seconds" }),
        };
        format!("{n} {unit}")
    }
    if at > now {
        format!("in {}", amount(at - now))
    } else {
        format!("expired {} ago", amount(now - at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_as_words() {
        assert_eq!(human(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(human(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(90)), "90 seconds");
        assert_eq!(human(Duration::from_secs(120)), "2 minutes");
    }

    #[test]
    fn countdowns_use_the_largest_whole_unit() {
        let day = 86_400_000;
        assert_eq!(countdown(30 * day, 0), "in 30 days");
        assert_eq!(countdown(5 * 3_600_000, 0), "in 5 hours");
        assert_eq!(countdown(1000, 0), "in 1 second");
        assert_eq!(countdown(0, 2 * day + 5), "expired 2 days ago");
    }

    #[test]
    fn wire_times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
