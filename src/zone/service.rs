//! The running signer: one task per zone, owning that zone's state and its schedule.
//!
//! ```text
//!            start
//!              │ signed copy in state-dir? ──yes──▶ publish it at once (no waiting for upstream)
//!              ▼
//!   ┌──────▶ refresh: file → load it          primaries → SOA ─newer─▶ IXFR ─fail─▶ AXFR
//!   │          │ invalid / unreachable ──▶ log, keep serving the last good version, RETRY later
//!   │          │ new content, or no signed copy, or signatures due for refresh
//!   │          ▼
//!   │        sign (blocking pool) ─▶ verify every signature ──fail──▶ alarm, keep last good
//!   │          │ ok
//!   │          ▼
//!   │        journal the diff (append + fsync) ─▶ publish (Arc swap) ─▶ NOTIFY
//!   │          (snapshots: in the background, see [`persist`])
//!   │          │
//!   └── NOTIFY / file changed / operator / schedule: refresh at REFRESH (RETRY after a
//!       failure), re-sign at earliest RRSIG expiry − signatures-refresh, EXPIRE → stale
//! ```
//!
//! Upstream is a source, not a lifeline (DESIGN.md property 5): refresh follows the upstream
//! SOA's REFRESH/RETRY whether or not NOTIFY ever comes; past EXPIRE without a successful
//! refresh the zone is reported stale and, with `on-upstream-expire = "keep-serving"` (the
//! default), the last good unsigned version keeps being re-signed and served; with
//! `"withdraw"` it stops being served (REFUSED) until upstream answers again.
//!
//! Keys follow the key state machine ([`crate::kasp`]): its state is loaded from
//! `state-dir/zones/NAME/keys.json` (or started, adopting the keys already in the keystores),
//! stepped before every signing and at each `key-event` (its `next_event`), and persisted
//! (temp + fsync + rename) before anything that depends on it is published; keys it asks for
//! are generated in their keystores, the signer gets exactly the keys of [`kasp::plan`] (plus
//! CDS/CDNSKEY at the apex), [`kasp::ZoneKeyState::published`] is called once the version is
//! served, and purged keys are deleted from their keystores. `rollover`, `ds-seen`,
//! `ds-gone` and `step` are key events with the operator's input; with `parental-agents`,
//! the `checkds` event ([`super::checkds`]) asks the parent while a DS change is awaited and
//! makes the same `ds-seen` / `ds-gone` events from what every agent shows.
//!
//! Time comes from the injected [`Clock`]: [`ZoneTask::tick`] runs whatever is due at
//! `clock.now()`, so tests step a simulated clock through months of schedule.

use super::data::{soa_field, Zone};
use super::keys;
use super::status::{
    KeyStatus, RecordStatus, Registry, ScheduledEvent, ZoneCmd, ZoneCmdKind, ZoneHandle, ZoneStatus,
};
use crate::auth::Keyring;
use crate::clock::{Clock, SystemClock};
use crate::config::{
    AclEntry, Config, OnUpstreamExpire, Policy, SerialPolicy, ZoneConfig, ZoneSource,
};
use crate::dns::name::Name;
use crate::journal::{self, Journal, JournalLimits};
use crate::kasp::{self, StepOptions, StepOutcome, ZoneKeyState};
use crate::keystore::KeyRole;
use crate::loader::{self, Fetched, Limits};
use crate::publisher::server::Server;
use crate::publisher::{NotifyPolicy, Publisher, Served};
use crate::signer::{self, verify};
use crate::zonefile;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

#[path = "multisigner.rs"]
mod multisigner;

#[path = "persist.rs"]
pub mod persist;

/// Zone file changes arrive as bursts of inotify events (an editor's write + rename gives
/// several): wait this long after the last one before reloading.
pub const FILE_DEBOUNCE: Duration = Duration::from_millis(400);

/// After a failed signing, try again after this long.
pub const RETRY_AFTER_FAILURE: u64 = 60;

/// A primary could set REFRESH/RETRY to 0 and have us poll in a tight loop: never refresh more
/// often than this (Knot's `refresh-min-interval` default).
pub const MIN_REFRESH_INTERVAL: u64 = 2;

/// Nor less often than this, whatever the SOA says (Knot's `refresh-max-interval` default).
pub const MAX_REFRESH_INTERVAL: u64 = 86_400;

/// A re-sign renews the signatures expiring within `signatures-refresh` plus this window:
/// expirations are spread by the jitter, and renewing them one at a time would publish a new
/// serial every few seconds.
pub const RESIGN_BATCH_WINDOW: u64 = 3600;

/// Before any upstream SOA is known (first transfer failing), retry this often.
pub const INITIAL_RETRY: u64 = 10;

/// Refresh is scheduled up to this fraction of REFRESH early, so that many zones from one
/// primary do not all poll at the same second.
pub const REFRESH_JITTER_PERCENT: u64 = 10;

/// NOTIFY and file events queue at most this many commands per zone; more are dropped
/// (a refresh is pending anyway): a NOTIFY storm causes at most one refresh in flight.
pub const ZONE_CMD_QUEUE: usize = 8;

/// What survives a restart besides the signed and unsigned zone files.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneState {
    /// Serial of the last published signed version.
    pub signed_serial: u32,
    /// Digest of the unsigned input that version was made from.
    pub unsigned_digest: String,
    /// Unix time of the last signing.
    pub signed_at: u64,
    /// Serial of the unsigned input (upstream's serial).
    #[serde(default)]
    pub upstream_serial: Option<u32>,
    /// Unix time of the last successful refresh from upstream.
    #[serde(default)]
    pub last_success: Option<u64>,
    /// When to ask upstream next.
    #[serde(default)]
    pub next_refresh: Option<u64>,
    /// When the upstream copy expires without a successful refresh.
    #[serde(default)]
    pub expire_at: Option<u64>,
    /// The serial of the unsigned version the last published signed version was made from
    /// (`upstream_serial` already names a newer one between a transfer and its signing): a
    /// restart that finds a newer unsigned copy (a kill between the two) signs it at once.
    #[serde(default)]
    pub signed_from: Option<u32>,
}

/// Digest of a zone's content (SHA-256 over its records in canonical order), to tell whether
/// the unsigned input changed.
pub fn content_digest(zone: &Zone) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, node) in &zone.nodes {
        ctx.update(&name.canonical_wire());
        for set in &node.rrsets {
            ctx.update(&set.rtype.to_be_bytes());
            ctx.update(&set.ttl.to_be_bytes());
            let mut rds: Vec<_> = set
                .rdatas
                .iter()
                .map(|r| crate::dns::rdata::canonical(set.rtype, r))
                .collect();
            rds.sort();
            for r in rds {
                ctx.update(&(r.len() as u16).to_be_bytes());
                ctx.update(&r);
            }
        }
    }
    data_encoding::HEXLOWER.encode(ctx.finish().as_ref())
}

/// The owner names whose content differs between two versions (one merge walk over both).
fn changed_owners(old: &Zone, new: &Zone) -> std::collections::BTreeSet<Name> {
    let cs = journal::diff(old, new);
    cs.removed
        .iter()
        .chain(cs.added.iter())
        .map(|r| r.owner.clone())
        .collect()
}

/// RFC 1982: is `a` greater than `b`?
pub fn serial_gt(a: u32, b: u32) -> bool {
    a != b && (a.wrapping_sub(b) as i32) > 0
}

/// The next signed serial under the policy (always moving forward from `prev`).
pub fn next_serial(policy: SerialPolicy, prev: Option<u32>, upstream: u32, now: u64) -> u32 {
    let want = match policy {
        SerialPolicy::Keep => upstream,
        SerialPolicy::Increment => match prev {
            None => upstream,
            Some(p) => {
                if serial_gt(upstream, p) {
                    upstream
                } else {
                    p.wrapping_add(1)
                }
            }
        },
        SerialPolicy::UnixTime => now as u32,
        SerialPolicy::DateSerial => {
            let (y, m, d) = crate::dns::rdata::civil_from_days((now / 86400) as i64);
            (y as u32) * 1_000_000 + m * 10_000 + d * 100
        }
    };
    match prev {
        Some(p) if !serial_gt(want, p) && policy != SerialPolicy::Keep => p.wrapping_add(1),
        _ => want,
    }
}

/// Earliest RRSIG expiration in a signed zone, as Unix seconds (RRSIG times are 32-bit serial
/// time, RFC 4034 §3.1.5; they are unfolded around `now`).
pub fn earliest_expiry(zone: &Zone, now: u64) -> Option<u64> {
    zone.nodes
        .values()
        .flat_map(|n| n.sigs.iter())
        .filter_map(|s| s.rdata.get(8..12))
        .map(|b| unfold_time(u32::from_be_bytes([b[0], b[1], b[2], b[3]]), now))
        .min()
}

/// A 32-bit RRSIG time as the Unix time nearest to `now`.
pub fn unfold_time(t: u32, now: u64) -> u64 {
    let delta = t.wrapping_sub(now as u32) as i32 as i64;
    (now as i64 + delta).max(0) as u64
}

/// Gives the memory freed by a large operation (a full signing, a whole zone replaced) back to
/// the operating system. glibc's allocator keeps freed small blocks in its heaps, so after the
/// old version of a million-name zone is dropped the process would otherwise keep its size
/// until the next full signing reuses it (Knot trims after zone loads the same way). Called off
/// the zone task, never on the path of an incremental change.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: malloc_trim takes no pointers and is thread-safe in glibc (it locks each
        // arena); it only returns free memory to the kernel.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// Wall time of the steps from an upstream change to the NOTIFY out, at debug level
/// (`phase=NAME ms=N`), read by bench/incremental.sh.
struct Lap<'a> {
    zone: &'a str,
    at: std::time::Instant,
}

impl<'a> Lap<'a> {
    fn new(zone: &'a str) -> Lap<'a> {
        Lap {
            zone,
            at: std::time::Instant::now(),
        }
    }

    fn phase(&mut self, phase: &str) {
        let now = std::time::Instant::now();
        let ms = (now - self.at).as_secs_f64() * 1000.0;
        tracing::debug!(zone = %self.zone, phase = %phase, ms = format_args!("{ms:.1}"), "step took");
        self.at = now;
    }
}

/// One zone's task state. Public so that tests can drive it on a simulated clock.
pub struct ZoneTask {
    cfg: Arc<Config>,
    zone: ZoneConfig,
    origin: Name,
    dir: PathBuf,
    state: ZoneState,
    /// The last good unsigned version (DNSSEC records stripped).
    unsigned: Option<Zone>,
    /// The same version as upstream sent it, kept only when stripping changed it: IXFR diffs
    /// apply to upstream's version, not ours.
    upstream_raw: Option<Zone>,
    current: Option<Arc<Served>>,
    publisher: Arc<Publisher>,
    clock: Arc<dyn Clock>,
    status_tx: watch::Sender<ZoneStatus>,
    withdrawn: bool,
    stale: bool,
    last_refresh: Option<u64>,
    last_result: Option<String>,
    /// Time of the last failed signing, to back off.
    sign_failed_at: Option<u64>,
    /// Why the last signing failed.
    sign_error: Option<String>,
    /// The IXFR history of the signed zone (journal before NOTIFY: every new version's diff
    /// is appended and fsynced before it is served).
    journal: Option<Arc<std::sync::Mutex<Journal>>>,
    /// Transfer limits (tests lower them).
    pub limits: Limits,
    /// The key state (kasp), once loaded (at the first signing or key event).
    kstate: Option<ZoneKeyState>,
    /// When the key state machine next needs a `step` (a key event).
    key_event_at: Option<u64>,
    /// What the key state machine waits for (`StepOutcome::waiting_for`).
    key_waiting: Vec<String>,
    /// Why the last key event failed.
    key_error: Option<String>,
    /// checkds: polling the `parental-agents` while a DS change is awaited.
    checkds: super::checkds::Tracker,
    /// The multi-signer overlay (injected apex records), or why it cannot be read.
    overlay: Result<super::overlay::Overlay, String>,
    /// UPDATEs for this zone, when it has `update` (taken by [`zone_task`]).
    update_rx: Option<mpsc::Receiver<crate::publisher::update::UpdateJob>>,
    /// What the other signers (`update.peers`) publish of our keys.
    peers: multisigner::PeerState,
    /// The earliest RRSIG expiration of `current` (Unix seconds), kept beside it so that the
    /// schedule does not walk the zone; None without signatures.
    expiry: Option<u64>,
    /// The keys of the last signing and what they were made for (the key plan and the
    /// configuration they were loaded under): the next signing under the same plan reuses them
    /// instead of reading every key from its keystore again.
    active_keys: Option<ActiveCache>,
    /// Background snapshots (signed.zone, unsigned.zone) and the unsigned journal.
    persist: persist::Persist,
    /// The unsigned copy is newer than what is served (found at restart): sign at once.
    sign_pending: bool,
    /// The owner names the upstream changes not signed yet touched (from the IXFR diffs):
    /// `None` = unknown (after an AXFR or a file load: everything); empty after a signing.
    upstream_touched: Option<std::collections::BTreeSet<Name>>,
}

/// Keys loaded for a key plan under one configuration.
#[derive(Clone)]
struct ActiveCache {
    plan: kasp::KeyPlan,
    cfg: usize,
    keys: Vec<signer::ActiveKey>,
    /// The signing parameters the served version was made with.
    params: Option<signer::SignParams>,
}

/// How a version was signed, for the log and the caller's bookkeeping.
enum SignedHow {
    /// The whole zone walked (first version, key or parameter change, signatures due).
    Full,
    /// Only what the upstream change reached ([`signer::delta`]): these names changed.
    Delta(std::collections::BTreeSet<Name>),
}

/// The tags of the keys whose DS the parent should hold now ([`kasp::KeyPlan::want_ds`]); for
/// a zone that has not asked for its first DS yet (its keys are still being introduced), the
/// DS it is going to ask for: the KSK/CSK in service. Not for a zone that did ask and is
/// withdrawing a DS (a KSK rollover before the old DS was ever seen at the parent): the new
/// KSK's DS is not safe at the parent before its DNSKEY is in every cache, and the CDS will ask
/// for it when it is.
pub fn want_ds(st: &ZoneKeyState) -> Vec<u16> {
    let want: Vec<u16> = kasp::plan(st).want_ds.iter().map(|k| k.tag).collect();
    let asked_before = st.keys.iter().any(|k| {
        k.ds_seen.is_some() || k.state(kasp::RecordKind::Ds) == kasp::RecordState::Unretentive
    });
    if !want.is_empty() || st.insecure || asked_before {
        return want;
    }
    st.keys
        .iter()
        .filter(|k| k.role.signs_keys() && k.goal == kasp::Goal::Omnipresent)
        .map(|k| k.key.tag)
        .collect()
}

/// An operator's input to the key state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyCmd {
    Rollover(KeyRole),
    DsSeen(u16),
    DsGone(u16),
    Step,
}

/// Key management before a signing or at a key event (blocking: keystores): loads (or adopts)
/// the key state, applies the operator's `cmd`, steps it (generating and registering the keys
/// it asks for), purges the keys it is done with, and persists it before anything that
/// depends on it is published.
// the zone's inputs, passed by value into the blocking pool: a struct would only rename them
#[allow(clippy::too_many_arguments)]
fn manage_keys(
    cfg: &Config,
    zcfg: &ZoneConfig,
    policy: &Policy,
    dir: &Path,
    state: Option<ZoneKeyState>,
    cmd: Option<KeyCmd>,
    now: u64,
    peers: Option<&multisigner::PeerHold>,
) -> Result<(ZoneKeyState, StepOutcome, Option<String>), String> {
    let zone = zcfg.name.as_str();
    let (mut st, before) = match state {
        Some(s) => {
            let before = s.clone();
            (s, Some(before))
        }
        None => (keys::load_key_state(cfg, zcfg, policy, dir, now)?, None),
    };
    let kerr = |e: kasp::KaspError| format!("zone {zone}: {e}");
    let note = match cmd {
        None | Some(KeyCmd::Step) => None,
        Some(KeyCmd::Rollover(role)) => {
            let ks = st.rollover(role, now).map_err(kerr)?;
            let ks: Vec<String> = ks.iter().map(|k| k.to_string()).collect();
            Some(format!("{role} rollover started for key {}", ks.join(", ")))
        }
        Some(KeyCmd::DsSeen(tag)) => Some(st.ds_seen(tag, None, now).map_err(kerr)?.message),
        Some(KeyCmd::DsGone(tag)) => Some(st.ds_gone(tag, None, now).map_err(kerr)?.message),
    };
    let opts = StepOptions {
        operator_step: cmd == Some(KeyCmd::Step),
        ..StepOptions::default()
    };
    let mut changes = Vec::new();
    let mut rounds = 0;
    let out = loop {
        let out = kasp::step_held(&mut st, policy, now, &opts, &|k| {
            peers.and_then(|p| p.reason(k))
        });
        changes.extend(out.changes.iter().cloned());
        if out.new_keys_needed.is_empty() || rounds >= 8 {
            break out;
        }
        rounds += 1;
        for req in &out.new_keys_needed {
            let key = keys::generate_key(cfg, zone, policy, req, &st, now)?;
            st.add_key(req, key, now).map_err(kerr)?;
            // the material exists now: record it at once
            keys::save_key_state(dir, &st)?;
        }
    };
    for k in &out.purge {
        keys::purge_state_key(cfg, zone, &st, *k)?;
        st.forget(*k).map_err(kerr)?;
    }
    // an unchanged state is on disk already (it is saved whenever it changes): no fsync on the
    // path of every signing
    if before.as_ref() != Some(&st) {
        keys::save_key_state(dir, &st)?;
    }
    for c in &changes {
        tracing::info!(zone = %zone, "{c}");
    }
    for c in &out.blocked_manual {
        tracing::info!(zone = %zone, "manual mode, waiting for `signet step`: {c}");
    }
    Ok((st, out, note))
}

/// Adds the CDS and CDNSKEY RRsets of `plan` at the apex of `zone` (replacing any), TTL =
/// DNSKEY TTL: one CDS per digest type and, with `publish-cdnskey`, a CDNSKEY for each key in
/// `plan.cds`, or the RFC 8078 DELETE records.
fn put_cds(
    zone: &mut Zone,
    plan: &kasp::KeyPlan,
    active: &[signer::ActiveKey],
    policy: &Policy,
    ttl: u32,
) -> Result<(), String> {
    use crate::dns::rtype::t;
    let owner = zone.origin.canonical_wire();
    let mut cds: Vec<Vec<u8>> = Vec::new();
    let mut cdnskey: Vec<Vec<u8>> = Vec::new();
    if plan.cds_delete {
        cds.push(kasp::CDS_DELETE_RDATA.to_vec());
        cdnskey.push(kasp::CDNSKEY_DELETE_RDATA.to_vec());
    } else {
        for k in &plan.cds {
            let Some(a) = active
                .iter()
                .find(|a| a.tag == k.tag && a.key.algorithm() == k.algorithm)
            else {
                return Err(format!("no DNSKEY for the CDS of key {k}"));
            };
            for &dt in &policy.cds_digest_types {
                let rd = crate::keystore::ds_rdata(&owner, &a.dnskey, dt)
                    .ok_or_else(|| format!("CDS digest type {dt} is not supported"))?;
                if !cds.contains(&rd) {
                    cds.push(rd);
                }
            }
            if policy.publish_cdnskey && !cdnskey.contains(&a.dnskey) {
                cdnskey.push(a.dnskey.clone());
            }
        }
    }
    let apex = zone.nodes.entry(zone.origin.clone()).or_default();
    apex.remove(t::CDS);
    apex.remove(t::CDNSKEY);
    if !cds.is_empty() {
        apex.put(super::data::RRset {
            rtype: t::CDS,
            ttl,
            rdatas: cds,
        });
    }
    if !cdnskey.is_empty() {
        apex.put(super::data::RRset {
            rtype: t::CDNSKEY,
            ttl,
            rdatas: cdnskey,
        });
    }
    Ok(())
}

impl ZoneTask {
    /// A task for `zone`, and the handle to reach it (status + commands).
    pub fn new(
        cfg: Arc<Config>,
        zone: ZoneConfig,
        publisher: Arc<Publisher>,
        clock: Arc<dyn Clock>,
    ) -> Result<(ZoneTask, watch::Receiver<ZoneStatus>), String> {
        let origin =
            Name::parse(&zone.name, None).map_err(|e| format!("zone {}: {e}", zone.name))?;
        let dir = keys::zone_state_dir(&cfg, &zone.name);
        let persist = persist::Persist::new(&dir, &zone.name);
        let (status_tx, status_rx) = watch::channel(ZoneStatus {
            zone: zone.name.clone(),
            ..Default::default()
        });
        let t = ZoneTask {
            cfg,
            zone,
            origin,
            dir,
            state: ZoneState::default(),
            unsigned: None,
            upstream_raw: None,
            current: None,
            publisher,
            clock,
            status_tx,
            withdrawn: false,
            stale: false,
            last_refresh: None,
            last_result: None,
            sign_failed_at: None,
            sign_error: None,
            journal: None,
            limits: Limits::default(),
            kstate: None,
            // step the key state at the first tick
            key_event_at: Some(0),
            key_waiting: Vec::new(),
            key_error: None,
            checkds: Default::default(),
            overlay: Ok(Default::default()),
            update_rx: None,
            peers: Default::default(),
            expiry: None,
            active_keys: None,
            persist,
            sign_pending: false,
            upstream_touched: None,
        };
        Ok((t, status_rx))
    }

    fn policy(&self) -> &Policy {
        self.cfg.policy_for(&self.zone)
    }

    fn primaries(&self) -> Option<&[SocketAddr]> {
        match &self.zone.source {
            ZoneSource::Primaries(p) => Some(p),
            ZoneSource::File(_) => None,
        }
    }

    /// The state the task persisted.
    pub fn state(&self) -> &ZoneState {
        &self.state
    }

    /// The version being served.
    pub fn served(&self) -> Option<&Arc<Served>> {
        self.current.as_ref()
    }

    /// Startup: the NOTIFY policy, then whatever the state directory holds (signed copy served
    /// at once; last good unsigned version and timers restored).
    pub fn start(&mut self) {
        if let Some(prims) = self.primaries() {
            let mut acl: Vec<AclEntry> = prims
                .iter()
                .map(|p| AclEntry::Addr(p.ip(), if p.is_ipv4() { 32 } else { 128 }))
                .collect();
            acl.extend(self.zone.allow_notify.iter().cloned());
            let key = self
                .zone
                .transfer_tsig
                .as_ref()
                .and_then(|k| Name::parse(k, Some(&Name::root())).ok());
            self.publisher
                .set_notify_policy(&self.origin, Some(NotifyPolicy { acl, key }));
        }
        match Journal::open(&self.dir, &self.origin, JournalLimits::default()) {
            Ok(j) => self.journal = Some(Arc::new(std::sync::Mutex::new(j))),
            Err(e) => {
                tracing::error!(zone = %self.zone.name, error = %e, "cannot open the journal; serving without IXFR history")
            }
        }
        self.open_persist();
        self.update_rx = self.start_updates();
        self.restore();
        self.report();
    }

    fn restore(&mut self) {
        let state_path = self.dir.join("state.json");
        let Ok(text) = std::fs::read_to_string(&state_path) else {
            return;
        };
        let mut state = match serde_json::from_str::<ZoneState>(&text) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(zone = %self.zone.name, path = %state_path.display(), error = %e, "unreadable zone state; starting afresh");
                return;
            }
        };
        if self.primaries().is_some() {
            // unsigned.zone rolled forward with unsigned.journal
            self.unsigned = self.restore_unsigned();
            // a copy older than the one the served version was made from (its journal was lost
            // or could not be applied) must never be signed: that would serve upstream's old
            // content under a new serial. Without it the next refresh transfers the whole zone.
            let restored = self.unsigned.as_ref().and_then(|z| z.serial());
            if let (Some(u), Some(f)) = (restored, state.signed_from) {
                if serial_gt(f, u) {
                    tracing::warn!(zone = %self.zone.name, unsigned = u, signed_from = f, "the stored unsigned copy is older than the served version; discarding it, the next refresh transfers the zone");
                    self.unsigned = None;
                }
            }
        }
        match zonefile::load_zone(&self.dir.join(persist::SIGNED_SNAPSHOT), &self.origin) {
            Ok((z, _)) => {
                let snapshot_serial = z.serial();
                // the journal is written before the snapshot: it may hold newer versions
                let z = match &self.journal {
                    Some(j) => match j.lock() {
                        Ok(mut j) => match j.recover(z.clone()) {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::warn!(zone = %self.zone.name, error = %e, "journal recovery failed; serving the snapshot");
                                z
                            }
                        },
                        Err(_) => z,
                    },
                    None => z,
                };
                self.signed_restored(snapshot_serial, z.serial());
                let now = self.clock.now();
                if earliest_expiry(&z, now).is_some_and(|e| e <= now) {
                    tracing::warn!(zone = %self.zone.name, "stored signed copy has expired signatures; not serving it");
                } else {
                    tracing::info!(zone = %self.zone.name, serial = state.signed_serial, "serving the stored signed copy");
                    self.publish(z, false);
                }
            }
            Err(e) => {
                tracing::warn!(zone = %self.zone.name, error = %e.join("; "), "stored signed copy unusable; will re-sign");
            }
        }
        // a kill between the journal append and the state file: the journal's version is the
        // one served, and the serial goes on from it
        if let Some(ss) = self.current.as_ref().and_then(|s| s.serial()) {
            if serial_gt(ss, state.signed_serial) {
                state.signed_serial = ss;
            }
        }
        if self.primaries().is_none() {
            // a file zone: the file is reloaded next and compared with the digest kept here
            self.state = state;
        } else if self.unsigned.is_none() {
            // without the unsigned copy the timers mean nothing: refresh now
            self.state = ZoneState {
                signed_serial: state.signed_serial,
                ..Default::default()
            };
        } else {
            // ask upstream once right after a restart (one SOA query); EXPIRE keeps counting
            // from the last success before the restart
            let restored = self.unsigned.as_ref().and_then(|z| z.serial());
            if let (Some(u), Some(f)) = (restored, state.signed_from) {
                if u != f && self.current.is_some() {
                    // killed after the unsigned copy was stored, before its version was signed
                    tracing::warn!(zone = %self.zone.name, unsigned = u, signed_from = f, "the stored unsigned copy is newer than the served version; signing it now");
                    self.sign_pending = true;
                }
            }
            self.state = ZoneState {
                next_refresh: None,
                ..state
            };
        }
    }

    /// When something is next due (Unix seconds), if anything is scheduled.
    pub fn next_due(&self) -> Option<u64> {
        self.schedule().first().map(|e| e.at)
    }

    fn resign_at(&self) -> Option<u64> {
        if self.withdrawn {
            return None;
        }
        let now = self.clock.now();
        if let Some(f) = self.sign_failed_at {
            return Some(f + RETRY_AFTER_FAILURE);
        }
        if self.sign_pending {
            return Some(now);
        }
        match self.current.as_ref() {
            // nothing served yet but input at hand: sign now
            None => self.unsigned.as_ref().map(|_| now),
            Some(_) => self
                .expiry
                .map(|e| e.saturating_sub(self.policy().signatures_refresh)),
        }
    }

    /// The zone's schedule, soonest first.
    pub fn schedule(&self) -> Vec<ScheduledEvent> {
        let mut v = Vec::new();
        if self.primaries().is_some() {
            let at = self.state.next_refresh.unwrap_or(0);
            let event = if self
                .last_result
                .as_deref()
                .is_some_and(|r| r != "ok" && r != "up to date")
            {
                "retry"
            } else {
                "refresh"
            };
            v.push(ScheduledEvent {
                event: event.into(),
                at,
            });
            if let Some(e) = self.state.expire_at {
                if !self.stale {
                    v.push(ScheduledEvent {
                        event: "expire".into(),
                        at: e,
                    });
                }
            }
        }
        if let Some(r) = self.resign_at() {
            v.push(ScheduledEvent {
                event: "resign".into(),
                at: r,
            });
        }
        if let Some(k) = self.key_event_at {
            v.push(ScheduledEvent {
                event: "key-event".into(),
                at: k,
            });
        }
        if let Some(c) = self.checkds_at() {
            v.push(ScheduledEvent {
                event: "checkds".into(),
                at: c,
            });
        }
        if let Some(at) = self.snapshot_at() {
            v.push(ScheduledEvent {
                event: "snapshot".into(),
                at,
            });
        }
        v.sort_by_key(|e| e.at);
        v
    }

    /// Runs every event due at `clock.now()`.
    pub async fn tick(&mut self) {
        let now = self.clock.now();
        if self.primaries().is_some() {
            if self.state.next_refresh.is_none_or(|t| t <= now) {
                let _ = self.refresh_upstream(false).await;
            }
            self.check_expire();
        } else if self.unsigned.is_none() || self.last_refresh.is_none() {
            let _ = self.load_file(false).await;
        }
        if self.resign_at().is_some_and(|t| t <= self.clock.now()) {
            let _ = self.resign(false).await;
        }
        if self.key_event_at.is_some_and(|t| t <= self.clock.now()) {
            let _ = self.key_event(None).await;
        }
        if self.checkds_at().is_some_and(|t| t <= self.clock.now()) {
            self.check_ds().await;
        }
        self.snapshot_tick();
        self.report();
    }

    /// Handles one command; returns its outcome for the operator.
    pub async fn handle(&mut self, kind: ZoneCmdKind) -> Result<String, String> {
        let r = match kind {
            ZoneCmdKind::Reload => match self.primaries() {
                Some(_) => self.refresh_upstream(false).await,
                None => self.load_file(false).await,
            },
            ZoneCmdKind::Retransfer => match self.primaries() {
                Some(_) => self.refresh_upstream(true).await,
                None => self.load_file(true).await,
            },
            ZoneCmdKind::Resign => self.resign(true).await,
            ZoneCmdKind::Notify => match &self.current {
                Some(_) if !self.zone.notify.is_empty() => {
                    self.send_notify();
                    Ok(format!(
                        "NOTIFY sent to {} secondaries",
                        self.zone.notify.len()
                    ))
                }
                Some(_) => Err("the zone has no notify targets".into()),
                None => Err("the zone is not served yet".into()),
            },
            ZoneCmdKind::Rollover(role) => self.key_event(Some(KeyCmd::Rollover(role))).await,
            ZoneCmdKind::DsSeen(tag) => self.key_event(Some(KeyCmd::DsSeen(tag))).await,
            ZoneCmdKind::DsGone(tag) => self.key_event(Some(KeyCmd::DsGone(tag))).await,
            ZoneCmdKind::Step => self.key_event(Some(KeyCmd::Step)).await,
        };
        if self.primaries().is_some() {
            self.check_expire();
        }
        self.report();
        r
    }

    // ---------------------------------------------------------------------------- sources

    async fn load_file(&mut self, force: bool) -> Result<String, String> {
        let ZoneSource::File(path) = self.zone.source.clone() else {
            return Err("not a file-sourced zone".into());
        };
        let now = self.clock.now();
        self.last_refresh = Some(now);
        let origin = self.origin.clone();
        let loaded = tokio::task::spawn_blocking(move || zonefile::load_zone(&path, &origin))
            .await
            .map_err(|e| format!("loader failed: {e}"))?;
        let mut unsigned = match loaded {
            Ok((z, warnings)) => {
                for w in warnings {
                    tracing::warn!(zone = %self.zone.name, "{w}");
                }
                z
            }
            Err(errs) => {
                for e in &errs {
                    tracing::error!(zone = %self.zone.name, "{e}");
                }
                tracing::error!(zone = %self.zone.name, "zone file rejected; still serving the last good version");
                let msg = format!(
                    "zone file rejected: {}",
                    errs.first().cloned().unwrap_or_default()
                );
                self.last_result = Some(msg.clone());
                return Err(msg);
            }
        };
        self.last_result = Some("ok".into());
        self.state.last_success = Some(now);
        let _ = self.strip(&mut unsigned);
        // the names the edit touched, from one walk over both versions (much cheaper than the
        // walk of a full re-sign): the diff-driven signer then re-signs only those
        let touched = match (&self.unsigned, &self.upstream_touched) {
            (Some(old), Some(acc)) => {
                let mut t = acc.clone();
                t.extend(changed_owners(old, &unsigned));
                Some(t)
            }
            _ => None,
        };
        let changed = self.accept_unsigned(unsigned)?;
        self.upstream_touched = touched;
        if changed || force || self.current.is_none() {
            self.sign_and_publish(now).await
        } else {
            Ok("unchanged".into())
        }
    }

    /// Strips a previous signer's records; returns whether there were any.
    fn strip(&self, unsigned: &mut Zone) -> bool {
        let stripped = signer::strip_dnssec(unsigned);
        if !stripped.is_empty() {
            tracing::warn!(zone = %self.zone.name, removed = %stripped.join(", "), "removed DNSSEC records found in the unsigned input (a previous signer's)");
        }
        !stripped.is_empty()
    }

    /// [`Self::strip`] at `names` only.
    fn strip_names(&self, unsigned: &mut Zone, names: &std::collections::BTreeSet<Name>) -> bool {
        let stripped = signer::strip_dnssec_names(unsigned, names);
        if !stripped.is_empty() {
            tracing::warn!(zone = %self.zone.name, removed = %stripped.join(", "), "removed DNSSEC records found in the unsigned input (a previous signer's)");
        }
        !stripped.is_empty()
    }

    /// Takes a new unsigned version; returns whether its content differs from what was signed.
    fn accept_unsigned(&mut self, unsigned: Zone) -> Result<bool, String> {
        let changed =
            self.primaries().is_some() || content_digest(&unsigned) != self.state.unsigned_digest;
        self.state.upstream_serial = unsigned.serial();
        // unknown (a file load or an AXFR); refresh_upstream sets it after an IXFR
        self.upstream_touched = None;
        self.unsigned = Some(unsigned);
        Ok(changed)
    }

    fn tsig_key(&self) -> Option<Arc<crate::auth::Key>> {
        let k = self.zone.transfer_tsig.as_ref()?;
        let n = Name::parse(k, Some(&Name::root())).ok()?;
        self.publisher.keys().get(&n).cloned()
    }

    /// SOA → IXFR → AXFR from the primaries in order (see the module diagram).
    async fn refresh_upstream(&mut self, force_axfr: bool) -> Result<String, String> {
        let Some(primaries) = self.primaries().map(|p| p.to_vec()) else {
            return Err("not a zone with primaries".into());
        };
        let now = self.clock.now();
        self.last_refresh = Some(now);
        tracing::debug!(zone = %self.zone.name, force_axfr, "refresh: asking upstream");
        let key = self.tsig_key();
        let mut errors = Vec::new();
        for primary in primaries {
            let serial =
                match loader::query_soa(primary, &self.origin, key.as_ref(), &self.limits).await {
                    Ok(s) => s,
                    Err(e) => {
                        errors.push(format!("{primary}: SOA query: {e}"));
                        continue;
                    }
                };
            let ours = self.unsigned.as_ref().and_then(|z| z.serial());
            if !force_axfr {
                if let Some(cur) = ours {
                    if serial == cur {
                        self.refresh_succeeded(now, "up to date");
                        return Ok(format!("up to date at serial {cur}"));
                    }
                    if !serial_gt(serial, cur) {
                        errors.push(format!(
                            "{primary}: upstream serial {serial} is older than ours {cur} (RFC 1982); keeping ours"
                        ));
                        continue;
                    }
                }
            }
            // IXFR applies to the version as upstream sent it (before stripping)
            let base = if force_axfr {
                None
            } else {
                self.upstream_raw.as_ref().or(self.unsigned.as_ref())
            };
            let zname = self.zone.name.clone();
            let mut lap = Lap::new(&zname);
            let mut res = loader::transfer(
                primary,
                &self.origin,
                key.as_ref(),
                base,
                force_axfr,
                &self.limits,
            )
            .await;
            if let (Err(e), Some(_)) = (&res, base) {
                if !e.ixfr_fallback() {
                    errors.push(format!("{primary}: {e}"));
                    continue;
                }
                tracing::warn!(zone = %self.zone.name, %primary, error = %e, "IXFR failed; falling back to AXFR");
                res = loader::transfer(
                    primary,
                    &self.origin,
                    key.as_ref(),
                    None,
                    true,
                    &self.limits,
                )
                .await;
            }
            let mut touched = None;
            let (mut zone, how) = match res {
                Ok(Fetched::UpToDate { serial }) => {
                    self.refresh_succeeded(now, "up to date");
                    return Ok(format!("up to date at serial {serial}"));
                }
                Ok(Fetched::Full { zone, via_ixfr }) => {
                    (zone, if via_ixfr { "IXFR (full)" } else { "AXFR" })
                }
                Ok(Fetched::Incremental { zone, diffs }) => {
                    tracing::debug!(zone = %self.zone.name, diffs = diffs.len(), "IXFR");
                    touched = Some(persist::touched_owners(&diffs));
                    (zone, "IXFR")
                }
                Err(e) => {
                    errors.push(format!("{primary}: {e}"));
                    continue;
                }
            };
            let new_serial = zone.serial().unwrap_or(0);
            if let Some(cur) = ours {
                if !force_axfr && !serial_gt(new_serial, cur) {
                    errors.push(format!(
                        "{primary}: transferred serial {new_serial} is not newer than ours {cur} (RFC 1982); keeping ours"
                    ));
                    continue;
                }
            }
            lap.phase("transfer");
            tracing::info!(zone = %self.zone.name, %primary, serial = new_serial, how, records = zone.record_count(), "transferred from upstream");
            let raw = zone.clone();
            // after an IXFR to a clean version only the touched names can hold DNSSEC records
            let stripped = match (&touched, &self.upstream_raw) {
                (Some(t), None) => self.strip_names(&mut zone, t),
                _ => self.strip(&mut zone),
            };
            self.upstream_raw = if stripped { Some(raw) } else { None };
            // a whole new version (AXFR, or IXFR answered AXFR-style) that follows ours: one
            // comparison finds what changed, so that the copy is stored and signed as a diff
            // (an upstream without IXFR costs a transfer, not a re-sign); `retransfer` starts
            // afresh on purpose
            let touched = match (touched, &self.unsigned) {
                (Some(t), _) => Some(t),
                (None, Some(old)) if !force_axfr => Some(changed_owners(old, &zone)),
                (None, _) => None,
            };
            // persist the unsigned copy first (IXFR: its diff journaled; AXFR: the whole copy):
            // a restart with upstream down resumes from it
            let touched = self.store_unsigned(&zone, touched);
            lap.phase("store_unsigned");
            self.accept_unsigned(zone)?;
            self.upstream_touched = touched;
            self.refresh_succeeded(now, "ok");
            return self
                .sign_and_publish(now)
                .await
                .map(|m| format!("{how} serial {new_serial}; {m}"));
        }
        let msg = errors.join("; ");
        tracing::error!(zone = %self.zone.name, error = %msg, "refresh from upstream failed; still serving the last good version");
        self.refresh_failed(now, &msg);
        Err(msg)
    }

    fn soa_timer(&self, idx: usize) -> Option<u64> {
        self.unsigned
            .as_ref()
            .and_then(|z| z.soa())
            .and_then(|s| soa_field(s, idx))
            .map(|v| v as u64)
    }

    fn refresh_succeeded(&mut self, now: u64, result: &str) {
        let refresh = self
            .soa_timer(1)
            .unwrap_or(3600)
            .clamp(MIN_REFRESH_INTERVAL, MAX_REFRESH_INTERVAL);
        let jitter = refresh * REFRESH_JITTER_PERCENT / 100;
        let early = if jitter > 0 {
            let mut b = [0u8; 8];
            let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
            u64::from_le_bytes(b) % jitter
        } else {
            0
        };
        let expire = self.soa_timer(3).unwrap_or(604_800);
        self.state.last_success = Some(now);
        self.state.next_refresh = Some(now + refresh - early);
        self.state.expire_at = Some(now + expire);
        self.last_result = Some(result.into());
        if self.stale {
            tracing::warn!(zone = %self.zone.name, "upstream answers again: the zone is fresh");
            self.stale = false;
        }
        if self.withdrawn {
            let now = self.clock.now();
            match self.current.clone() {
                // signatures that expired while withdrawn are not served again: the re-sign
                // due now (resign_at) publishes a fresh version instead
                Some(_) if self.expiry.is_some_and(|e| e <= now) => {
                    tracing::warn!(zone = %self.zone.name, "the withdrawn version's signatures expired; serving again once re-signed");
                }
                Some(s) => self.publisher.publish(s),
                None => {}
            }
            self.withdrawn = false;
        }
        self.persist_state();
    }

    fn refresh_failed(&mut self, now: u64, msg: &str) {
        let retry = match self.soa_timer(2) {
            Some(r) => r.clamp(MIN_REFRESH_INTERVAL, MAX_REFRESH_INTERVAL),
            None => INITIAL_RETRY,
        };
        self.state.next_refresh = Some(now + retry);
        self.last_result = Some(msg.to_string());
        if let (Some(exp), false) = (self.state.expire_at, self.stale) {
            let left = exp.saturating_sub(now);
            let expire = self.soa_timer(3).unwrap_or(604_800);
            if left <= expire / 4 {
                tracing::warn!(zone = %self.zone.name, seconds_left = left, "upstream copy approaching EXPIRE without a successful refresh");
            }
        }
        self.persist_state();
    }

    fn check_expire(&mut self) {
        let now = self.clock.now();
        let Some(exp) = self.state.expire_at else {
            return;
        };
        if now < exp || self.stale {
            return;
        }
        self.stale = true;
        let since = self
            .state
            .last_success
            .map(|t| now.saturating_sub(t))
            .unwrap_or(0);
        match self.zone.on_upstream_expire {
            OnUpstreamExpire::KeepServing => {
                tracing::error!(zone = %self.zone.name, silent_for_secs = since, "upstream EXPIRE passed without a successful refresh: STALE, still signing and serving the last good version (on-upstream-expire = keep-serving)");
            }
            OnUpstreamExpire::Withdraw => {
                tracing::error!(zone = %self.zone.name, silent_for_secs = since, "upstream EXPIRE passed without a successful refresh: zone WITHDRAWN (on-upstream-expire = withdraw)");
                self.publisher.withdraw(&self.origin);
                self.withdrawn = true;
            }
        }
    }

    // ---------------------------------------------------------------------------- signing

    async fn resign(&mut self, force: bool) -> Result<String, String> {
        if self.unsigned.is_none() {
            return Err("no unsigned version to sign yet".into());
        }
        let now = self.clock.now();
        self.sign_and_publish_with(now, force).await
    }

    async fn sign_and_publish(&mut self, now: u64) -> Result<String, String> {
        self.sign_and_publish_with(now, false).await
    }

    /// Signs the current unsigned version: incrementally from the served version (unchanged
    /// RRsets keep signatures that are not due for refresh), or everything with `full`.
    async fn sign_and_publish_with(&mut self, now: u64, full: bool) -> Result<String, String> {
        let zname = self.zone.name.clone();
        let mut lap = Lap::new(&zname);
        let Some(mut unsigned) = self.unsigned.clone() else {
            return Err("no unsigned version".into());
        };
        // the digest tells a reloaded zone file from an unchanged one (load_file); a transferred
        // version is new by its serial, and hashing a large zone costs more than signing a change
        let digest = if self.primaries().is_none() {
            content_digest(&unsigned)
        } else {
            String::new()
        };
        lap.phase("clone_digest");
        let policy = self.policy().clone();
        let upstream = unsigned.serial().unwrap_or(0);
        let prev = if self.current.is_some() || self.state.signed_serial != 0 {
            Some(self.state.signed_serial)
        } else {
            None
        };
        let serial = next_serial(policy.serial, prev, upstream, now);
        unsigned.set_serial(serial);
        let cfg = self.cfg.clone();
        let cfg_id = Arc::as_ptr(&self.cfg) as usize;
        let cached_keys = self.active_keys.clone();
        let zcfg = self.zone.clone();
        let dir = self.dir.clone();
        let served_prev = self.current.clone();
        let previous = if full { None } else { self.current.clone() };
        // the diff-driven path needs: the names upstream touched since the served version, and
        // no signature of it due for renewal (the walk of the full path renews those)
        let refresh =
            (policy.signatures_refresh + RESIGN_BATCH_WINDOW).min(u32::MAX as u64 / 2) as u32;
        let touched = match (&previous, &self.upstream_touched, self.expiry) {
            (Some(_), Some(t), Some(e)) if e > now + refresh as u64 => Some(t.clone()),
            _ => None,
        };
        let prev_expiry = self.expiry;
        let journal = self.journal.clone();
        let snap = self.persist.signed.clone();
        let kstate = self.kstate.clone();
        let overlay = self.overlay_for_signing();
        let peers = self.peer_hold(now).await;
        let zname2 = zname.clone();
        let result = tokio::task::spawn_blocking(
            move || -> Result<(Zone, ZoneKeyState, StepOutcome, ActiveCache, SignedHow), String> {
                let mut lap = Lap::new(&zname2);
                let overlay = overlay?;
                let (kst, out, _) =
                    manage_keys(&cfg, &zcfg, &policy, &dir, kstate, None, now, peers.as_ref())?;
                let plan = kasp::plan(&kst);
                let salt_len = policy.nsec3.as_ref().map(|n| n.salt_length).unwrap_or(0);
                let salt = keys::nsec3_salt(&dir, salt_len)?;
                let mut params = keys::sign_params(&policy, salt);
                params.jitter = signer::effective_jitter(
                    params.jitter,
                    params.validity,
                    policy.signatures_refresh.min(u32::MAX as u64) as u32,
                );
                // the same keys and parameters as the served version: the delta may be used
                let (mut active, same) = if plan.unsigned {
                    (Vec::new(), false)
                } else {
                    match cached_keys {
                        Some(c) if c.plan == plan && c.cfg == cfg_id => {
                            let same = c.params.as_ref() == Some(&params);
                            (c.keys, same)
                        }
                        _ => (keys::plan_keys(&cfg, &zcfg.name, &kst, &plan)?, false),
                    }
                };
                let touched = touched.filter(|_| same);
                let loaded = ActiveCache {
                    plan: plan.clone(),
                    cfg: cfg_id,
                    keys: active.clone(),
                    params: Some(params.clone()),
                };
                let prev = previous.as_ref().map(|s| &s.zone);
                lap.phase("keys");
                let mut how = SignedHow::Full;
                let signed = if plan.unsigned {
                    // the end of going insecure: served without any DNSSEC record
                    unsigned
                } else {
                    put_cds(&mut unsigned, &plan, &active, &policy, params.dnskey_ttl)
                        .map_err(|e| format!("zone {}: {e}", zcfg.name))?;
                    // multi-signer: foreign DNSKEYs, injected CDS/CDNSKEY/NS/CSYNC
                    overlay.merge(&mut unsigned, &mut active, params.dnskey_ttl);
                    match (prev, touched) {
                        (Some(p), Some(t)) => {
                            // the served version, shared chunk by chunk, changed where the
                            // upstream change reaches
                            let mut signed = p.clone();
                            let changed = signer::delta::sign_zone_delta(
                                &mut signed, &unsigned, &t, &active, &params, now, refresh,
                            )
                            .map_err(|e| e.to_string())?;
                            how = SignedHow::Delta(changed);
                            Ok(signed)
                        }
                        // renew what expires within refresh + one batch window, so that
                        // jittered expirations are renewed in batches, not one by one
                        (Some(p), None) => signer::sign_zone_incremental(
                            unsigned, p, refresh, &active, &params, now,
                        ),
                        (None, _) => signer::sign_zone_owned(unsigned, &active, &params, now),
                    }
                    .map_err(|e| e.to_string())?
                };
                lap.phase("sign");
                // every signature not carried over unchanged is verified
                let problems = match (&how, plan.unsigned) {
                    (_, true) => Vec::new(),
                    (SignedHow::Delta(changed), _) => {
                        verify::check_zone_delta(&signed, now, changed)
                    }
                    (SignedHow::Full, _) => verify::check_zone_since(&signed, now, prev),
                };
                if !problems.is_empty() {
                    return Err(format!("self-check failed: {}", problems.join("; ")));
                }
                lap.phase("verify");
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                // journal before snapshot, snapshot before serving, serving before NOTIFY
                if let Some(j) = &journal {
                    let mut j = j.lock().map_err(|_| "journal lock poisoned".to_string())?;
                    match served_prev.as_ref() {
                        Some(p) if p.serial().is_some() => {
                            let cs = match &how {
                                SignedHow::Delta(changed) => {
                                    journal::diff_names(&p.zone, &signed, changed)
                                }
                                SignedHow::Full => journal::diff(&p.zone, &signed),
                            };
                            if let Err(e) = j.append(&cs) {
                                // e.g. an earlier version was journaled but never served: the
                                // history no longer leads to what secondaries have; start it
                                // again here (they get one AXFR-style transfer)
                                tracing::warn!(error = %e, "journal append failed; resetting the IXFR history");
                                persist::reset_with_snapshot(Some(&mut j), &snap, &signed, now)?;
                            }
                        }
                        _ => persist::reset_with_snapshot(Some(&mut j), &snap, &signed, now)?,
                    }
                }
                lap.phase("journal");
                // signed.zone is written in the background later (persist.rs); without a
                // journal nothing could roll it forward: now
                if journal.is_none() {
                    persist::reset_with_snapshot(None, &snap, &signed, now)?;
                }
                lap.phase("snapshot");
                Ok((signed, kst, out, loaded, how))
            },
        )
        .await
        .map_err(|e| format!("signer task failed: {e}"))?;
        let (signed, kst, out, loaded, how) = match result {
            Ok(v) => v,
            Err(e) => {
                self.active_keys = None;
                tracing::error!(zone = %self.zone.name, error = %e, "signing failed; still serving the last good version");
                // the key state on disk may be ahead of ours (keys generated): reread it
                self.kstate = None;
                self.sign_failed_at = Some(now);
                self.sign_error = Some(e.clone());
                return Err(e);
            }
        };
        self.sign_failed_at = None;
        self.sign_error = None;
        self.active_keys = Some(loaded);
        self.upstream_touched = Some(Default::default());
        self.kstate = Some(kst);
        self.key_waiting = out.waiting_for;
        self.key_event_at = peer_recheck(out.next_event, out.held, now);
        self.key_error = None;
        self.state.signed_serial = serial;
        self.state.signed_from = Some(upstream);
        self.sign_pending = false;
        self.state.unsigned_digest = digest;
        self.state.signed_at = now;
        self.persist_state();
        // the earliest expiration: a walk after a full signing; after a delta, the new
        // signatures expire no earlier than the bound, the kept ones were counted before
        let expiry = match &how {
            SignedHow::Full => earliest_expiry(&signed, now),
            SignedHow::Delta(_) => {
                let bound = self
                    .active_keys
                    .as_ref()
                    .and_then(|c| c.params.as_ref())
                    .map(|p| signer::delta::earliest_new_expiration(p, now));
                match (prev_expiry, bound) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        };
        match &how {
            SignedHow::Delta(changed) => {
                tracing::info!(zone = %self.zone.name, serial, names = changed.len(), "signed the change")
            }
            SignedHow::Full => {
                tracing::info!(zone = %self.zone.name, serial, records = signed.record_count(), "signed")
            }
        }
        if self.withdrawn {
            // keep the fresh version ready; it is served again when upstream answers
            self.expiry = expiry;
            self.current = Some(Arc::new(self.served_from(signed)));
        } else {
            lap.at = std::time::Instant::now();
            self.publish_with(signed, true, expiry);
            lap.phase("publish_notify");
            self.key_published(now);
        }
        if matches!(how, SignedHow::Full) {
            // the previous version's memory, freed by now unless a transfer still holds it
            tokio::task::spawn_blocking(release_free_memory);
        }
        self.signed_changed();
        Ok(match &how {
            SignedHow::Delta(changed) => {
                format!("signed serial {serial} (diff: {} names)", changed.len())
            }
            SignedHow::Full => format!("signed serial {serial}"),
        })
    }

    /// The version built from the current key plan is served: the key state's timers start
    /// now; step again (cheap, no key material) to learn what comes next.
    fn key_published(&mut self, now: u64) {
        let policy = self.policy().clone();
        let hold = self.last_peer_hold(now);
        let Some(st) = self.kstate.as_mut() else {
            return;
        };
        let before = st.clone();
        st.published(now);
        let out = kasp::step_held(st, &policy, now, &StepOptions::default(), &|k| {
            hold.as_ref().and_then(|p| p.reason(k))
        });
        for c in &out.changes {
            tracing::info!(zone = %self.zone.name, "{c}");
        }
        let again = st.publication_pending() || !out.new_keys_needed.is_empty();
        // an unchanged state (a version signed under an unchanged plan) is stored already
        if *st != before {
            if let Err(e) = keys::save_key_state(&self.dir, st) {
                tracing::error!(zone = %self.zone.name, error = %e, "cannot store the key state");
                self.key_error = Some(e);
            }
        }
        self.key_waiting = out.waiting_for;
        self.key_event_at = if again {
            Some(now)
        } else {
            peer_recheck(out.next_event, out.held, now)
        };
    }

    /// A key event: steps the key state (with the operator's `cmd`, if any) and, when the key
    /// plan changed, signs and publishes a version that carries it.
    async fn key_event(&mut self, cmd: Option<KeyCmd>) -> Result<String, String> {
        let now = self.clock.now();
        let cfg = self.cfg.clone();
        let zcfg = self.zone.clone();
        let policy = self.policy().clone();
        let dir = self.dir.clone();
        let kstate = self.kstate.clone();
        let peers = self.peer_hold(now).await;
        let r = tokio::task::spawn_blocking(move || {
            manage_keys(&cfg, &zcfg, &policy, &dir, kstate, cmd, now, peers.as_ref())
        })
        .await
        .map_err(|e| format!("key task failed: {e}"))
        .and_then(|r| r);
        let (st, out, note) = match r {
            Ok(v) => v,
            Err(e) => {
                // the key state on disk may be ahead of ours (keys generated): reread it
                self.kstate = None;
                if cmd.is_none() {
                    tracing::error!(zone = %self.zone.name, error = %e, "key management failed");
                    self.key_error = Some(e.clone());
                    self.key_event_at = Some(now + RETRY_AFTER_FAILURE);
                }
                return Err(e);
            }
        };
        self.key_error = None;
        let pending = st.publication_pending();
        self.kstate = Some(st);
        self.key_waiting = out.waiting_for.clone();
        self.key_event_at = peer_recheck(out.next_event, out.held, now);
        let mut msg: Vec<String> = note.into_iter().collect();
        msg.extend(out.changes.iter().map(|c| c.to_string()));
        if pending && self.unsigned.is_some() && !self.withdrawn {
            msg.push(self.sign_and_publish_with(now, false).await?);
        }
        if msg.is_empty() {
            msg.push("no key transition is due".into());
        }
        Ok(msg.join("\n"))
    }

    /// When checkds polls the parental agents next (see [`super::checkds`]).
    fn checkds_at(&self) -> Option<u64> {
        self.checkds
            .due(&self.zone.parental_agents, self.kstate.as_ref())
    }

    /// A checkds poll; what every agent shows is applied as `ds-seen` / `ds-gone`.
    async fn check_ds(&mut self) {
        let Some(st) = self.kstate.clone() else {
            return;
        };
        let dnskeys: Vec<Vec<u8>> = self
            .current
            .as_ref()
            .and_then(|s| s.zone.nodes.get(&self.origin))
            .and_then(|n| n.get(crate::dns::rtype::t::DNSKEY))
            .map(|set| set.rdatas.clone())
            .unwrap_or_default();
        let policy = self.policy().clone();
        let now = self.clock.now();
        let (seen, gone) = self
            .checkds
            .poll(
                &self.origin,
                &self.zone.parental_agents,
                &st,
                &dnskeys,
                &policy,
                now,
            )
            .await;
        let cmds = seen
            .into_iter()
            .map(KeyCmd::DsSeen)
            .chain(gone.into_iter().map(KeyCmd::DsGone));
        for cmd in cmds {
            match self.key_event(Some(cmd)).await {
                Ok(m) => {
                    tracing::info!(zone = %self.zone.name, "checkds: {}", m.replace('\n', "; "))
                }
                Err(e) => {
                    tracing::error!(zone = %self.zone.name, error = %e, "checkds: applying the parent's DS set failed")
                }
            }
        }
    }

    fn persist_state(&self) {
        let json = match serde_json::to_vec_pretty(&self.state) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(zone = %self.zone.name, error = %e, "cannot encode the zone state");
                return;
            }
        };
        if let Err(e) = std::fs::create_dir_all(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                crate::keystore::write_atomic(&self.dir, "state.json", &json, 0o644)
                    .map_err(|e| e.to_string())
            })
        {
            tracing::error!(zone = %self.zone.name, error = %e, "cannot store the zone state");
        }
    }

    fn served_from(&self, signed: Zone) -> Served {
        let s = Served::new(signed, self.zone.allow_transfer.clone())
            .with_allow_notify(self.zone.allow_notify.clone());
        match self
            .journal
            .as_ref()
            .and_then(|j| j.lock().ok().map(|j| j.history()))
        {
            Some(h) => s.with_history(h),
            None => s,
        }
    }

    /// Serves `signed` from now on (replacing the previous version whole) and, with
    /// `announce`, sends NOTIFY to the zone's `notify` targets.
    fn publish(&mut self, signed: Zone, announce: bool) {
        let expiry = earliest_expiry(&signed, self.clock.now());
        self.publish_with(signed, announce, expiry);
    }

    /// [`Self::publish`] with the earliest signature expiration known.
    fn publish_with(&mut self, signed: Zone, announce: bool, expiry: Option<u64>) {
        self.expiry = expiry;
        let served = Arc::new(self.served_from(signed));
        self.publisher.publish(served.clone());
        self.current = Some(served);
        if announce {
            self.send_notify();
        }
    }

    /// NOTIFY to the `notify` targets, signed with the first TSIG key of the zone's
    /// `allow-transfer` list (the key the secondaries transfer with) when there is one.
    fn send_notify(&self) {
        if self.zone.notify.is_empty() {
            return;
        }
        let key = self.zone.allow_transfer.iter().find_map(|a| match a {
            AclEntry::Key(k) => Name::parse(k, Some(&Name::root()))
                .ok()
                .and_then(|n| self.publisher.keys().get(&n).cloned()),
            _ => None,
        });
        self.publisher
            .notify(&self.origin, self.zone.notify.clone(), key);
    }

    /// The status as it really is now.
    pub fn status(&self) -> ZoneStatus {
        let now = self.clock.now();
        let source = match &self.zone.source {
            ZoneSource::File(p) => format!("file {}", p.display()),
            ZoneSource::Primaries(p) => format!(
                "primaries {}",
                p.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let served = self.current.is_some() && !self.withdrawn;
        ZoneStatus {
            zone: self.zone.name.clone(),
            source,
            upstream_serial: self.unsigned.as_ref().and_then(|z| z.serial()),
            signed_serial: self.current.as_ref().and_then(|s| s.serial()),
            served,
            last_refresh: self.last_refresh,
            last_refresh_result: self.last_result.clone(),
            last_success: self.state.last_success,
            next_refresh: if self.primaries().is_some() {
                self.state.next_refresh
            } else {
                None
            },
            upstream_expires: if self.primaries().is_some() {
                self.state.expire_at
            } else {
                None
            },
            stale: self.stale,
            alarm: self.alarm(now),
            earliest_signature_expiry: self.current.as_ref().and(self.expiry),
            next_resign: self.resign_at(),
            keys: [self.key_status(), self.foreign_key_status()].concat(),
            events: self.schedule(),
            waiting_for: {
                let mut w = self.key_waiting.clone();
                w.extend(self.checkds.waiting(self.checkds_at()));
                w
            },
            want_ds: self.kstate.as_ref().map(want_ds),
            parent_ds: self.checkds.status(self.checkds_at()),
        }
    }

    /// The keys as `signet keys` / `status` show them: from the key state, with each record's
    /// state.
    fn key_status(&self) -> Vec<KeyStatus> {
        let Some(st) = &self.kstate else {
            return Vec::new();
        };
        let mut next = kasp::next_transitions(st, self.policy(), self.clock.now());
        st.keys
            .iter()
            .map(|k| {
                let goal = match k.goal {
                    kasp::Goal::Omnipresent => "active",
                    kasp::Goal::Hidden => "retiring",
                };
                let records: Vec<String> = k
                    .kinds()
                    .map(|kind| format!("{kind} {}", k.state(kind)))
                    .collect();
                let n = next
                    .iter()
                    .position(|(key, _)| *key == k.key)
                    .map(|i| next.swap_remove(i).1);
                KeyStatus {
                    tag: k.key.tag,
                    role: k.role.to_string(),
                    algorithm: k.key.algorithm,
                    keystore: k.keystore.clone(),
                    state: format!("{goal}: {}", records.join(", ")),
                    created: k.created,
                    published: k.published,
                    active: k.active,
                    retired: k.retired,
                    removed: k.removed,
                    goal: match k.goal {
                        kasp::Goal::Omnipresent => "omnipresent".into(),
                        kasp::Goal::Hidden => "hidden".into(),
                    },
                    records: k
                        .kinds()
                        .filter_map(|kind| {
                            k.record(kind).map(|r| RecordStatus {
                                record: kind.to_string(),
                                state: r.state.to_string(),
                                since: r.since,
                            })
                        })
                        .collect(),
                    ds_seen: k.ds_seen,
                    ds_gone: k.ds_gone,
                    lifetime: k.lifetime,
                    roll_at: k.roll_at(),
                    predecessor: k.predecessor.map(|p| p.tag),
                    successor: k.successor.map(|p| p.tag),
                    next: n,
                }
            })
            .collect()
    }

    fn alarm(&self, now: u64) -> Option<String> {
        let mut a = Vec::new();
        if let Some(e) = &self.sign_error {
            a.push(format!(
                "signing failing, serving the last good version: {e}"
            ));
        }
        if let Some(e) = &self.key_error {
            a.push(format!("key management failing: {e}"));
        }
        if self.stale {
            let since = self
                .state
                .last_success
                .map(|t| now.saturating_sub(t))
                .unwrap_or(0);
            a.push(format!(
                "STALE: upstream silent past EXPIRE, last success {since}s ago"
            ));
        }
        if a.is_empty() {
            None
        } else {
            Some(a.join("; "))
        }
    }

    fn report(&self) {
        let s = self.status();
        self.status_tx.send_if_modified(|old| {
            if *old != s {
                *old = s;
                true
            } else {
                false
            }
        });
    }
}

/// Runs one zone in real time until `rx` closes: sleeps until the next scheduled event or a
/// command, whichever comes first.
pub async fn zone_task(mut t: ZoneTask, mut rx: mpsc::Receiver<ZoneCmd>) {
    t.start();
    t.tick().await;
    let mut updates = t.update_rx.take();
    loop {
        let now = t.clock.now();
        let wait = t
            .next_due()
            .map(|d| d.saturating_sub(now))
            .unwrap_or(3600)
            .clamp(1, 3600);
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => {
                    // a clean stop: write the snapshots that are behind (the journals have it)
                    let _ = tokio::task::spawn_blocking(move || t.flush_snapshots()).await;
                    return;
                }
                Some(cmd) => {
                    let r = t.handle(cmd.kind).await;
                    if let Some(reply) = cmd.reply {
                        let _ = reply.send(r);
                    }
                    // coalesce: reloads that queued up while we worked are answered by this one
                    while let Ok(more) = rx.try_recv() {
                        if more.kind == ZoneCmdKind::Reload {
                            if let Some(reply) = more.reply {
                                let _ = reply.send(Ok("coalesced with the refresh just done".into()));
                            }
                        } else {
                            let r = t.handle(more.kind).await;
                            if let Some(reply) = more.reply {
                                let _ = reply.send(r);
                            }
                        }
                    }
                }
            },
            job = next_update(&mut updates) => match job {
                Some(job) => t.update(job).await,
                None => updates = None,
            },
            _ = tokio::time::sleep(Duration::from_secs(wait)) => t.tick().await,
        }
    }
}

/// When to step the key state again: `next`, or sooner when a rollover waits for the other
/// signers (they are asked again every [`multisigner::PEER_POLL_INTERVAL`]).
fn peer_recheck(next: Option<u64>, held: bool, now: u64) -> Option<u64> {
    if !held {
        return next;
    }
    let poll = now + multisigner::PEER_POLL_INTERVAL;
    Some(next.map_or(poll, |n| n.min(poll)))
}

/// The next UPDATE for a zone task; never ready when the zone takes none.
async fn next_update(
    rx: &mut Option<mpsc::Receiver<crate::publisher::update::UpdateJob>>,
) -> Option<crate::publisher::update::UpdateJob> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// Watches the directories of file-sourced zones and sends `Reload` to the zone whose file
/// changed, after [`FILE_DEBOUNCE`] of quiet. Watching directories (not files) survives editors
/// and deploy tools that replace files by rename.
pub fn watch_files(
    files: Vec<(PathBuf, mpsc::Sender<ZoneCmd>)>,
) -> Result<Option<notify::RecommendedWatcher>, String> {
    use notify::Watcher;
    if files.is_empty() {
        return Ok(None);
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            // our own reading of the file raises open/access/close-nowrite events: reacting
            // to those would reload forever
            if matches!(
                ev.kind,
                notify::EventKind::Access(_) | notify::EventKind::Other
            ) {
                return;
            }
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })
    .map_err(|e| format!("cannot watch zone files: {e}"))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    let canon: Vec<(PathBuf, mpsc::Sender<ZoneCmd>)> =
        files.into_iter().map(|(p, s)| (absolute(&p), s)).collect();
    for (p, _) in &canon {
        let d = p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if !dirs.contains(&d) {
            watcher
                .watch(&d, notify::RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", d.display()))?;
            dirs.push(d);
        }
    }
    tokio::spawn(async move {
        let mut pending: Vec<usize> = Vec::new();
        // the quiet period runs from the last event for a watched file: events for other files
        // in the same directories (a log written every few hundred ms) must not hold it back
        let mut quiet_at = tokio::time::Instant::now();
        loop {
            let ev = if pending.is_empty() {
                rx.recv().await
            } else {
                match tokio::time::timeout_at(quiet_at, rx.recv()).await {
                    Ok(v) => v,
                    Err(_) => {
                        for i in pending.drain(..) {
                            let _ = canon[i].1.try_send(ZoneCmd::new(ZoneCmdKind::Reload));
                        }
                        continue;
                    }
                }
            };
            let Some(p) = ev else { return };
            let p = absolute(&p);
            for (i, (f, _)) in canon.iter().enumerate() {
                if *f == p {
                    quiet_at = tokio::time::Instant::now() + FILE_DEBOUNCE;
                    if !pending.contains(&i) {
                        pending.push(i);
                    }
                }
            }
        }
    });
    Ok(Some(watcher))
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// The running zone tasks.
struct Zones {
    registry: Arc<Registry>,
    tasks: std::collections::BTreeMap<String, (ZoneConfig, Policy, tokio::task::JoinHandle<()>)>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Zones {
    fn new(registry: Arc<Registry>) -> Zones {
        Zones {
            registry,
            tasks: Default::default(),
            _watcher: None,
        }
    }

    /// Makes the running tasks match `cfg`: new zones start, removed zones stop (and are
    /// withdrawn), zones whose configuration or policy changed restart (they resume from the
    /// state directory; the served version stays in place meanwhile).
    async fn apply(
        &mut self,
        cfg: &Arc<Config>,
        publisher: &Arc<Publisher>,
        clock: &Arc<dyn Clock>,
    ) -> Result<String, String> {
        let mut started = 0;
        let mut stopped = 0;
        let wanted: std::collections::BTreeMap<String, &ZoneConfig> = cfg
            .zones
            .iter()
            .map(|z| (super::status::normalise(&z.name), z))
            .collect();
        let names: Vec<String> = self.tasks.keys().cloned().collect();
        for name in names {
            let keep = match (wanted.get(&name), self.tasks.get(&name)) {
                (Some(z), Some((old, old_policy, _))) => {
                    // the line a zone is written on is not part of its configuration
                    let a = ZoneConfig {
                        line: 0,
                        ..(*z).clone()
                    };
                    let b = ZoneConfig {
                        line: 0,
                        ..old.clone()
                    };
                    let pa = Policy {
                        line: None,
                        ..cfg.policy_for(z).clone()
                    };
                    let pb = Policy {
                        line: None,
                        ..old_policy.clone()
                    };
                    a == b && pa == pb
                }
                _ => false,
            };
            if !keep {
                if let Some((_, _, h)) = self.tasks.remove(&name) {
                    self.registry.remove(&name);
                    // dropping the registry's sender ends the task at its next wakeup
                    h.abort();
                    let _ = h.await;
                    stopped += 1;
                }
                if !wanted.contains_key(&name) {
                    if let Ok(o) = Name::parse(&name, None) {
                        publisher.withdraw(&o);
                        publisher.set_notify_policy(&o, None);
                        publisher.set_update_route(&o, None);
                    }
                }
            }
        }
        let mut files = Vec::new();
        for (name, z) in &wanted {
            if let Some(h) = self.registry.get(name) {
                if let ZoneSource::File(p) = &z.source {
                    files.push((p.clone(), h.cmd.clone()));
                }
                continue;
            }
            let (task, status) =
                ZoneTask::new(cfg.clone(), (*z).clone(), publisher.clone(), clock.clone())?;
            let (tx, rx) = mpsc::channel(ZONE_CMD_QUEUE);
            if let ZoneSource::File(p) = &z.source {
                files.push((p.clone(), tx.clone()));
            }
            self.registry.insert(name, ZoneHandle { status, cmd: tx });
            let h = tokio::spawn(zone_task(task, rx));
            self.tasks
                .insert(name.clone(), ((*z).clone(), cfg.policy_for(z).clone(), h));
            started += 1;
        }
        self._watcher = watch_files(files)?;
        Ok(format!(
            "{started} zone(s) started, {stopped} stopped, {} running",
            self.tasks.len()
        ))
    }

    /// At shutdown: closes every task's command queue (the task then writes the snapshots
    /// that are behind and ends) and waits up to [`persist::SHUTDOWN_FLUSH_WAIT`] for them.
    async fn shutdown(&mut self) {
        self._watcher = None;
        let tasks = std::mem::take(&mut self.tasks);
        for name in tasks.keys() {
            self.registry.remove(name);
        }
        let deadline = tokio::time::Instant::now() + persist::SHUTDOWN_FLUSH_WAIT;
        for (_, (_, _, h)) in tasks {
            let _ = tokio::time::timeout_at(deadline, h).await;
        }
    }
}

/// Routes accepted NOTIFYs to their zone's task (as a refresh; coalesced by the task's queue).
fn spawn_notify_router(
    registry: Arc<Registry>,
    mut rx: mpsc::Receiver<crate::publisher::NotifyIn>,
) {
    tokio::spawn(async move {
        while let Some(n) = rx.recv().await {
            if let Some(h) = registry.get(&n.zone.to_string()) {
                if h.cmd.try_send(ZoneCmd::new(ZoneCmdKind::Reload)).is_err() {
                    tracing::debug!(zone = %n.zone, "NOTIFY coalesced: a refresh is already queued");
                }
            }
        }
    });
}

/// `signet serve`: binds the listeners (a failure is a one-line reason), starts one task per
/// zone, the file watcher and the control socket, and runs until SIGTERM/SIGINT. SIGHUP (or
/// `signet reload`) rereads the configuration.
pub async fn run(cfg: Config) -> Result<(), String> {
    let path = cfg.path.clone();
    let mut cfg = Arc::new(cfg);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (notify_tx, notify_rx) = mpsc::channel(64);
    let publisher = Arc::new(Publisher::new(clock.clone()).with_notify_hook(notify_tx));
    publisher.set_keys(Keyring::from_config(cfg.tsig.values())?);
    let server = Server::bind(&cfg.server.listen, publisher.clone())
        .await
        .map_err(|e| format!("cannot listen on {:?}: {e}", cfg.server.listen))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let server_task = tokio::spawn(server.run(stop_rx.clone()));
    let registry = Arc::new(Registry::new());
    spawn_notify_router(registry.clone(), notify_rx);
    let (reload_tx, mut reload_rx) = mpsc::channel::<oneshot::Sender<Result<String, String>>>(4);
    let cfg_tx = start_control(
        &cfg,
        registry.clone(),
        publisher.clone(),
        reload_tx,
        stop_rx.clone(),
    )?;
    let mut zones = Zones::new(registry.clone());
    let msg = zones.apply(&cfg, &publisher, &clock).await?;
    tracing::info!("{msg}");
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    loop {
        let reply = tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = hup.recv() => None,
            r = reload_rx.recv() => r,
        };
        let outcome = match crate::config::load(&path) {
            Err(p) => {
                tracing::error!("configuration reload refused, nothing changed:\n{p}");
                Err(format!("configuration refused, nothing changed:\n{p}"))
            }
            Ok(new) => match Keyring::from_config(new.tsig.values()) {
                Err(e) => Err(format!("configuration refused, nothing changed: {e}")),
                Ok(keys) => {
                    if new.server.listen != cfg.server.listen {
                        tracing::warn!(
                            "[server] listen changes need a restart; kept the old addresses"
                        );
                    }
                    publisher.set_keys(keys);
                    cfg = Arc::new(new);
                    cfg_tx.send_replace(cfg.clone());
                    let r = zones.apply(&cfg, &publisher, &clock).await;
                    if let Ok(m) = &r {
                        tracing::info!("configuration reloaded: {m}");
                    }
                    r
                }
            },
        };
        if let Some(tx) = reply {
            let _ = tx.send(outcome);
        }
    }
    tracing::info!("shutting down");
    zones.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    Ok(())
}

/// Starts the control socket server; returns where to publish a reloaded configuration.
fn start_control(
    cfg: &Arc<Config>,
    registry: Arc<Registry>,
    publisher: Arc<Publisher>,
    reload: mpsc::Sender<oneshot::Sender<Result<String, String>>>,
    shutdown: watch::Receiver<bool>,
) -> Result<watch::Sender<Arc<Config>>, String> {
    let (cfg_tx, cfg_rx) = watch::channel(cfg.clone());
    let server = crate::control::ControlServer::bind(&cfg.server.control)?;
    let ctx = Arc::new(crate::control::ControlContext {
        registry,
        publisher,
        config: cfg_rx,
        reload,
    });
    tokio::spawn(server.run(ctx, shutdown));
    Ok(cfg_tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials() {
        assert!(serial_gt(1, 0));
        assert!(serial_gt(0, u32::MAX));
        assert!(!serial_gt(0, 0x8000_0000));
        assert_eq!(next_serial(SerialPolicy::Increment, None, 5, 0), 5);
        assert_eq!(next_serial(SerialPolicy::Increment, Some(5), 5, 0), 6);
        assert_eq!(next_serial(SerialPolicy::Increment, Some(5), 9, 0), 9);
        assert_eq!(
            next_serial(SerialPolicy::Increment, Some(u32::MAX), 3, 0),
            3
        );
        assert_eq!(next_serial(SerialPolicy::UnixTime, Some(10), 3, 1000), 1000);
        assert_eq!(
            next_serial(SerialPolicy::UnixTime, Some(2000), 3, 1000),
            2001
        );
        assert_eq!(
            next_serial(SerialPolicy::DateSerial, None, 3, 1_704_067_200),
            2024010100
        );
        assert_eq!(next_serial(SerialPolicy::Keep, Some(7), 3, 0), 3);
    }

    #[test]
    fn time_unfolding() {
        let now = 1_704_067_200u64;
        assert_eq!(unfold_time(now as u32 + 10, now), now + 10);
        assert_eq!(unfold_time((now as u32).wrapping_sub(10), now), now - 10);
        // past 2106: the 32-bit time wraps but unfolds next to now
        let later = (1u64 << 32) + 1000;
        assert_eq!(unfold_time(2000, later), later + 1000);
    }
}
