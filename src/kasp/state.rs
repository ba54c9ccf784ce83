//! The persistent key state of one zone: per key a goal, a state per record kind with the time
//! it last changed, the parent observations (`ds-seen` / `ds-gone`), and the lifecycle data
//! (lifetime, successor links, timeline). Pure data plus the input events; the rules that move
//! it live in [`super::rules`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::keystore::KeyRole;

/// Version of the JSON layout written by [`ZoneKeyState::to_json`].
pub const STATE_FORMAT: u32 = 1;

/// Refuse state files larger than this as corrupt (a zone has a handful of keys).
const MAX_STATE_JSON: usize = 16 << 20;

/// One key of a zone: its DNSSEC algorithm and key tag. Tags never collide among the keys of a
/// zone's state ([`ZoneKeyState::add_key`] refuses a colliding tag, whatever the algorithm), so
/// the tag alone names a key to the operator (`signet ds-seen --key TAG`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
pub struct KeyRef {
    pub algorithm: u8,
    pub tag: u16,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match crate::config::algorithm_name(self.algorithm) {
            Some(n) => write!(f, "{} ({n})", self.tag),
            None => write!(f, "{} (alg {})", self.tag, self.algorithm),
        }
    }
}

/// Where a record of a key stands with respect to resolver caches (Mekking, "Flexible and
/// Robust Key Rollover"; BIND's keymgr uses the same four states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordState {
    /// Not published, and no cache can hold it any more.
    Hidden,
    /// Published, but some caches may still hold a version without it.
    Rumoured,
    /// Published, and every cache that holds the RRset holds it.
    Omnipresent,
    /// Withdrawn, but some caches may still hold a version with it.
    Unretentive,
}

impl RecordState {
    /// Whether the record is in the versions published now (rumoured or omnipresent).
    pub fn published(self) -> bool {
        matches!(self, RecordState::Rumoured | RecordState::Omnipresent)
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Hidden => "hidden",
            RecordState::Rumoured => "rumoured",
            RecordState::Omnipresent => "omnipresent",
            RecordState::Unretentive => "unretentive",
        }
    }
}

impl fmt::Display for RecordState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The four kinds of record whose presence in caches the state machine tracks per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RecordKind {
    /// The key's DNSKEY record in the apex DNSKEY RRset.
    #[serde(rename = "dnskey")]
    Dnskey,
    /// The key's RRSIG over the DNSKEY RRset (and CDS/CDNSKEY): KSK and CSK.
    #[serde(rename = "krrsig")]
    Krrsig,
    /// The key's RRSIGs over the rest of the zone: ZSK and CSK.
    #[serde(rename = "zrrsig")]
    Zrrsig,
    /// The DS record for the key at the parent: KSK and CSK.
    #[serde(rename = "ds")]
    Ds,
}

impl RecordKind {
    /// All kinds, in the order used for display.
    pub const ALL: [RecordKind; 4] = [
        RecordKind::Dnskey,
        RecordKind::Krrsig,
        RecordKind::Zrrsig,
        RecordKind::Ds,
    ];

    /// Upper-case name as in BIND's `dnssec -status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Dnskey => "DNSKEY",
            RecordKind::Krrsig => "KRRSIG",
            RecordKind::Zrrsig => "ZRRSIG",
            RecordKind::Ds => "DS",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a key is heading for: every record of it omnipresent (in use) or hidden (retiring).
/// A key's goal only ever goes from omnipresent to hidden; a retired key never comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    Omnipresent,
    Hidden,
}

fn yes() -> bool {
    true
}

/// The state of one record kind of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub state: RecordState,
    /// Unix time of the last change of `state` (the publication time once confirmed).
    pub since: u64,
    /// Informational: unretentive after having been only rumoured (it never reached every
    /// cache).
    #[serde(default)]
    pub partial: bool,
    /// For a record that is or was published (rumoured, omnipresent, unretentive): when its
    /// current publication began. Versions served before then lack it. 0 in files written
    /// before this field existed (taken as "always").
    #[serde(default)]
    pub published_since: u64,
    /// False from a change that alters what is published until the zone task reports the
    /// version carrying it as served ([`ZoneKeyState::published`]); the timers of RFC 7583
    /// start at that moment, not at the decision.
    #[serde(default = "yes")]
    pub confirmed: bool,
}

impl Record {
    /// A record in `state` since `since`, confirmed.
    pub fn new(state: RecordState, since: u64) -> Record {
        Record {
            state,
            since,
            partial: false,
            published_since: since,
            confirmed: true,
        }
    }
}

/// One key of the zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub key: KeyRef,
    pub role: KeyRole,
    /// The keystore holding the private key (policy `keys[].keystore`).
    pub keystore: String,
    pub goal: Goal,
    pub dnskey: Record,
    /// KSK and CSK only.
    #[serde(default)]
    pub krrsig: Option<Record>,
    /// ZSK and CSK only.
    #[serde(default)]
    pub zrrsig: Option<Record>,
    /// KSK and CSK only.
    #[serde(default)]
    pub ds: Option<Record>,
    /// The parent was last seen publishing a DS for this key at this time (`ds-seen`,
    /// checkds); cleared by a contrary observation or when signet asks for its removal.
    #[serde(default)]
    pub ds_seen: Option<u64>,
    /// The parent was last seen without a DS for this key since this time, after signet asked
    /// for its removal (`ds-gone`, checkds).
    #[serde(default)]
    pub ds_gone: Option<u64>,
    /// When the key was registered.
    pub created: u64,
    /// Lifetime from the policy; `None` is unlimited.
    #[serde(default)]
    pub lifetime: Option<u64>,
    /// The lifetime counts from here: registration for a zone's first key, the scheduled
    /// takeover for a successor.
    pub lifetime_from: u64,
    /// `signet rollover` asked for this key to be replaced at this time.
    #[serde(default)]
    pub roll_requested: Option<u64>,
    /// The first key of this key's line of successors, as (registration time, tag): keeps a
    /// successor matched to the same policy `keys` entry as its predecessor when several
    /// entries share role and algorithm. Absent in older files: the key itself.
    #[serde(default)]
    pub lineage: Option<(u64, u16)>,
    #[serde(default)]
    pub predecessor: Option<KeyRef>,
    #[serde(default)]
    pub successor: Option<KeyRef>,
    /// Timeline: DNSKEY first published.
    #[serde(default)]
    pub published: Option<u64>,
    /// Timeline: first signature (KRRSIG or ZRRSIG) published.
    #[serde(default)]
    pub active: Option<u64>,
    /// Timeline: goal set to hidden.
    #[serde(default)]
    pub retired: Option<u64>,
    /// Timeline: every record hidden after retirement.
    #[serde(default)]
    pub removed: Option<u64>,
}

impl KeyEntry {
    /// A fresh key, every record hidden, heading for omnipresent.
    pub fn new(key: KeyRef, role: KeyRole, keystore: &str, now: u64) -> KeyEntry {
        let hidden = Some(Record::new(RecordState::Hidden, now));
        KeyEntry {
            key,
            role,
            keystore: keystore.to_string(),
            goal: Goal::Omnipresent,
            dnskey: Record::new(RecordState::Hidden, now),
            krrsig: if role.signs_keys() { hidden } else { None },
            zrrsig: if role.signs_zone() { hidden } else { None },
            ds: if role.signs_keys() { hidden } else { None },
            ds_seen: None,
            ds_gone: None,
            created: now,
            lifetime: None,
            lifetime_from: now,
            roll_requested: None,
            lineage: None,
            predecessor: None,
            successor: None,
            published: None,
            active: None,
            retired: None,
            removed: None,
        }
    }

    /// The record kinds this key has (by role): DNSKEY always, KRRSIG and DS for KSK/CSK,
    /// ZRRSIG for ZSK/CSK.
    pub fn kinds(&self) -> impl Iterator<Item = RecordKind> + '_ {
        RecordKind::ALL
            .into_iter()
            .filter(|k| self.record(*k).is_some())
    }

    /// The record of `kind`, if the key has that kind.
    pub fn record(&self, kind: RecordKind) -> Option<&Record> {
        match kind {
            RecordKind::Dnskey => Some(&self.dnskey),
            RecordKind::Krrsig => self.krrsig.as_ref(),
            RecordKind::Zrrsig => self.zrrsig.as_ref(),
            RecordKind::Ds => self.ds.as_ref(),
        }
    }

    /// Mutable access to the record of `kind`.
    pub fn record_mut(&mut self, kind: RecordKind) -> Option<&mut Record> {
        match kind {
            RecordKind::Dnskey => Some(&mut self.dnskey),
            RecordKind::Krrsig => self.krrsig.as_mut(),
            RecordKind::Zrrsig => self.zrrsig.as_mut(),
            RecordKind::Ds => self.ds.as_mut(),
        }
    }

    /// The state of `kind`, hidden for a kind the key does not have.
    pub fn state(&self, kind: RecordKind) -> RecordState {
        self.record(kind)
            .map(|r| r.state)
            .unwrap_or(RecordState::Hidden)
    }

    /// Every record hidden.
    pub fn all_hidden(&self) -> bool {
        self.kinds().all(|k| self.state(k) == RecordState::Hidden)
    }

    /// The time the key's lifetime runs out and its successor should take over, if any.
    pub fn roll_at(&self) -> Option<u64> {
        let by_lifetime = self.lifetime.map(|l| self.lifetime_from.saturating_add(l));
        match (by_lifetime, self.roll_requested) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The key's lineage: its own (registration time, tag) for the first of a line.
    pub fn lineage(&self) -> (u64, u16) {
        self.lineage.unwrap_or((self.created, self.key.tag))
    }

    /// `12345 (ecdsap256sha256) zsk`.
    pub fn describe(&self) -> String {
        format!("key {} {}", self.key, self.role)
    }
}

/// Errors of the key state: bad input events and unreadable state files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KaspError {
    /// No key with this tag (and algorithm, when given) in the zone.
    UnknownKey { tag: u16, algorithm: Option<u8> },
    /// Several keys share the tag (only possible in a hand-edited state); name the algorithm.
    AmbiguousTag(u16),
    /// The key has no DS (a ZSK).
    NoDs(KeyRef),
    /// The tag is already used by a key of the zone: generate another key.
    TagInUse(KeyRef),
    /// `rollover` for a role the zone has no active key of.
    NoKeyOfRole(KeyRole),
    /// A key request that no longer applies (its predecessor was retired meanwhile).
    StaleRequest(String),
    /// The state file is not valid.
    BadState(String),
}

impl fmt::Display for KaspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KaspError::UnknownKey {
                tag,
                algorithm: None,
            } => write!(f, "the zone has no key with tag {tag}"),
            KaspError::UnknownKey {
                tag,
                algorithm: Some(a),
            } => write!(f, "the zone has no key with tag {tag} and algorithm {a}"),
            KaspError::AmbiguousTag(t) => write!(
                f,
                "several keys of the zone have tag {t}; give the algorithm as well"
            ),
            KaspError::NoDs(k) => write!(
                f,
                "key {k} is a zsk: the parent holds no DS for it (ds-seen/ds-gone are for ksk and csk keys)"
            ),
            KaspError::TagInUse(k) => write!(
                f,
                "key tag {} is already used by key {k} of the zone; generate another key",
                k.tag
            ),
            KaspError::NoKeyOfRole(r) => write!(f, "the zone has no active {r} key to roll"),
            KaspError::StaleRequest(s) => write!(f, "the key request no longer applies: {s}"),
            KaspError::BadState(s) => write!(f, "invalid key state: {s}"),
        }
    }
}

impl std::error::Error for KaspError {}

/// What an observation of the parent (`ds-seen` / `ds-gone`) meant for the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsNote {
    pub key: KeyRef,
    /// Human explanation, for the command's output and the log.
    pub message: String,
    /// The observation contradicts what signet wants (e.g. the parent dropped a DS that
    /// should stay, or keeps one that should go): worth a warning.
    pub unexpected: bool,
}

/// A key the state machine needs: the caller generates it in `keystore` and registers it with
/// [`ZoneKeyState::add_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRequest {
    pub role: KeyRole,
    pub algorithm: u8,
    pub keystore: String,
    pub lifetime: Option<u64>,
    /// The key this one replaces in a rollover (it retires when the new key is added).
    pub successor_of: Option<KeyRef>,
    /// For a successor: when it should take over (its predecessor's end of life).
    pub takeover: u64,
    /// Time a new DNSKEY needs to reach every cache (publication interval): a successor
    /// takes over no earlier than its registration plus this.
    pub lead: u64,
    /// For a key that is not a successor: an outgoing key it stands in for (policy change of
    /// algorithm or of roles), for the timeline only.
    pub replaces: Option<KeyRef>,
    /// Why the key is needed.
    pub reason: String,
}

/// The key state of one zone, as persisted (JSON) between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneKeyState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Every key not yet purged, in registration order.
    pub keys: Vec<KeyEntry>,
    /// The zone is going (or has gone) insecure: its policy has no keys.
    #[serde(default)]
    pub insecure: bool,
}

impl Default for ZoneKeyState {
    fn default() -> Self {
        ZoneKeyState::new()
    }
}

impl ZoneKeyState {
    /// A zone without keys.
    pub fn new() -> ZoneKeyState {
        ZoneKeyState {
            format: STATE_FORMAT,
            keys: Vec::new(),
            insecure: false,
        }
    }

    /// Pretty JSON for the state file (the caller writes it with temp + fsync + rename).
    pub fn to_json(&self) -> String {
        // Serialising plain structs of integers, strings and enums cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"))
    }

    /// Reads a state file's contents, checking every invariant the rules rely on.
    pub fn from_json(text: &str) -> Result<ZoneKeyState, KaspError> {
        if text.len() > MAX_STATE_JSON {
            return Err(KaspError::BadState(format!(
                "{} bytes is too large for a key state",
                text.len()
            )));
        }
        let s: ZoneKeyState =
            serde_json::from_str(text).map_err(|e| KaspError::BadState(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks the structural invariants: known format, unique tags, record kinds matching
    /// each role.
    pub fn validate(&self) -> Result<(), KaspError> {
        if self.format != STATE_FORMAT {
            return Err(KaspError::BadState(format!(
                "format {} is not supported (expected {STATE_FORMAT})",
                self.format
            )));
        }
        for (i, k) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|o| o.key.tag == k.key.tag) {
                return Err(KaspError::BadState(format!(
                    "two keys with tag {}",
                    k.key.tag
                )));
            }
            let ok = k.krrsig.is_some() == k.role.signs_keys()
                && k.ds.is_some() == k.role.signs_keys()
                && k.zrrsig.is_some() == k.role.signs_zone();
            if !ok {
                return Err(KaspError::BadState(format!(
                    "key {} ({}) has record kinds that do not match its role",
                    k.key, k.role
                )));
            }
            if k.goal == Goal::Omnipresent
                && k.kinds()
                    .any(|kind| k.state(kind) == RecordState::Unretentive)
            {
                return Err(KaspError::BadState(format!(
                    "key {} heads for omnipresent but has an unretentive record",
                    k.key
                )));
            }
        }
        Ok(())
    }

    /// The key with this reference.
    pub fn key(&self, key: KeyRef) -> Option<&KeyEntry> {
        self.keys.iter().find(|k| k.key == key)
    }

    fn key_mut(&mut self, key: KeyRef) -> Option<&mut KeyEntry> {
        self.keys.iter_mut().find(|k| k.key == key)
    }

    /// Whether `tag` is used by a key of the zone (any algorithm): the keystore must generate
    /// another key then.
    pub fn tag_in_use(&self, tag: u16) -> bool {
        self.keys.iter().any(|k| k.key.tag == tag)
    }

    /// Finds a key by tag, and algorithm when given.
    pub fn find(&self, tag: u16, algorithm: Option<u8>) -> Result<KeyRef, KaspError> {
        let mut found = self
            .keys
            .iter()
            .filter(|k| k.key.tag == tag && algorithm.is_none_or(|a| k.key.algorithm == a));
        match (found.next(), found.next()) {
            (Some(k), None) => Ok(k.key),
            (Some(_), Some(_)) => Err(KaspError::AmbiguousTag(tag)),
            (None, _) => Err(KaspError::UnknownKey { tag, algorithm }),
        }
    }

    /// Registers a key generated for `request` (from [`super::StepOutcome::new_keys_needed`]).
    /// For a successor, the predecessor's goal becomes hidden now: it stays published until
    /// the rules let it go. Fails if the tag is taken (generate another key) or the request
    /// no longer applies.
    pub fn add_key(
        &mut self,
        request: &KeyRequest,
        key: KeyRef,
        now: u64,
    ) -> Result<(), KaspError> {
        if let Some(other) = self.keys.iter().find(|k| k.key.tag == key.tag) {
            return Err(KaspError::TagInUse(other.key));
        }
        if key.algorithm != request.algorithm {
            return Err(KaspError::StaleRequest(format!(
                "the request was for algorithm {}, not {}",
                request.algorithm, key.algorithm
            )));
        }
        let mut entry = KeyEntry::new(key, request.role, &request.keystore, now);
        entry.lifetime = request.lifetime;
        if let Some(p) = request.successor_of {
            let pred = self
                .key_mut(p)
                .ok_or_else(|| KaspError::StaleRequest(format!("key {p} is gone")))?;
            if pred.goal != Goal::Omnipresent || pred.successor.is_some() {
                return Err(KaspError::StaleRequest(format!(
                    "key {p} is already retiring"
                )));
            }
            pred.goal = Goal::Hidden;
            pred.retired = Some(now);
            pred.successor = Some(key);
            entry.lineage = Some(pred.lineage());
            entry.predecessor = Some(p);
            entry.lifetime_from = request.takeover.max(now.saturating_add(request.lead));
        } else {
            entry.lifetime_from = now;
            if let Some(r) = request.replaces {
                if let Some(old) = self.key_mut(r) {
                    if old.successor.is_none() {
                        old.successor = Some(key);
                    }
                    entry.lineage = Some(old.lineage());
                    entry.predecessor = Some(r);
                }
            }
        }
        self.keys.push(entry);
        Ok(())
    }

    /// Registers a key that is already in service, e.g. imported from another signer or
    /// present before key management: its DNSKEY and signatures are taken as omnipresent
    /// since `since`, its DS as omnipresent when `ds_at_parent`, else hidden (signet will then
    /// ask the parent for it). The lifetime counts from `since`.
    pub fn adopt_key(
        &mut self,
        key: KeyRef,
        role: KeyRole,
        keystore: &str,
        lifetime: Option<u64>,
        since: u64,
        ds_at_parent: bool,
    ) -> Result<(), KaspError> {
        if let Some(other) = self.keys.iter().find(|k| k.key.tag == key.tag) {
            return Err(KaspError::TagInUse(other.key));
        }
        let mut e = KeyEntry::new(key, role, keystore, since);
        let omni = Record::new(RecordState::Omnipresent, since);
        e.dnskey = omni;
        if role.signs_keys() {
            e.krrsig = Some(omni);
            e.ds = Some(if ds_at_parent {
                omni
            } else {
                Record::new(RecordState::Hidden, since)
            });
            if ds_at_parent {
                e.ds_seen = Some(since);
            }
        }
        if role.signs_zone() {
            e.zrrsig = Some(omni);
        }
        e.lifetime = lifetime;
        e.published = Some(since);
        e.active = Some(since);
        self.keys.push(e);
        Ok(())
    }

    /// `signet rollover --role ROLE`: every active key of `role` is to be replaced now (with
    /// the usual safe timing: a rollover is never a flag day). Works during a rollover too:
    /// the successor being introduced is replaced in turn. Returns the keys concerned.
    pub fn rollover(&mut self, role: KeyRole, now: u64) -> Result<Vec<KeyRef>, KaspError> {
        let mut out = Vec::new();
        for k in &mut self.keys {
            if k.role == role && k.goal == Goal::Omnipresent && k.successor.is_none() {
                k.roll_requested = Some(k.roll_requested.map_or(now, |r| r.min(now)));
                out.push(k.key);
            }
        }
        if out.is_empty() {
            return Err(KaspError::NoKeyOfRole(role));
        }
        Ok(out)
    }

    /// `signet ds-seen`: the parent publishes a DS for the key (tag, and algorithm if given).
    pub fn ds_seen(
        &mut self,
        tag: u16,
        algorithm: Option<u8>,
        now: u64,
    ) -> Result<DsNote, KaspError> {
        let key = self.find(tag, algorithm)?;
        let Some(k) = self.key_mut(key) else {
            return Err(KaspError::UnknownKey { tag, algorithm });
        };
        let goal = k.goal;
        let Some(ds) = k.ds.as_mut() else {
            return Err(KaspError::NoDs(key));
        };
        let note = |message: String, unexpected: bool| DsNote {
            key,
            message,
            unexpected,
        };
        Ok(match ds.state {
            RecordState::Rumoured => {
                k.ds_gone = None;
                if k.ds_seen.is_none() {
                    k.ds_seen = Some(now);
                }
                note(format!("the parent publishes the DS for key {key}, as requested; it is trusted once the parent's DS TTL has passed"), false)
            }
            RecordState::Omnipresent => {
                k.ds_gone = None;
                if k.ds_seen.is_none() {
                    k.ds_seen = Some(now);
                }
                note(format!("the parent publishes the DS for key {key}"), false)
            }
            RecordState::Unretentive => {
                k.ds_gone = None;
                note(
                    format!(
                        "the parent still publishes the DS for key {key}; signet asked for its removal (CDS) and waits for it"
                    ),
                    false,
                )
            }
            RecordState::Hidden if goal == Goal::Omnipresent => {
                k.ds_gone = None;
                if k.ds_seen.is_none() {
                    k.ds_seen = Some(now);
                }
                note(
                    format!(
                        "the parent already publishes a DS for key {key}, before signet asked for it"
                    ),
                    true,
                )
            }
            RecordState::Hidden => {
                // A retired key's DS reappeared: ask for its removal again.
                ds.state = RecordState::Unretentive;
                ds.since = now;
                ds.partial = true;
                // nothing to publish: the CDS never named it again
                ds.confirmed = true;
                k.ds_gone = None;
                k.ds_seen = None;
                k.removed = None;
                note(
                    format!(
                        "the parent publishes a DS for retired key {key}; signet asks for its removal and keeps the key until it is gone"
                    ),
                    true,
                )
            }
        })
    }

    /// `signet ds-gone`: the parent no longer publishes a DS for the key.
    pub fn ds_gone(
        &mut self,
        tag: u16,
        algorithm: Option<u8>,
        now: u64,
    ) -> Result<DsNote, KaspError> {
        let key = self.find(tag, algorithm)?;
        let Some(k) = self.key_mut(key) else {
            return Err(KaspError::UnknownKey { tag, algorithm });
        };
        let Some(ds) = k.ds.as_mut() else {
            return Err(KaspError::NoDs(key));
        };
        let note = |message: String, unexpected: bool| DsNote {
            key,
            message,
            unexpected,
        };
        Ok(match ds.state {
            RecordState::Unretentive => {
                k.ds_seen = None;
                if k.ds_gone.is_none() {
                    k.ds_gone = Some(now);
                }
                note(format!("the parent no longer publishes the DS for key {key}, as requested; the key goes once the parent's DS TTL has passed"), false)
            }
            RecordState::Hidden => {
                k.ds_seen = None;
                note(format!("the parent publishes no DS for key {key}"), false)
            }
            RecordState::Rumoured => {
                k.ds_seen = None;
                note(
                    format!(
                        "the parent does not publish the DS for key {key} yet; signet waits for it"
                    ),
                    false,
                )
            }
            RecordState::Omnipresent => {
                // The parent dropped a DS that should stay: we no longer know which caches
                // hold it; ask for it again and wait to see it.
                ds.state = RecordState::Rumoured;
                ds.since = now;
                ds.confirmed = true;
                k.ds_seen = None;
                k.ds_gone = None;
                note(
                    format!(
                        "the parent dropped the DS for key {key}, which should stay; signet keeps asking for it (CDS) and waits to see it again"
                    ),
                    true,
                )
            }
        })
    }

    /// The zone task served (on the primary) a signed version built from the current
    /// [`super::plan`]: the records changed since the last confirmation start their timers
    /// now. Returns whether anything was waiting for this.
    pub fn published(&mut self, now: u64) -> bool {
        let mut any = false;
        for k in &mut self.keys {
            for kind in RecordKind::ALL {
                if let Some(r) = k.record_mut(kind) {
                    if !r.confirmed {
                        r.confirmed = true;
                        r.since = r.since.max(now);
                        if r.state == RecordState::Rumoured {
                            r.published_since = r.since;
                        }
                        any = true;
                    }
                }
            }
        }
        any
    }

    /// Whether a change decided by `step` still waits for its publication.
    pub fn publication_pending(&self) -> bool {
        self.keys.iter().any(|k| {
            k.kinds()
                .any(|kind| k.record(kind).is_some_and(|r| !r.confirmed))
        })
    }

    /// Drops a purged key (reported by `step` in `purge`) once its key material is deleted.
    pub fn forget(&mut self, key: KeyRef) -> Result<(), KaspError> {
        let before = self.keys.len();
        self.keys.retain(|k| k.key != key);
        if self.keys.len() == before {
            return Err(KaspError::UnknownKey {
                tag: key.tag,
                algorithm: Some(key.algorithm),
            });
        }
        Ok(())
    }
}
