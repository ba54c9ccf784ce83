//! `signet keys ZONE --plan`: the dry run of a zone's key policy — every key event to come,
//! with its date, from the zone's key state until a horizon.
//!
//! It runs **offline**, from the configuration (like `ds --offline`), without asking the
//! server: the zone's key state is read from `state-dir/zones/NAME/keys.json` (written
//! crash-safely by the server, so a concurrent read sees one whole version), or the schedule
//! starts from scratch — a zone not signed yet — when there is none. The reason for offline:
//! the schedule depends only on the state file and the policy, so it also answers "what would
//! this policy do?" before the first `signet serve`, or for a policy just edited and not yet
//! reloaded (it uses the policy in the configuration file given with `-c`).
//!
//! The simulation ([`crate::kasp::simulate`]) drives the same state machine the zone task
//! drives, and assumes the world is prompt: each signed version is published at once, the
//! parent publishes the requested DS set at once and checkds sees it within its poll interval
//! (an hour). A real parent that is slower delays every DS-dependent step by that much; the
//! dates of lifetimes and of cache timers are exact.

use serde_json::{json, Value};
use std::fmt::Write as _;

use crate::config::Config;
use crate::kasp::{self, fmt_time, ZoneKeyState};
use crate::zone::keys;

/// Default horizon of the dry run when neither `--until` nor `--rollovers` is given: one year.
pub const DEFAULT_HORIZON: u64 = 365 * 86_400;
/// Longest horizon accepted: ten years. The simulation steps through every event, and beyond
/// that the schedule says nothing an operator can act on.
pub const MAX_HORIZON: u64 = 10 * 365 * 86_400;

/// The dry run of `zone` from `now` for `horizon` seconds, as the JSON document `--json`
/// prints: `{"zone", "policy", "from", "until", "state", "assumptions", "events": [...],
/// "keys": [...]}`. With `rollovers = Some(n)`, the schedule ends when the `n`-th key retired
/// within the horizon is gone from every cache (a rollover retires one key per role it
/// replaces; `until` is then that time), or at the horizon if fewer keys retire. Each event is `{"at", "time", "event", "what", "key", "algorithm",
/// "role"}`, each key `{"tag", "algorithm", "role", "created", "published", "active",
/// "retired", "ds_submit", "ds_omnipresent", "ds_withdraw", "removed", "purged"}` (dates
/// within the horizon; `null` when not).
pub fn keys_plan(
    cfg: &Config,
    zone: &str,
    now: u64,
    horizon: u64,
    rollovers: Option<usize>,
) -> Result<Value, String> {
    let zcfg = cfg
        .zone(zone)
        .ok_or_else(|| format!("zone {zone} is not in the configuration"))?;
    if horizon == 0 || horizon > MAX_HORIZON {
        return Err(format!(
            "--until must be between 1s and {} (10 years)",
            crate::config::format_duration(MAX_HORIZON)
        ));
    }
    let policy = cfg.policy_for(zcfg);
    let dir = keys::zone_state_dir(cfg, &zcfg.name);
    let path = dir.join(keys::KEY_STATE_FILE);
    let (state, source) = match std::fs::read_to_string(&path) {
        Ok(text) => (
            ZoneKeyState::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            path.display().to_string(),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            ZoneKeyState::new(),
            "none: the zone has no key state yet; the schedule starts from scratch".to_string(),
        ),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let mut until = now.saturating_add(horizon);
    let mut events = kasp::simulate(&state, policy, now, until);
    let mut note = None;
    if let Some(n) = rollovers {
        if n == 0 {
            return Err("--rollovers must be at least 1".into());
        }
        let mut retired: Vec<(u64, Option<u64>)> = kasp::key_timelines(&events)
            .iter()
            .filter_map(|t| t.retired.map(|r| (r, t.removed)))
            .collect();
        retired.sort();
        match retired.get(n - 1) {
            Some((_, Some(removed))) => {
                until = *removed;
                events.retain(|e| e.at <= until);
            }
            Some((_, None)) => {
                note = Some(format!(
                    "the {n}th retired key is still in the caches at the horizon"
                ))
            }
            None => {
                note = Some(format!(
                    "only {} key(s) retire within the horizon",
                    retired.len()
                ))
            }
        }
    }
    let timelines = kasp::key_timelines(&events);
    let ev: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "at": e.at,
                "time": fmt_time(e.at),
                "event": e.event,
                "what": e.what,
                "key": e.key.map(|k| k.tag),
                "algorithm": e.key.map(|k| k.algorithm),
                "role": e.role.map(|r| r.to_string()),
            })
        })
        .collect();
    let ks: Vec<Value> = timelines
        .iter()
        .map(|t| {
            json!({
                "tag": t.key.tag,
                "algorithm": t.key.algorithm,
                "role": t.role.map(|r| r.to_string()),
                "created": t.created,
                "published": t.published,
                "active": t.active,
                "retired": t.retired,
                "ds_submit": t.ds_submit,
                "ds_omnipresent": t.ds_omnipresent,
                "ds_withdraw": t.ds_withdraw,
                "removed": t.removed,
                "purged": t.purged,
            })
        })
        .collect();
    Ok(json!({
        "zone": zcfg.name,
        "policy": policy.name,
        "from": now,
        "until": until,
        "state": source,
        "assumptions": "each version is published at once; the parent publishes the requested DS set at once and checkds sees it within an hour",
        "note": note,
        "events": ev,
        "keys": ks,
    }))
}

/// The human form of [`keys_plan`]'s document.
pub fn format_plan(v: &Value) -> String {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    let u = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64);
    let when = |t: Option<u64>| t.map(fmt_time).unwrap_or_else(|| "-".into());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: key schedule of policy {} from {} until {}",
        s(v, "zone"),
        s(v, "policy"),
        when(u(v, "from")),
        when(u(v, "until"))
    );
    let _ = writeln!(out, "  key state: {}", s(v, "state"));
    let _ = writeln!(out, "  assuming: {}", s(v, "assumptions"));
    if let Some(n) = v.get("note").and_then(Value::as_str) {
        let _ = writeln!(out, "  note: {n}");
    }
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if events.is_empty() {
        let _ = writeln!(out, "  nothing happens within the horizon");
    }
    for e in &events {
        let _ = writeln!(out, "  {}  {}", when(u(e, "at")), s(e, "what"));
    }
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !keys.is_empty() {
        let _ = writeln!(out, "keys");
        for k in &keys {
            let _ = writeln!(
                out,
                "  {} {} algorithm {}",
                u(k, "tag").map(|t| t.to_string()).unwrap_or_default(),
                s(k, "role"),
                u(k, "algorithm").map(|t| t.to_string()).unwrap_or_default()
            );
            for f in [
                "created",
                "published",
                "active",
                "ds_submit",
                "ds_omnipresent",
                "retired",
                "ds_withdraw",
                "removed",
                "purged",
            ] {
                if let Some(t) = u(k, f) {
                    let _ = writeln!(out, "    {f:<15} {}", fmt_time(t));
                }
            }
        }
    }
    out
}
