//! Durations and key lifetimes as written in the configuration.
//!
//! Accepted forms (case-insensitive):
//!
//! * plain integer seconds: `3600` (a TOML integer or a string of digits);
//! * unit form, one or more `<number><unit>` pairs, largest unit first is customary but not
//!   required: `30s`, `5m`, `1h`, `14d`, `2w`, `1y`, `1h30m`, `1d12h`. Units: `s` second,
//!   `m` minute, `h` hour, `d` day, `w` week, `y` year (365 days, as in BIND);
//! * ISO 8601 durations as BIND's `dnssec-policy` accepts them: `P30D`, `PT2H`, `P1DT12H`, `P2W`,
//!   `P1Y`, `P1M` (a month is 30 days and a year 365 days, as in BIND; months before `T`,
//!   minutes after it). Fractions are not accepted.
//!
//! `unlimited` is only a [`Lifetime`], never a plain duration: a signature validity or a TTL
//! cannot be infinite.

use std::fmt;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const WEEK: u64 = 7 * DAY;
/// BIND's month in ISO 8601 durations.
const MONTH: u64 = 30 * DAY;
/// BIND's year in ISO 8601 durations.
const YEAR: u64 = 365 * DAY;

/// How long a key lives before it is rolled: forever, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifetime {
    /// The key is never rolled automatically (`lifetime = "unlimited"`).
    Unlimited,
    /// The key is rolled this many seconds after it became active.
    Secs(u64),
}

impl Lifetime {
    /// The lifetime in seconds, `None` when unlimited.
    pub fn secs(self) -> Option<u64> {
        match self {
            Lifetime::Unlimited => None,
            Lifetime::Secs(s) => Some(s),
        }
    }
}

impl fmt::Display for Lifetime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Unlimited => f.write_str("unlimited"),
            Lifetime::Secs(s) => f.write_str(&format_duration(*s)),
        }
    }
}

/// Parses a duration (see the module documentation) into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(
            "empty duration: write e.g. \"30s\", \"5m\", \"1h\", \"14d\" or \"P30D\"".into(),
        );
    }
    if t.eq_ignore_ascii_case("unlimited") {
        return Err("\"unlimited\" is only allowed for key lifetimes; write a finite duration such as \"14d\"".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map_err(|_| format!("duration {t:?} is too large"));
    }
    let lower = t.to_ascii_lowercase();
    let result = if let Some(rest) = lower.strip_prefix('p') {
        parse_iso(rest)
    } else {
        parse_units(&lower)
    };
    result.map_err(|why| {
        format!(
            "invalid duration {t:?}: {why} (write e.g. \"30s\", \"1h30m\", \"14d\", \"2w\", \"P30D\", \"PT2H\")"
        )
    })
}

/// Parses a key lifetime: `unlimited` or a non-zero duration.
pub fn parse_lifetime(s: &str) -> Result<Lifetime, String> {
    if s.trim().eq_ignore_ascii_case("unlimited") {
        return Ok(Lifetime::Unlimited);
    }
    match parse_duration(s)? {
        0 => Err("a key lifetime of 0 is meaningless: write \"unlimited\" for a key that is never rolled".into()),
        n => Ok(Lifetime::Secs(n)),
    }
}

/// Formats seconds in the unit form, largest units first: `1d12h`, `90s`, `0s`.
pub fn format_duration(mut secs: u64) -> String {
    if secs == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("w", WEEK),
        ("d", DAY),
        ("h", HOUR),
        ("m", MINUTE),
        ("s", 1),
    ] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

/// Accumulates `n * unit` into `total` with overflow checks.
fn add(total: u64, n: u64, unit: u64) -> Result<u64, String> {
    n.checked_mul(unit)
        .and_then(|v| total.checked_add(v))
        .ok_or_else(|| "too large".to_string())
}

/// Splits `s` into (number, unit character) pairs.
fn pairs(s: &str) -> Result<Vec<(u64, char)>, String> {
    let mut out = Vec::new();
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if c.is_ascii_alphabetic() {
            if digits.is_empty() {
                return Err(format!("unit '{c}' without a number before it"));
            }
            let n = digits.parse::<u64>().map_err(|_| "too large".to_string())?;
            out.push((n, c));
            digits.clear();
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    if !digits.is_empty() {
        return Err(format!("number {digits} has no unit"));
    }
    Ok(out)
}

fn parse_units(s: &str) -> Result<u64, String> {
    let mut total = 0u64;
    let mut seen = String::new();
    for (n, unit) in pairs(s)? {
        if seen.contains(unit) {
            return Err(format!("unit '{unit}' appears twice"));
        }
        seen.push(unit);
        let size = match unit {
            's' => 1,
            'm' => MINUTE,
            'h' => HOUR,
            'd' => DAY,
            'w' => WEEK,
            'y' => YEAR,
            other => return Err(format!("unknown unit '{other}' (use s, m, h, d, w or y)")),
        };
        total = add(total, n, size)?;
    }
    Ok(total)
}

fn parse_iso(rest: &str) -> Result<u64, String> {
    let (date, time) = match rest.split_once('t') {
        Some((d, t)) => {
            if t.is_empty() {
                return Err("'T' must be followed by hours, minutes or seconds".into());
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return Err("'P' must be followed by at least one component".into());
    }
    let mut total = 0u64;
    // Components must appear in this order, each at most once.
    let date_order = ['y', 'm', 'w', 'd'];
    let mut last = 0usize;
    for (n, unit) in pairs(date)? {
        let pos = date_order.iter().position(|&u| u == unit).ok_or_else(|| {
            format!(
                "unknown date component '{}' (use Y, M, W, D)",
                unit.to_ascii_uppercase()
            )
        })?;
        if pos < last {
            return Err(
                "date components must be in the order Y, M, W, D, each at most once".into(),
            );
        }
        last = pos + 1;
        let size = [YEAR, MONTH, WEEK, DAY][pos];
        total = add(total, n, size)?;
    }
    if let Some(time) = time {
        let time_order = ['h', 'm', 's'];
        let mut last = 0usize;
        for (n, unit) in pairs(time)? {
            let pos = time_order.iter().position(|&u| u == unit).ok_or_else(|| {
                format!(
                    "unknown time component '{}' (use H, M, S)",
                    unit.to_ascii_uppercase()
                )
            })?;
            if pos < last {
                return Err(
                    "time components must be in the order H, M, S, each at most once".into(),
                );
            }
            last = pos + 1;
            let size = [HOUR, MINUTE, 1][pos];
            total = add(total, n, size)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_forms() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("14d"), Ok(14 * 86400));
        assert_eq!(parse_duration("2w"), Ok(14 * 86400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1d12h"), Ok(36 * 3600));
        assert_eq!(parse_duration("1H30M"), Ok(5400));
        assert_eq!(parse_duration("1y"), Ok(365 * 86400));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration(" 90s "), Ok(90));
    }

    #[test]
    fn iso_forms() {
        assert_eq!(parse_duration("P30D"), Ok(30 * 86400));
        assert_eq!(parse_duration("PT2H"), Ok(7200));
        assert_eq!(parse_duration("P1DT12H"), Ok(36 * 3600));
        assert_eq!(parse_duration("P2W"), Ok(14 * 86400));
        assert_eq!(parse_duration("PT1H30M15S"), Ok(5415));
        assert_eq!(parse_duration("P1M"), Ok(30 * 86400));
        assert_eq!(parse_duration("PT1M"), Ok(60));
        assert_eq!(parse_duration("P1Y"), Ok(365 * 86400));
        assert_eq!(parse_duration("p1d"), Ok(86400));
    }

    #[test]
    fn bad_durations() {
        for bad in [
            "",
            "h",
            "1x",
            "1h1h",
            "1.5h",
            "-1s",
            "P",
            "PT",
            "P1H",
            "PT1D",
            "P1D1Y",
            "1 h",
            "unlimited",
            "99999999999999999999s",
            "999999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        let msg = parse_duration("unlimited").unwrap_err();
        assert!(msg.contains("lifetime"), "{msg}");
        let msg = parse_duration("5x").unwrap_err();
        assert!(msg.contains("unknown unit"), "{msg}");
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("unlimited"), Ok(Lifetime::Unlimited));
        assert_eq!(parse_lifetime("Unlimited"), Ok(Lifetime::Unlimited));
        assert_eq!(parse_lifetime("P1Y"), Ok(Lifetime::Secs(365 * 86400)));
        assert_eq!(parse_lifetime("30d"), Ok(Lifetime::Secs(30 * 86400)));
        assert!(parse_lifetime("0").is_err());
        assert_eq!(Lifetime::Secs(86400 + 3600).to_string(), "1d1h");
        assert_eq!(Lifetime::Unlimited.to_string(), "unlimited");
    }

    #[test]
    fn format_round_trips() {
        for s in [
            0u64, 1, 59, 60, 3599, 3600, 86399, 86400, 1_209_600, 1_234_567,
        ] {
            assert_eq!(parse_duration(&format_duration(s)), Ok(s));
        }
    }
}
