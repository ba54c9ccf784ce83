//! Human-readable output of the operator commands, rendered from the server's JSON `data`
//! (the same document `--json` prints). Times are shown as UTC ISO 8601 plus a relative part
//! ("2m ago", "in 45m") computed against the server's `now`, not the client's clock. Missing
//! fields print as `-`; nothing here panics on an unexpected document.

use crate::dns::rdata::civil_from_days;
use serde_json::Value;
use std::fmt::Write;

/// `2024-01-01T00:00:00Z`.
pub fn utc(t: u64) -> String {
    let t = t as i64;
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let s = t.rem_euclid(86400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// A duration in its two most significant units: `3d 2h`, `45m`, `1h 5m`, `30s`.
pub fn span(secs: u64) -> String {
    let units = [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (n, u) in units {
        if rest >= n {
            parts.push(format!("{}{u}", rest / n));
            rest %= n;
        } else if !parts.is_empty() {
            // keep the two parts adjacent: "1d 0h", not "1d 5m"
            parts.push(format!("0{u}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        return "0s".to_string();
    }
    if parts.len() == 2 && parts[1].starts_with('0') {
        parts.pop();
    }
    parts.join(" ")
}

/// `2024-01-01T00:00:00Z (2m ago)` / `(in 45m)` / `(now)`.
pub fn when(t: u64, now: u64) -> String {
    let rel = if t > now {
        format!("in {}", span(t - now))
    } else if t < now {
        format!("{} ago", span(now - t))
    } else {
        "now".to_string()
    };
    format!("{} ({rel})", utc(t))
}

/// The mnemonic of a DNSSEC algorithm number (RFC 8624 registry).
pub fn algorithm_name(a: u64) -> String {
    match a {
        5 => "RSASHA1".into(),
        7 => "NSEC3RSASHA1".into(),
        8 => "RSASHA256".into(),
        10 => "RSASHA512".into(),
        13 => "ECDSAP256SHA256".into(),
        14 => "ECDSAP384SHA384".into(),
        15 => "ED25519".into(),
        16 => "ED448".into(),
        n => format!("ALG{n}"),
    }
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

/// A string field; an empty string counts as missing.
fn s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str).filter(|x| !x.is_empty())
}

fn b(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn opt_when(t: Option<u64>, now: u64) -> String {
    t.map(|t| when(t, now)).unwrap_or_else(|| "-".into())
}

fn opt_num(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// One key on one line: `12345  ksk  ECDSAP256SHA256  files  active`.
fn key_line(k: &Value) -> String {
    format!(
        "{:<6} {:<4} {:<16} {:<10} {}",
        opt_num(u(k, "tag")),
        s(k, "role").unwrap_or("-"),
        u(k, "algorithm").map(algorithm_name).unwrap_or("-".into()),
        s(k, "keystore").unwrap_or("-"),
        s(k, "state").unwrap_or("-"),
    )
}

const W: usize = 26;

fn field(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<W$}{value}");
}

/// One zone's block of `signet status`.
pub fn zone_status(z: &Value, now: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", s(z, "zone").unwrap_or("?"));
    if let Some(a) = s(z, "alarm") {
        let _ = writeln!(out, "  ALARM: {a}");
    }
    field(&mut out, "source", s(z, "source").unwrap_or("-"));
    let served = b(z, "served");
    field(
        &mut out,
        "served",
        if served {
            "yes"
        } else {
            "NO (no signed version is being served)"
        },
    );
    field(&mut out, "signed serial", &opt_num(u(z, "signed_serial")));
    field(
        &mut out,
        "upstream serial",
        &opt_num(u(z, "upstream_serial")),
    );
    let last = match u(z, "last_refresh") {
        Some(t) => format!(
            "{}: {}",
            when(t, now),
            s(z, "last_refresh_result").unwrap_or("-")
        ),
        None => "never".into(),
    };
    field(&mut out, "last refresh", &last);
    field(
        &mut out,
        "last success",
        &opt_when(u(z, "last_success"), now),
    );
    field(
        &mut out,
        "next refresh",
        &opt_when(u(z, "next_refresh"), now),
    );
    let expires = u(z, "upstream_expires");
    field(&mut out, "upstream expires", &opt_when(expires, now));
    let last_success = u(z, "last_success");
    if b(z, "stale") {
        let silent = match last_success {
            Some(t) if t <= now => format!("for {}", span(now - t)),
            _ => "past SOA EXPIRE".into(),
        };
        let what = if served {
            "still serving and re-signing the last good copy"
        } else {
            "zone withdrawn"
        };
        let _ = writeln!(
            out,
            "  STALE: upstream silent {silent} (expired {}); {what}",
            opt_when(expires, now)
        );
    } else if let (Some(exp), Some(ok)) = (expires, last_success) {
        // the last quarter of the expire window without a successful refresh
        if exp > now && exp > ok && (exp - now) * 4 < exp - ok {
            let _ = writeln!(
                out,
                "  WARNING: upstream copy expires in {}; no successful refresh for {}",
                span(exp - now),
                span(now.saturating_sub(ok))
            );
        }
    }
    field(
        &mut out,
        "earliest signature expiry",
        &opt_when(u(z, "earliest_signature_expiry"), now),
    );
    field(
        &mut out,
        "next re-sign",
        &opt_when(u(z, "next_resign"), now),
    );
    let keys = arr(z, "keys");
    if keys.is_empty() {
        field(&mut out, "keys", "-");
    } else {
        let _ = writeln!(out, "  keys");
        for k in keys {
            let _ = writeln!(out, "    {}", key_line(k));
        }
    }
    waiting(&mut out, z, "  ");
    let events = arr(z, "events");
    if events.is_empty() {
        field(&mut out, "events", "-");
    } else {
        let _ = writeln!(out, "  events");
        for e in events {
            let _ = writeln!(
                out,
                "    {:<12} {}",
                s(e, "event").unwrap_or("?"),
                opt_when(u(e, "at"), now)
            );
        }
    }
    out
}

/// `signet status`: `{"now", "zones": [...]}`, one block per zone, blank line between.
pub fn status(data: &Value) -> String {
    let now = u(data, "now").unwrap_or(0);
    let zones = arr(data, "zones");
    if zones.is_empty() {
        return "no zones configured\n".into();
    }
    zones
        .iter()
        .map(|z| zone_status(z, now))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `signet keys`: `{"zone", "now", "keys": [...]}`, one block per key with its timing.
pub fn keys(data: &Value) -> String {
    let now = u(data, "now").unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{}", s(data, "zone").unwrap_or("?"));
    let keys = arr(data, "keys");
    if keys.is_empty() {
        let _ = writeln!(out, "  no keys");
    }
    for k in keys {
        let _ = writeln!(out, "  {}", key_line(k));
        for t in ["created", "published", "active", "retired", "removed"] {
            let _ = writeln!(out, "    {t:<10} {}", opt_when(u(k, t), now));
        }
        if let Some(t) = u(k, "roll_at") {
            let _ = writeln!(out, "    {:<10} {}", "rollover", opt_when(Some(t), now));
        }
        if let Some(n) = k.get("next").filter(|n| !n.is_null()) {
            let what = match (s(n, "record"), s(n, "from"), s(n, "to")) {
                (Some(r), Some(f), Some(t)) => format!("{r} {f} → {t}"),
                _ => "rollover".to_string(),
            };
            let at = u(n, "at")
                .map(|t| opt_when(Some(t), now))
                .unwrap_or_else(|| "(no date yet)".into());
            let _ = writeln!(
                out,
                "    {:<10} {what} {at}: waits for {}",
                "next",
                s(n, "waits_for").unwrap_or("?")
            );
        }
    }
    waiting(&mut out, data, "  ");
    out
}

/// The key state machine's next transitions and what they wait for (`waiting_for`).
fn waiting(out: &mut String, v: &Value, indent: &str) {
    let w = arr(v, "waiting_for");
    if w.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}key transitions waiting for");
    for x in w {
        let _ = writeln!(out, "{indent}  {}", x.as_str().unwrap_or("?"));
    }
}

/// `signet ds`: the DS records in presentation format, one per line.
pub fn ds(data: &Value) -> String {
    let mut out = String::new();
    for d in arr(data, "ds") {
        if let Some(r) = s(d, "record") {
            let _ = writeln!(out, "{r}");
        }
    }
    out
}

/// `signet retransfer|resign|notify`: the zone task's answer and the state it reached.
pub fn command(cmd: &str, data: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {cmd}: {}",
        s(data, "zone").unwrap_or("?"),
        s(data, "result").unwrap_or("done")
    );
    if let Some(st) = data.get("status") {
        let _ = writeln!(
            out,
            "  signed serial {}, upstream serial {}, {}{}",
            opt_num(u(st, "signed_serial")),
            opt_num(u(st, "upstream_serial")),
            if b(st, "served") {
                "served"
            } else {
                "NOT served"
            },
            if b(st, "stale") { ", STALE" } else { "" }
        );
        waiting(&mut out, st, "  ");
    }
    out
}

/// `signet reload`: the reload task's answer.
pub fn reload(data: &Value) -> String {
    format!("reload: {}\n", s(data, "result").unwrap_or("done"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_704_067_200 + 3661), "2024-01-01T01:01:01Z");
        assert_eq!(span(0), "0s");
        assert_eq!(span(30), "30s");
        assert_eq!(span(120), "2m");
        assert_eq!(span(2700), "45m");
        assert_eq!(span(3900), "1h 5m");
        assert_eq!(span(86400 * 3 + 7200 + 59), "3d 2h");
        assert_eq!(span(86400 + 60), "1d");
        assert_eq!(when(100, 220), "1970-01-01T00:01:40Z (2m ago)");
        assert_eq!(when(2800, 100), "1970-01-01T00:46:40Z (in 45m)");
        assert_eq!(when(5, 5), "1970-01-01T00:00:05Z (now)");
    }

    #[test]
    fn status_block() {
        let now = 1_000_000;
        let data = json!({"now": now, "zones": [{
            "zone": "example.org.", "source": "primaries 192.0.2.1:53",
            "upstream_serial": 5, "signed_serial": 9, "served": true,
            "last_refresh": now - 120, "last_refresh_result": "timeout",
            "last_success": now - 86400 * 8, "next_refresh": now + 2700,
            "upstream_expires": now - 86400, "stale": true, "alarm": "upstream silent past EXPIRE",
            "earliest_signature_expiry": now + 86400 * 13, "next_resign": null,
            "keys": [{"tag": 12345, "role": "csk", "algorithm": 13, "keystore": "files",
                      "state": "active", "created": 0}],
            "events": [{"event": "refresh", "at": now + 2700}]
        }]});
        let out = status(&data);
        assert!(
            out.starts_with("example.org.\n  ALARM: upstream silent past EXPIRE\n  source"),
            "{out}"
        );
        assert!(out.contains("(2m ago): timeout"), "{out}");
        assert!(
            out.contains("next refresh              1970-01-12T14:31:40Z (in 45m)"),
            "{out}"
        );
        assert!(out.contains("STALE: upstream silent for 8d"), "{out}");
        assert!(out.contains("still serving"), "{out}");
        assert!(
            out.contains("12345  csk  ECDSAP256SHA256  files      active"),
            "{out}"
        );
        assert!(out.contains("next re-sign              -"), "{out}");
        assert!(
            out.contains("refresh      1970-01-12T14:31:40Z (in 45m)"),
            "{out}"
        );
    }

    #[test]
    fn expire_warning_and_garbage() {
        let now = 1_000_000;
        let z = json!({"zone": "a.", "served": true, "last_success": now - 900,
                       "upstream_expires": now + 100, "stale": false});
        assert!(zone_status(&z, now).contains("WARNING: upstream copy expires in 1m"));
        let z = json!({"zone": "a.", "served": true, "last_success": now - 100,
                       "upstream_expires": now + 900, "stale": false});
        assert!(!zone_status(&z, now).contains("WARNING"));
        // nothing here panics on unexpected documents
        for v in [
            json!(null),
            json!([1, 2]),
            json!({"zones": [1, "x", null]}),
            json!("s"),
        ] {
            let _ = status(&v);
            let _ = keys(&v);
            let _ = ds(&v);
            let _ = command("resign", &v);
            let _ = reload(&v);
        }
        assert_eq!(
            status(&json!({"now": 1, "zones": []})),
            "no zones configured\n"
        );
    }
}
