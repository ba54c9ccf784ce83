//! Times for humans.

use crate::dns::rdata::civil_from_days;

/// `2026-05-01T12:00:00Z` for a Unix time.
pub fn fmt_time(t: u64) -> String {
    let secs = t.min(i64::MAX as u64) as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::fmt_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::fmt_time(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
