//! What a zone task reports about itself, and how the rest of signet talks to it.
//!
//! Every zone task publishes a [`ZoneStatus`] through a `watch` channel after each change of
//! state; the control socket reads that (never a value echoed from a request), and sends
//! [`ZoneCmd`]s with a reply channel so that an operator command answers with the outcome the
//! zone task actually reached.

use crate::keystore::KeyRole;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::RwLock;
use tokio::sync::{mpsc, oneshot, watch};

/// A key as `signet status` / `signet keys` show it.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyStatus {
    pub tag: u16,
    pub role: String,
    pub algorithm: u8,
    pub keystore: String,
    /// Free-form key state (KASP, issue 5).
    pub state: String,
    pub created: u64,
    pub published: Option<u64>,
    pub active: Option<u64>,
    pub retired: Option<u64>,
    pub removed: Option<u64>,
    /// `omnipresent` (in use or being introduced) or `hidden` (retiring).
    #[serde(default)]
    pub goal: String,
    /// Per record kind the key has (DNSKEY, KRRSIG, ZRRSIG, DS): its state and since when.
    #[serde(default)]
    pub records: Vec<RecordStatus>,
    /// The parent was last seen with / without this key's DS since (checkds, `ds-seen`,
    /// `ds-gone`).
    pub ds_seen: Option<u64>,
    pub ds_gone: Option<u64>,
    /// Lifetime from the policy (seconds); `None` is unlimited.
    pub lifetime: Option<u64>,
    /// When the lifetime ends (or `signet rollover` asked for a successor).
    pub roll_at: Option<u64>,
    pub predecessor: Option<u16>,
    pub successor: Option<u16>,
    /// The key's next transition: record, states, date (if known) and what it waits for.
    pub next: Option<crate::kasp::NextTransition>,
}

/// One record kind of a key, as `signet keys` shows it.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordStatus {
    /// `DNSKEY`, `KRRSIG`, `ZRRSIG` or `DS`.
    pub record: String,
    /// `hidden`, `rumoured`, `omnipresent` or `unretentive`.
    pub state: String,
    /// Since when.
    pub since: u64,
}

/// One scheduled event of a zone (Knot's per-zone events; `signet status` prints them).
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ScheduledEvent {
    /// `refresh`, `retry`, `expire`, `resign`, …
    pub event: String,
    /// Unix seconds.
    pub at: u64,
}

/// The real state of one zone.
#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneStatus {
    pub zone: String,
    /// `file PATH` or `primaries A, B`.
    pub source: String,
    /// Serial of the unsigned input currently used.
    pub upstream_serial: Option<u32>,
    /// Serial of the signed version being served.
    pub signed_serial: Option<u32>,
    /// Whether a signed version is being served.
    pub served: bool,
    /// Unix time of the last refresh attempt (load of the file, or SOA/transfer upstream).
    pub last_refresh: Option<u64>,
    /// `ok`, `up to date`, or the error.
    pub last_refresh_result: Option<String>,
    /// Unix time of the last successful refresh.
    pub last_success: Option<u64>,
    pub next_refresh: Option<u64>,
    /// When the upstream copy expires (SOA EXPIRE after the last successful refresh).
    pub upstream_expires: Option<u64>,
    /// Upstream silent past EXPIRE: still served (keep-serving) but stale.
    pub stale: bool,
    /// What needs the operator's attention now (signing failing, upstream stale), if anything.
    pub alarm: Option<String>,
    /// Earliest RRSIG expiration in the served version.
    pub earliest_signature_expiry: Option<u64>,
    pub next_resign: Option<u64>,
    pub keys: Vec<KeyStatus>,
    /// The zone's schedule, soonest first.
    pub events: Vec<ScheduledEvent>,
    /// What the key state machine waits for (timers with their dates, the parent, `signet
    /// step` in manual mode); empty when the keys are at rest.
    pub waiting_for: Vec<String>,
    /// Tags of the keys whose DS the parent should hold now (`KeyPlan::want_ds`); `None` until
    /// the key state is loaded.
    pub want_ds: Option<Vec<u16>>,
    /// The last checkds poll of the zone's `parental-agents` (what each showed, what is
    /// awaited); `None` without parental agents or before the first poll.
    pub parent_ds: Option<super::checkds::CheckDsStatus>,
}

/// What an operator (or the file watcher, or a NOTIFY) asks a zone task to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ZoneCmdKind {
    /// The input may have changed: reload / refresh, sign if it did.
    Reload,
    /// Transfer the whole zone from upstream now (AXFR), then sign.
    Retransfer,
    /// Re-sign everything now.
    Resign,
    /// Send NOTIFY to the secondaries now.
    Notify,
    /// `signet rollover --role`: replace the active keys of this role now.
    Rollover(KeyRole),
    /// `signet ds-seen --key TAG`: the parent publishes the DS of this key.
    DsSeen(u16),
    /// `signet ds-gone --key TAG`: the parent no longer publishes the DS of this key.
    DsGone(u16),
    /// `signet step`: make the key transitions that are due (manual mode).
    Step,
}

/// A command and, optionally, where to send its outcome.
#[derive(Debug)]
pub struct ZoneCmd {
    pub kind: ZoneCmdKind,
    pub reply: Option<oneshot::Sender<Result<String, String>>>,
}

impl ZoneCmd {
    pub fn new(kind: ZoneCmdKind) -> ZoneCmd {
        ZoneCmd { kind, reply: None }
    }
}

/// How to reach one zone task.
#[derive(Clone)]
pub struct ZoneHandle {
    pub status: watch::Receiver<ZoneStatus>,
    pub cmd: mpsc::Sender<ZoneCmd>,
}

/// All zone tasks by zone name (lowercase, absolute).
#[derive(Default)]
pub struct Registry {
    zones: RwLock<BTreeMap<String, ZoneHandle>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn insert(&self, zone: &str, h: ZoneHandle) {
        if let Ok(mut z) = self.zones.write() {
            z.insert(normalise(zone), h);
        }
    }

    pub fn remove(&self, zone: &str) -> Option<ZoneHandle> {
        self.zones.write().ok()?.remove(&normalise(zone))
    }

    pub fn get(&self, zone: &str) -> Option<ZoneHandle> {
        self.zones.read().ok()?.get(&normalise(zone)).cloned()
    }

    /// Zone names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.zones
            .read()
            .map(|z| z.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Current status of every zone.
    pub fn statuses(&self) -> Vec<ZoneStatus> {
        self.zones
            .read()
            .map(|z| z.values().map(|h| h.status.borrow().clone()).collect())
            .unwrap_or_default()
    }

    /// Sends a command and waits for the zone task's answer.
    pub async fn command(&self, zone: &str, kind: ZoneCmdKind) -> Result<String, String> {
        let h = self
            .get(zone)
            .ok_or_else(|| format!("zone {zone} is not configured"))?;
        let (tx, rx) = oneshot::channel();
        h.cmd
            .send(ZoneCmd {
                kind,
                reply: Some(tx),
            })
            .await
            .map_err(|_| format!("zone {zone}: its task has stopped"))?;
        rx.await
            .map_err(|_| format!("zone {zone}: its task stopped before answering"))?
    }
}

/// `Example.COM` → `example.com.`
pub fn normalise(zone: &str) -> String {
    let mut z = zone.to_ascii_lowercase();
    if !z.ends_with('.') {
        z.push('.');
    }
    z
}
