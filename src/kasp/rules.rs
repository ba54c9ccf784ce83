//! The rules that move a [`ZoneKeyState`]: RFC 7583 timing, the safety evaluation over every
//! set of cached data a resolver may hold, the rollover-method approvals, the key lifecycle from
//! the policy, and [`step`] which applies them. See the module documentation of [`super`] for
//! the model.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::{self, Policy};
use crate::keystore::KeyRole;

use super::plan::plan;
use super::state::{
    Goal, KeyEntry, KeyRef, KeyRequest, Record, RecordKind, RecordState, ZoneKeyState,
};
use super::time::fmt_time;

/// The waits of RFC 7583 derived from a policy, in seconds.
///
/// | transition | wait from the record's publication (or parent observation) |
/// |---|---|
/// | DNSKEY, KRRSIG rumoured → omnipresent | `dnskey-ttl + zone-propagation-delay + publish-safety` (Ipub, §3.3.1) |
/// | DNSKEY, KRRSIG unretentive → hidden | `dnskey-ttl + zone-propagation-delay + retire-safety` (§3.3.2) |
/// | ZRRSIG rumoured → omnipresent | `max-zone-ttl + zone-propagation-delay + publish-safety` (Dsgn = 0, §3.2.1) |
/// | ZRRSIG unretentive → hidden | `max-zone-ttl + zone-propagation-delay + retire-safety` (Iret, §3.2.1) |
/// | DS rumoured → omnipresent | from `ds-seen`: `parent-ds-ttl + parent-propagation-delay + publish-safety` (§3.3.1) |
/// | DS unretentive → hidden | from `ds-gone`: `parent-ds-ttl + parent-propagation-delay + retire-safety` (Iret, §3.3.1) |
///
/// A successor key is requested `lead` (= the DNSKEY publication interval) before its
/// predecessor's lifetime ends, so that it can take over exactly then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub dnskey_publish: u64,
    pub dnskey_retire: u64,
    pub zone_publish: u64,
    pub zone_retire: u64,
    pub ds_publish: u64,
    pub ds_retire: u64,
    pub lead: u64,
}

impl Timing {
    /// The waits of `p`.
    pub fn from_policy(p: &Policy) -> Timing {
        let dk = p.dnskey_ttl.saturating_add(p.zone_propagation_delay);
        let zs = p.max_zone_ttl.saturating_add(p.zone_propagation_delay);
        let ds = p.parent_ds_ttl.saturating_add(p.parent_propagation_delay);
        Timing {
            dnskey_publish: dk.saturating_add(p.publish_safety),
            dnskey_retire: dk.saturating_add(p.retire_safety),
            zone_publish: zs.saturating_add(p.publish_safety),
            zone_retire: zs.saturating_add(p.retire_safety),
            ds_publish: ds.saturating_add(p.publish_safety),
            ds_retire: ds.saturating_add(p.retire_safety),
            lead: dk.saturating_add(p.publish_safety),
        }
    }

    /// The wait before a record of `kind` reaches `to` (omnipresent or hidden).
    pub fn wait(&self, kind: RecordKind, to: RecordState) -> u64 {
        let publish = to == RecordState::Omnipresent;
        match (kind, publish) {
            (RecordKind::Dnskey | RecordKind::Krrsig, true) => self.dnskey_publish,
            (RecordKind::Dnskey | RecordKind::Krrsig, false) => self.dnskey_retire,
            (RecordKind::Zrrsig, true) => self.zone_publish,
            (RecordKind::Zrrsig, false) => self.zone_retire,
            (RecordKind::Ds, true) => self.ds_publish,
            (RecordKind::Ds, false) => self.ds_retire,
        }
    }

    /// The formula behind [`Timing::wait`], for messages.
    pub fn formula(kind: RecordKind, to: RecordState) -> &'static str {
        let publish = to == RecordState::Omnipresent;
        match (kind, publish) {
            (RecordKind::Dnskey | RecordKind::Krrsig, true) => {
                "dnskey-ttl + zone-propagation-delay + publish-safety"
            }
            (RecordKind::Dnskey | RecordKind::Krrsig, false) => {
                "dnskey-ttl + zone-propagation-delay + retire-safety"
            }
            (RecordKind::Zrrsig, true) => "max-zone-ttl + zone-propagation-delay + publish-safety",
            (RecordKind::Zrrsig, false) => "max-zone-ttl + zone-propagation-delay + retire-safety",
            (RecordKind::Ds, true) => {
                "ds-seen + parent-ds-ttl + parent-propagation-delay + publish-safety"
            }
            (RecordKind::Ds, false) => {
                "ds-gone + parent-ds-ttl + parent-propagation-delay + retire-safety"
            }
        }
    }
}

/// Options of [`step_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepOptions {
    /// The operator ran `signet step`: in manual mode, every transition that is due and safe
    /// at this instant is made.
    pub operator_step: bool,
    /// TEST HOOK, never set in production: skip the safety evaluation (possible cache
    /// contents and publication invariants), keeping only timers and approvals. Exists so
    /// that tests can show the glitch checker catching what the rules prevent.
    #[doc(hidden)]
    pub unsafe_skip_safety: bool,
}

/// One change made by [`step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A record of a key changed state.
    Record {
        key: KeyRef,
        role: KeyRole,
        record: RecordKind,
        from: RecordState,
        to: RecordState,
    },
    /// A key's goal became hidden: it is being replaced, or the policy no longer wants it.
    Retired {
        key: KeyRef,
        role: KeyRole,
        reason: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Record {
                key,
                role,
                record,
                from,
                to,
            } => {
                let what = match (record, to) {
                    (RecordKind::Dnskey, RecordState::Rumoured) => "DNSKEY published",
                    (RecordKind::Dnskey, RecordState::Omnipresent) => "DNSKEY in every cache",
                    (RecordKind::Dnskey, RecordState::Unretentive) => "DNSKEY withdrawn",
                    (RecordKind::Dnskey, RecordState::Hidden) => "DNSKEY gone from every cache",
                    (RecordKind::Krrsig, RecordState::Rumoured) => "signs the DNSKEY RRset",
                    (RecordKind::Krrsig, RecordState::Omnipresent) => "DNSKEY RRSIG in every cache",
                    (RecordKind::Krrsig, RecordState::Unretentive) => {
                        "stops signing the DNSKEY RRset"
                    }
                    (RecordKind::Krrsig, RecordState::Hidden) => {
                        "DNSKEY RRSIG gone from every cache"
                    }
                    (RecordKind::Zrrsig, RecordState::Rumoured) => "signs the zone",
                    (RecordKind::Zrrsig, RecordState::Omnipresent) => "zone RRSIGs in every cache",
                    (RecordKind::Zrrsig, RecordState::Unretentive) => "stops signing the zone",
                    (RecordKind::Zrrsig, RecordState::Hidden) => {
                        "zone RRSIGs gone from every cache"
                    }
                    (RecordKind::Ds, RecordState::Rumoured) => "DS requested from the parent (CDS)",
                    (RecordKind::Ds, RecordState::Omnipresent) => "DS trusted by every resolver",
                    (RecordKind::Ds, RecordState::Unretentive) => {
                        "DS removal requested from the parent"
                    }
                    (RecordKind::Ds, RecordState::Hidden) => "DS gone from every resolver",
                };
                write!(f, "key {key} {role}: {what} ({record} {from} → {to})")
            }
            Change::Retired { key, role, reason } => {
                write!(f, "key {key} {role}: retired ({reason})")
            }
        }
    }
}

/// What [`step`] did and what the zone waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepOutcome {
    /// Every change, in order.
    pub changes: Vec<Change>,
    /// The [`plan`] changed: sign and publish a new version, then call
    /// [`ZoneKeyState::published`].
    pub republish: bool,
    /// Human reasons the zone is not at rest: timers with their dates, the parent, manual mode,
    /// transitions the safety rules hold back.
    pub waiting_for: Vec<String>,
    /// In manual mode: the transitions that are due and safe but wait for `signet step`.
    pub blocked_manual: Vec<Change>,
    /// The earliest time at which calling `step` again can change something (timers, lifetime
    /// ends, purges, an old version leaving the caches while a transition is held back).
    /// `None` when only an external event (publication, parent, operator, policy) can.
    pub next_event: Option<u64>,
    /// Keys to generate now and register with [`ZoneKeyState::add_key`]; then call `step`
    /// again at once.
    pub new_keys_needed: Vec<KeyRequest>,
    /// Keys hidden everywhere for longer than `purge-keys`: delete their material, then
    /// [`ZoneKeyState::forget`] them.
    pub purge: Vec<KeyRef>,
    /// A zone-signing key's first signatures were held back by the caller's hold
    /// ([`step_held`]): step again when what it waits for may have changed.
    pub held: bool,
}

/// `step` with default options: see [`step_with`].
pub fn step(
    state: &mut ZoneKeyState,
    policy: &Policy,
    now: u64,
    operator_step: bool,
) -> StepOutcome {
    step_with(
        state,
        policy,
        now,
        &StepOptions {
            operator_step,
            ..StepOptions::default()
        },
    )
}

/// Brings the zone's key state up to `now` under `policy` (a policy without keys means: go
/// insecure). Idempotent: calling it again at the same instant changes nothing. Call it at
/// start, at [`StepOutcome::next_event`], after every input event (`add_key`, `ds_seen`,
/// `ds_gone`, `rollover`, a policy change) and, in manual mode, with `operator_step` for
/// `signet step`.
pub fn step_with(
    state: &mut ZoneKeyState,
    policy: &Policy,
    now: u64,
    opts: &StepOptions,
) -> StepOutcome {
    step_held(state, policy, now, opts, &|_| None)
}

/// What may hold back the first signatures of a new zone-signing key in a rollover (the
/// ZRRSIG hidden → rumoured transition while another key of its algorithm signs the zone):
/// `Some(reason)` holds it. Multi-signer (RFC 8901 model 2) uses it to wait until the other
/// signers publish the new ZSK, so that a resolver holding another signer's DNSKEY RRset can
/// validate the new signatures.
pub type ZoneSigningHold<'a> = &'a dyn Fn(&KeyEntry) -> Option<String>;

/// [`step_with`] with a [`ZoneSigningHold`].
pub fn step_held(
    state: &mut ZoneKeyState,
    policy: &Policy,
    now: u64,
    opts: &StepOptions,
    hold: ZoneSigningHold<'_>,
) -> StepOutcome {
    let timing = Timing::from_policy(policy);
    let before = plan(state);
    let mut out = StepOutcome::default();
    state.insecure = policy.keys.is_empty();
    let mut next: Option<u64> = None;
    lifecycle(state, policy, now, &timing, &mut out, &mut next);

    // Initial signing of an unsigned zone is not a rollover: manual mode does not hold it.
    let manual = policy.manual_mode && !opts.operator_step && !zone_untouched(state);
    let mut blocked: Vec<Change> = Vec::new();
    let mut held: Vec<String> = Vec::new();
    loop {
        let mut changed = false;
        // Timer-driven transitions first: they only record what caches already hold.
        for i in 0..state.keys.len() {
            for kind in RecordKind::ALL {
                let to = if settles(&state.keys[i], kind) {
                    RecordState::Omnipresent
                } else {
                    match wanted(&state.keys[i], kind) {
                        Some(to) if !is_voluntary(to) => to,
                        _ => continue,
                    }
                };
                if let Some(due) = due_time(&state.keys[i], kind, to, &timing) {
                    if due <= now {
                        apply(state, i, kind, to, now, &mut out);
                        changed = true;
                    }
                }
            }
        }
        // Then the transitions that change what is published, one at a time.
        for i in 0..state.keys.len() {
            for kind in RecordKind::ALL {
                let Some(to) = wanted(&state.keys[i], kind) else {
                    continue;
                };
                if !is_voluntary(to) || approval(state, i, kind, to).is_err() {
                    continue;
                }
                if !opts.unsafe_skip_safety && safety(state, i, kind, to, now, &timing).is_err() {
                    continue;
                }
                if kind == RecordKind::Zrrsig && to == RecordState::Rumoured {
                    let k = &state.keys[i];
                    let rollover = state.keys.iter().enumerate().any(|(j, o)| {
                        j != i
                            && o.key.algorithm == k.key.algorithm
                            && o.state(RecordKind::Zrrsig).published()
                    });
                    if rollover {
                        if let Some(why) = hold(k) {
                            let w = format!("{}: {kind} {to}: {why}", k.describe());
                            if !held.contains(&w) {
                                held.push(w);
                            }
                            continue;
                        }
                    }
                }
                if manual {
                    let k = &state.keys[i];
                    let c = Change::Record {
                        key: k.key,
                        role: k.role,
                        record: kind,
                        from: k.state(kind),
                        to,
                    };
                    if !blocked.contains(&c) {
                        blocked.push(c);
                    }
                    continue;
                }
                apply(state, i, kind, to, now, &mut out);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for c in &blocked {
        tracing::info!("manual-mode: {c} is due; waiting for `signet step`");
    }
    explain(state, now, &timing, &blocked, &mut out, &mut next);
    out.held = !held.is_empty();
    out.waiting_for.extend(held);
    purge(state, policy, now, &mut out, &mut next);
    out.blocked_manual = blocked;
    out.next_event = next.filter(|t| *t > now).or(next.map(|_| now + 1));
    out.republish = plan(state) != before;
    out
}

fn min_into(next: &mut Option<u64>, t: u64) {
    *next = Some(next.map_or(t, |n| n.min(t)));
}

/// Whether `to` is a transition that changes what is published (and so needs the safety
/// evaluation and, in manual mode, the operator).
fn is_voluntary(to: RecordState) -> bool {
    matches!(to, RecordState::Rumoured | RecordState::Unretentive)
}

/// The next state a record of `k` moves to; `None` when at rest. The timer-driven moves
/// (rumoured → omnipresent, unretentive → hidden) only record what caches hold and happen
/// whatever the goal; the others follow the goal.
fn wanted(k: &KeyEntry, kind: RecordKind) -> Option<RecordState> {
    let s = k.record(kind)?.state;
    use RecordState::*;
    match (k.goal, s) {
        (Goal::Omnipresent, Rumoured) => Some(Omnipresent),
        (_, Unretentive) => Some(Hidden),
        (Goal::Omnipresent, Hidden) => Some(Rumoured),
        (Goal::Omnipresent, Omnipresent) => None,
        (Goal::Hidden, Hidden) => None,
        (Goal::Hidden, Rumoured | Omnipresent) => Some(Unretentive),
    }
}

/// For a retiring key's rumoured record: it reaches every cache all the same once its timer
/// ran out, which `step` records before withdrawing it.
fn settles(k: &KeyEntry, kind: RecordKind) -> bool {
    k.goal == Goal::Hidden && k.state(kind) == RecordState::Rumoured
}

/// When a timed transition (to omnipresent or hidden) becomes possible; `None` while it waits
/// for an event (publication confirmed, the parent observed).
fn due_time(k: &KeyEntry, kind: RecordKind, to: RecordState, t: &Timing) -> Option<u64> {
    let r = k.record(kind)?;
    if !r.confirmed && kind != RecordKind::Ds {
        return None;
    }
    earliest(k, kind, to, t)
}

/// The due time of a timed transition if its record were published now: a lower bound of
/// [`due_time`] for an unconfirmed record (publication only comes later).
fn earliest(k: &KeyEntry, kind: RecordKind, to: RecordState, t: &Timing) -> Option<u64> {
    let r = k.record(kind)?;
    let wait = t.wait(kind, to);
    if kind == RecordKind::Ds {
        let obs = if to == RecordState::Omnipresent {
            k.ds_seen?
        } else {
            k.ds_gone?
        };
        return Some(obs.max(r.since).saturating_add(wait));
    }
    Some(r.since.saturating_add(wait))
}

fn apply(
    state: &mut ZoneKeyState,
    i: usize,
    kind: RecordKind,
    to: RecordState,
    now: u64,
    out: &mut StepOutcome,
) {
    let k = &mut state.keys[i];
    let (key, role) = (k.key, k.role);
    let Some(r) = k.record_mut(kind) else {
        return;
    };
    let from = r.state;
    set_state(r, to, now);
    if kind == RecordKind::Ds {
        match to {
            RecordState::Rumoured => k.ds_gone = None,
            RecordState::Unretentive => k.ds_seen = None,
            _ => {}
        }
    }
    if to == RecordState::Rumoured {
        match kind {
            RecordKind::Dnskey if k.published.is_none() => k.published = Some(now),
            RecordKind::Krrsig | RecordKind::Zrrsig if k.active.is_none() => k.active = Some(now),
            _ => {}
        }
    }
    if k.goal == Goal::Hidden && k.removed.is_none() && k.all_hidden() {
        k.removed = Some(now);
    }
    let c = Change::Record {
        key,
        role,
        record: kind,
        from,
        to,
    };
    tracing::info!("{c}");
    out.changes.push(c);
}

fn set_state(r: &mut Record, to: RecordState, now: u64) {
    let from = r.state;
    r.state = to;
    r.since = now;
    if to == RecordState::Rumoured && from == RecordState::Hidden {
        r.published_since = now;
    }
    r.partial = to == RecordState::Unretentive && from == RecordState::Rumoured;
    if is_voluntary(to) {
        r.confirmed = false;
    }
}

/// No key has any record published or remembered: the zone has never been signed (or is
/// fully unsigned again).
fn zone_untouched(state: &ZoneKeyState) -> bool {
    state
        .keys
        .iter()
        .all(|k| k.all_hidden() && k.ds_seen.is_none())
}

/// Rollover-method approvals (local policy on top of safety), for transitions to rumoured:
///
/// * KRRSIG: once the DNSKEY is published — or before, for an algorithm that no other key
///   signs the DNSKEY RRset with yet (RFC 6781 §4.1.4: new-algorithm signatures first);
/// * ZRRSIG: once the DNSKEY is omnipresent (pre-publication, RFC 6781 §4.1.1.1) — or at
///   once for an algorithm no other key signs the zone with (a new algorithm, or a new
///   zone);
/// * DS: once DNSKEY and KRRSIG are omnipresent (double-KSK, RFC 6781 §4.1.2).
fn approval(
    state: &ZoneKeyState,
    i: usize,
    kind: RecordKind,
    to: RecordState,
) -> Result<(), String> {
    if to != RecordState::Rumoured {
        return Ok(());
    }
    let k = &state.keys[i];
    let alg = k.key.algorithm;
    let others_sign = |which: RecordKind| {
        state
            .keys
            .iter()
            .enumerate()
            .any(|(j, o)| j != i && o.key.algorithm == alg && o.state(which).published())
    };
    match kind {
        RecordKind::Dnskey => Ok(()),
        RecordKind::Krrsig => {
            if k.dnskey.state.published() || !others_sign(RecordKind::Krrsig) {
                Ok(())
            } else {
                Err("waits for its DNSKEY to be published".into())
            }
        }
        RecordKind::Zrrsig => {
            if k.dnskey.state == RecordState::Omnipresent || !others_sign(RecordKind::Zrrsig) {
                Ok(())
            } else {
                Err("waits for its DNSKEY to reach every cache (pre-publication)".into())
            }
        }
        RecordKind::Ds => {
            if k.dnskey.state == RecordState::Omnipresent
                && k.state(RecordKind::Krrsig) == RecordState::Omnipresent
            {
                Ok(())
            } else {
                Err("waits for its DNSKEY and its DNSKEY signature to reach every cache".into())
            }
        }
    }
}

/// Whether a key takes part in the safety evaluation: anything not hidden, or a DS the parent
/// is seen to hold.
fn relevant(k: &KeyEntry) -> bool {
    !k.all_hidden() || k.ds_seen.is_some()
}

/// The safety rule for a transition that changes what is published: after it,
///
/// 1. every combination of cached DS set, DNSKEY RRset (with its RRSIGs) and zone RRset (with
///    its RRSIGs) that a resolver may hold validates ([`evaluate`]), and
/// 2. unless the zone goes insecure, the publication invariants that held before still hold
///    ([`invariants`]).
fn safety(
    state: &ZoneKeyState,
    i: usize,
    kind: RecordKind,
    to: RecordState,
    now: u64,
    timing: &Timing,
) -> Result<(), String> {
    let mut keys: Vec<KeyEntry> = state
        .keys
        .iter()
        .enumerate()
        .filter(|(j, k)| *j == i || relevant(k))
        .map(|(_, k)| k.clone())
        .collect();
    let before = invariants(&keys);
    let Some(pos) = keys.iter().position(|k| k.key == state.keys[i].key) else {
        return Err("internal: key vanished".into());
    };
    if let Some(r) = keys[pos].record_mut(kind) {
        set_state(r, to, now);
    }
    if kind == RecordKind::Ds {
        match to {
            RecordState::Rumoured => keys[pos].ds_gone = None,
            RecordState::Unretentive => keys[pos].ds_seen = None,
            _ => {}
        }
    }
    if !state.insecure {
        let after = invariants(&keys);
        for (n, (b, a)) in before.iter().zip(after.iter()).enumerate() {
            if *b && !*a {
                return Err(INVARIANTS[n].to_string());
            }
        }
    }
    evaluate(&keys, now, timing)
}

/// The publication invariants, in the order of [`invariants`].
const INVARIANTS: [&str; 3] = [
    "the DNSKEY RRset would be empty",
    "an algorithm in the DNSKEY RRset would lack a signature over the DNSKEY RRset or the zone (RFC 4035 §2.2)",
    "the parent would be asked to hold no DS at all",
];

/// Invariants of the published version (checked as "held before ⇒ holds after", lifted
/// when going insecure): a non-empty DNSKEY RRset; for every algorithm in it, a KRRSIG and
/// a ZRRSIG of that algorithm (RFC 4035 §2.2, so the zone is always fully signed); a
/// non-empty set of wanted DS.
fn invariants(keys: &[KeyEntry]) -> [bool; 3] {
    let published = |k: &KeyEntry, kind| k.state(kind).published();
    let dnskey_algs: BTreeSet<u8> = keys
        .iter()
        .filter(|k| published(k, RecordKind::Dnskey))
        .map(|k| k.key.algorithm)
        .collect();
    let signed = dnskey_algs.iter().all(|a| {
        let of = |kind| {
            keys.iter()
                .any(|k| k.key.algorithm == *a && published(k, kind))
        };
        of(RecordKind::Krrsig) && of(RecordKind::Zrrsig)
    });
    [
        !dnskey_algs.is_empty(),
        signed,
        keys.iter().any(|k| published(k, RecordKind::Ds)),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presence {
    Absent,
    Present,
    Maybe,
}

/// Whether a DNSKEY, KRRSIG or ZRRSIG is in the version of its RRset that was served at time
/// `tau` (within the window caches can still hold). signet controls these records, so this is
/// exact: published from `published_since` until withdrawn (`since` of unretentive). A hidden
/// record is taken as absent even from versions old enough to have had it, which only
/// understates what caches hold — the safe side for records that help validation.
fn presence(r: &Record, tau: u64) -> Presence {
    let published = tau >= r.published_since;
    match r.state {
        RecordState::Hidden => Presence::Absent,
        RecordState::Rumoured | RecordState::Omnipresent if published => Presence::Present,
        RecordState::Rumoured | RecordState::Omnipresent => Presence::Absent,
        RecordState::Unretentive if published && tau < r.since => Presence::Present,
        RecordState::Unretentive => Presence::Absent,
    }
}

/// Whether the parent's DS set served at `tau` holds the key's DS. The parent honours
/// requests (CDS) at times signet does not know, so only observations are certain: present
/// from `ds-seen` on, absent from `ds-gone` on (each cleared by a contrary request); a DS
/// never asked for and never seen is absent; anything else may or may not be there.
fn ds_presence(k: &KeyEntry, r: &Record, tau: u64) -> Presence {
    if k.ds_gone.is_some_and(|g| tau >= g) {
        return Presence::Absent;
    }
    if k.ds_seen.is_some_and(|s| tau >= s) {
        return Presence::Present;
    }
    match r.state {
        RecordState::Hidden => Presence::Absent,
        _ => Presence::Maybe,
    }
}

/// Above this many possible versions of one RRset, the evaluation gives up (unsafe).
const MAX_WORLDS: usize = 1 << 16;

/// The distinct contents (as bitmasks over `keys`) that the versions of an RRset served at
/// the times `taus` may have, expanding every uncertain record both ways.
fn worlds<const N: usize>(
    keys: &[KeyEntry],
    taus: &BTreeSet<u64>,
    at: impl Fn(&KeyEntry, u64) -> [Presence; N],
) -> Result<BTreeSet<[u64; N]>, String> {
    let mut all = BTreeSet::new();
    for &tau in taus {
        let mut masks: Vec<[u64; N]> = vec![[0; N]];
        for (i, k) in keys.iter().enumerate() {
            let bit = 1u64 << i;
            for (n, p) in at(k, tau).into_iter().enumerate() {
                match p {
                    Presence::Absent => {}
                    Presence::Present => masks.iter_mut().for_each(|m| m[n] |= bit),
                    Presence::Maybe => {
                        let more: Vec<[u64; N]> = masks
                            .iter()
                            .map(|m| {
                                let mut m = *m;
                                m[n] |= bit;
                                m
                            })
                            .collect();
                        masks.extend(more);
                    }
                }
                if masks.len() > MAX_WORLDS {
                    return Err("too many uncertain records to evaluate".into());
                }
            }
        }
        all.extend(masks);
    }
    Ok(all)
}

/// A change of an RRset at `at`: the version it replaced stays in caches for `window` (the
/// model's wait for that kind of change), or indefinitely while `at` is not a confirmed
/// publication.
#[derive(Debug, Clone, Copy)]
struct Breakpoint {
    at: u64,
    window: u64,
    confirmed: bool,
}

impl Breakpoint {
    fn live(&self, now: u64) -> bool {
        !self.confirmed || self.at.saturating_add(self.window) > now
    }
}

/// The instants whose served versions represent every version of an RRset caches may still
/// hold: now (after the changes of this instant), and just before each change whose replaced
/// version may still be cached. Every change of a record's presence is a breakpoint, so each
/// distinct cacheable version has a representative.
fn taus(now: u64, bps: impl Iterator<Item = Breakpoint>) -> BTreeSet<u64> {
    let mut t: BTreeSet<u64> = bps
        .filter(|b| b.live(now))
        .map(|b| b.at.saturating_sub(1))
        .collect();
    t.insert(now);
    t
}

/// The breakpoints of a DNSKEY/KRRSIG/ZRRSIG record: its publication (an introduction, with
/// the publish wait) and, when unretentive, its withdrawal (with the retire wait).
fn breakpoints(r: Option<&Record>, publish: u64, retire: u64) -> Vec<Breakpoint> {
    let Some(r) = r else {
        return Vec::new();
    };
    match r.state {
        RecordState::Hidden => Vec::new(),
        RecordState::Rumoured | RecordState::Omnipresent => vec![Breakpoint {
            at: r.published_since,
            window: publish,
            confirmed: r.confirmed,
        }],
        RecordState::Unretentive => vec![
            Breakpoint {
                at: r.published_since,
                window: publish,
                confirmed: true,
            },
            Breakpoint {
                at: r.since,
                window: retire,
                confirmed: r.confirmed,
            },
        ],
    }
}

/// Every breakpoint of the three RRsets: (DNSKEY response, zone data, DS set).
fn all_breakpoints(
    keys: &[KeyEntry],
    t: &Timing,
) -> (Vec<Breakpoint>, Vec<Breakpoint>, Vec<Breakpoint>) {
    let mut k = Vec::new();
    let mut z = Vec::new();
    let mut d = Vec::new();
    for key in keys {
        k.extend(breakpoints(
            Some(&key.dnskey),
            t.dnskey_publish,
            t.dnskey_retire,
        ));
        k.extend(breakpoints(
            key.krrsig.as_ref(),
            t.dnskey_publish,
            t.dnskey_retire,
        ));
        z.extend(breakpoints(
            key.zrrsig.as_ref(),
            t.zone_publish,
            t.zone_retire,
        ));
        if let Some(r) = key.ds.as_ref().filter(|r| r.state != RecordState::Hidden) {
            d.push(Breakpoint {
                at: r.since,
                window: t.ds_publish.max(t.ds_retire),
                confirmed: true,
            });
        }
        if let Some(at) = key.ds_seen {
            d.push(Breakpoint {
                at,
                window: t.ds_publish,
                confirmed: true,
            });
        }
        if let Some(at) = key.ds_gone {
            d.push(Breakpoint {
                at,
                window: t.ds_retire,
                confirmed: true,
            });
        }
    }
    (k, z, d)
}

/// The next time an old version leaves the caches in the model (a held-back transition may
/// become safe then).
fn next_expiry(state: &ZoneKeyState, now: u64, t: &Timing) -> Option<u64> {
    let keys: Vec<KeyEntry> = state.keys.iter().filter(|k| relevant(k)).cloned().collect();
    let (k, z, d) = all_breakpoints(&keys, t);
    k.into_iter()
        .chain(z)
        .chain(d)
        .filter(|b| b.confirmed)
        .map(|b| b.at.saturating_add(b.window))
        .filter(|e| *e > now)
        .min()
}

/// The possible-worlds evaluation: for every DS set, DNSKEY RRset (+ KRRSIGs) and zone RRset
/// (+ ZRRSIGs) that a resolver may have cached — each one a version served at some time in
/// the window caches can still hold, uncertain records taken both ways, the three chosen
/// independently — a chain of trust exists ([`chain_problem`], strict form). `Ok` when all
/// combinations validate; otherwise the first failure, explained.
fn evaluate(keys: &[KeyEntry], now: u64, timing: &Timing) -> Result<(), String> {
    if keys.len() > 64 {
        return Err("more than 64 keys in transition".into());
    }
    let (kb, zb, db) = all_breakpoints(keys, timing);
    let kt = taus(now, kb.into_iter());
    let zt = taus(now, zb.into_iter());
    let dt = taus(now, db.into_iter());
    let absent = Presence::Absent;
    let kw = worlds(keys, &kt, |k, tau| {
        [
            presence(&k.dnskey, tau),
            k.krrsig.as_ref().map_or(absent, |r| presence(r, tau)),
        ]
    })?;
    let zw = worlds(keys, &zt, |k, tau| {
        [k.zrrsig.as_ref().map_or(absent, |r| presence(r, tau))]
    })?;
    let dw = worlds(keys, &dt, |k, tau| {
        [k.ds.as_ref().map_or(absent, |r| ds_presence(k, r, tau))]
    })?;
    let algs: Vec<u8> = keys.iter().map(|k| k.key.algorithm).collect();
    for [d] in &dw {
        if *d == 0 {
            continue;
        }
        for [kd, kk] in &kw {
            for [z] in &zw {
                if let Some(why) = chain_problem(*d, *kd, *kk, *z, &algs, true) {
                    let names = |m: u64| {
                        let v: Vec<String> = keys
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| m & (1 << i) != 0)
                            .map(|(_, k)| k.key.tag.to_string())
                            .collect();
                        format!("{{{}}}", v.join(","))
                    };
                    return Err(format!(
                        "a resolver holding DS {}, DNSKEY {} signed by {} and zone data signed by {} would fail: {why}",
                        names(*d),
                        names(*kd),
                        names(*kk),
                        names(*z)
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Validation of one combination of cached data, over key bitmasks (`alg_of[i]` is key i's
/// algorithm): `d` the DS set, `kd` the DNSKEY RRset, `kk` the keys whose RRSIG over it is
/// cached, `z` the keys whose RRSIG over the zone RRset is cached. An empty DS set is an
/// insecure delegation (nothing to fail). Otherwise, for every algorithm of the DS set (RFC
/// 4035 §2.2 read strictly: a validator may insist on each): a DS of that algorithm matches a
/// DNSKEY in `kd` that signs the DNSKEY RRset (`kk`), and a DNSKEY of that algorithm in `kd`
/// signs the zone data (`z`). `strict` adds: every algorithm in the DNSKEY RRset signs both the
/// DNSKEY RRset and the zone data (validators that check RFC 4035 §2.2 against the DNSKEY
/// RRset).
fn chain_problem(d: u64, kd: u64, kk: u64, z: u64, alg_of: &[u8], strict: bool) -> Option<String> {
    if d == 0 {
        return None;
    }
    let mask = |a: u8| {
        alg_of
            .iter()
            .enumerate()
            .filter(|(_, x)| **x == a)
            .fold(0u64, |m, (i, _)| m | (1 << i))
    };
    let in_set = |s: u64| -> BTreeSet<u8> {
        alg_of
            .iter()
            .enumerate()
            .filter(|(i, _)| s & (1 << i) != 0)
            .map(|(_, a)| *a)
            .collect()
    };
    for a in in_set(d) {
        let m = mask(a);
        if d & kd & kk & m == 0 {
            return Some(format!(
                "no DS of algorithm {a} matches a DNSKEY that signs the DNSKEY RRset"
            ));
        }
        if kd & z & m == 0 {
            return Some(format!(
                "the zone data has no signature of algorithm {a} by a key in the DNSKEY RRset"
            ));
        }
    }
    if strict {
        for a in in_set(kd) {
            let m = mask(a);
            if kk & m == 0 || z & m == 0 {
                return Some(format!(
                    "algorithm {a} is in the DNSKEY RRset but does not sign both it and the zone data"
                ));
            }
        }
    }
    None
}

fn role_of(r: config::KeyRole) -> KeyRole {
    match r {
        config::KeyRole::Ksk => KeyRole::Ksk,
        config::KeyRole::Zsk => KeyRole::Zsk,
        config::KeyRole::Csk => KeyRole::Csk,
    }
}

fn alg_name(a: u8) -> String {
    config::algorithm_name(a)
        .map(str::to_string)
        .unwrap_or_else(|| format!("algorithm {a}"))
}

/// The key lifecycle from the policy: each `keys` entry is matched to a distinct key heading
/// for omnipresent with the same role, algorithm and keystore (oldest lineage first, so a
/// successor serves the entry its predecessor served). A matched key
/// whose lifetime (or `rollover`) ends within the publication interval gets a successor
/// requested; an unmatched entry gets a new key requested. Once every entry is matched, keys
/// the policy no longer describes (old algorithm, old roles, going insecure) retire; the
/// safety rules keep them published until their replacements have taken over.
fn lifecycle(
    state: &mut ZoneKeyState,
    policy: &Policy,
    now: u64,
    timing: &Timing,
    out: &mut StepOutcome,
    next: &mut Option<u64>,
) {
    let mut used = vec![false; state.keys.len()];
    let mut matched: Vec<Option<usize>> = Vec::with_capacity(policy.keys.len());
    for spec in &policy.keys {
        let role = role_of(spec.role);
        let found = state
            .keys
            .iter()
            .enumerate()
            .filter(|(i, k)| {
                !used[*i]
                    && k.goal == Goal::Omnipresent
                    && k.role == role
                    && k.key.algorithm == spec.algorithm
                    && k.keystore == spec.keystore
            })
            .min_by_key(|(_, k)| k.lineage())
            .map(|(i, _)| i);
        if let Some(i) = found {
            used[i] = true;
            state.keys[i].lifetime = spec.lifetime.secs();
        }
        matched.push(found);
    }
    let surplus: Vec<usize> = (0..state.keys.len())
        .filter(|i| !used[*i] && state.keys[*i].goal == Goal::Omnipresent)
        .collect();
    for (spec, m) in policy.keys.iter().zip(matched.iter()) {
        let role = role_of(spec.role);
        match m {
            Some(i) => {
                let k = &state.keys[*i];
                let Some(roll) = k.roll_at() else {
                    continue;
                };
                let start = roll.saturating_sub(timing.lead);
                if now < start {
                    min_into(next, start);
                    continue;
                }
                let reason = match k.roll_requested {
                    Some(r) if Some(r) == k.roll_at() => {
                        format!("rollover of key {} requested at {}", k.key, fmt_time(r))
                    }
                    _ => format!("the lifetime of key {} ends at {}", k.key, fmt_time(roll)),
                };
                out.new_keys_needed.push(KeyRequest {
                    role,
                    algorithm: spec.algorithm,
                    keystore: spec.keystore.clone(),
                    lifetime: spec.lifetime.secs(),
                    successor_of: Some(k.key),
                    takeover: roll,
                    lead: timing.lead,
                    replaces: None,
                    reason,
                });
            }
            None => {
                let replaces = surplus
                    .iter()
                    .map(|i| &state.keys[*i])
                    .find(|k| k.role == role)
                    .or_else(|| {
                        surplus.iter().map(|i| &state.keys[*i]).find(|k| {
                            (k.role.signs_keys() && role.signs_keys())
                                || (k.role.signs_zone() && role.signs_zone())
                        })
                    })
                    .map(|k| k.key);
                out.new_keys_needed.push(KeyRequest {
                    role,
                    algorithm: spec.algorithm,
                    keystore: spec.keystore.clone(),
                    lifetime: spec.lifetime.secs(),
                    successor_of: None,
                    takeover: now,
                    lead: timing.lead,
                    replaces,
                    reason: format!(
                        "policy {} wants a {role} key with algorithm {} in keystore {}",
                        policy.name,
                        alg_name(spec.algorithm),
                        spec.keystore
                    ),
                });
            }
        }
    }
    if matched.iter().all(Option::is_some) {
        for i in surplus {
            let k = &mut state.keys[i];
            k.goal = Goal::Hidden;
            k.retired = Some(now);
            let reason = if policy.keys.is_empty() {
                "the zone goes insecure".to_string()
            } else {
                format!(
                    "policy {} no longer has a {} key with algorithm {} in keystore {}",
                    policy.name,
                    k.role,
                    alg_name(k.key.algorithm),
                    k.keystore
                )
            };
            let c = Change::Retired {
                key: k.key,
                role: k.role,
                reason,
            };
            tracing::info!("{c}");
            out.changes.push(c);
        }
    }
}

/// Fills `waiting_for` and the timer part of `next_event`.
fn explain(
    state: &ZoneKeyState,
    now: u64,
    timing: &Timing,
    blocked: &[Change],
    out: &mut StepOutcome,
    next: &mut Option<u64>,
) {
    let mut unconfirmed = false;
    let mut held = false;
    for (i, k) in state.keys.iter().enumerate() {
        for kind in RecordKind::ALL {
            let Some(to) = wanted(k, kind) else {
                continue;
            };
            let who = k.describe();
            if !is_voluntary(to) {
                match due_time(k, kind, to, timing) {
                    Some(due) => {
                        min_into(next, due);
                        out.waiting_for.push(format!(
                            "{who}: {kind} {to} at {} ({})",
                            fmt_time(due),
                            Timing::formula(kind, to)
                        ));
                    }
                    None if kind == RecordKind::Ds && to == RecordState::Omnipresent => {
                        out.waiting_for.push(format!(
                            "{who}: the DS to appear at the parent (checkds, or `signet ds-seen --key {}`)",
                            k.key.tag
                        ));
                    }
                    None if kind == RecordKind::Ds => {
                        out.waiting_for.push(format!(
                            "{who}: the DS to be removed from the parent (checkds, or `signet ds-gone --key {}`)",
                            k.key.tag
                        ));
                    }
                    None => {
                        unconfirmed = true;
                        // publication confirms at `since` at the earliest; once that is
                        // past, only the publication itself (a call to `published`) helps
                        if let Some(t) = earliest(k, kind, to, timing).filter(|t| *t > now) {
                            min_into(next, t);
                        }
                    }
                }
                continue;
            }
            let is_blocked = blocked.iter().any(|c| {
                matches!(c, Change::Record { key, record, .. } if *key == k.key && *record == kind)
            });
            if is_blocked {
                out.waiting_for.push(format!(
                    "manual-mode: {who}: {kind} {} → {to} is due; run `signet step`",
                    k.state(kind)
                ));
                continue;
            }
            if approval(state, i, kind, to).is_err() {
                // Waits on a timer of the same key, listed already.
                continue;
            }
            if let Err(why) = safety(state, i, kind, to, now, timing) {
                held = true;
                out.waiting_for.push(format!(
                    "{who}: {kind} {} → {to} held back: {why}",
                    k.state(kind)
                ));
            }
        }
    }
    if held {
        if let Some(t) = next_expiry(state, now, timing) {
            min_into(next, t);
        }
    }
    if unconfirmed {
        out.waiting_for.insert(
            0,
            "the zone task to publish the signed version with the new key state".to_string(),
        );
    }
}

/// Keys hidden everywhere for longer than `purge-keys`.
fn purge(
    state: &ZoneKeyState,
    policy: &Policy,
    now: u64,
    out: &mut StepOutcome,
    next: &mut Option<u64>,
) {
    if policy.purge_keys == 0 {
        return;
    }
    for k in &state.keys {
        if k.goal != Goal::Hidden || !k.all_hidden() || k.ds_seen.is_some() {
            continue;
        }
        let Some(removed) = k.removed else {
            continue;
        };
        let at = removed.saturating_add(policy.purge_keys);
        if now >= at {
            out.purge.push(k.key);
        } else {
            min_into(next, at);
        }
    }
}

/// The next transition of one key, for `signet keys` / `status`: which record moves where,
/// when (if a date is known) and what it waits for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NextTransition {
    /// `None` for the key's rollover (its lifetime ends: a successor is requested). Shown as
    /// `DNSKEY`, `KRRSIG`, `ZRRSIG`, `DS`, as `signet keys` shows record kinds.
    #[serde(serialize_with = "kind_upper")]
    pub record: Option<RecordKind>,
    pub from: Option<RecordState>,
    pub to: Option<RecordState>,
    /// When it happens: a timer's date, the start of the rollover, or now for a transition
    /// that is due; `None` while it waits for an event (the parent, publication, `signet
    /// step`, an old version leaving the caches).
    pub at: Option<u64>,
    /// What it waits for, in words.
    pub waits_for: String,
}

fn kind_upper<S: serde::Serializer>(k: &Option<RecordKind>, s: S) -> Result<S::Ok, S::Error> {
    match k {
        Some(k) => s.serialize_some(k.as_str()),
        None => s.serialize_none(),
    }
}

/// Per key of `state`, its next transition under `policy` at `now` (none for a key at rest
/// with an unlimited lifetime): the earliest dated one, else the first undated one. Read-only:
/// the same rules as [`step`], without changing anything.
pub fn next_transitions(
    state: &ZoneKeyState,
    policy: &Policy,
    now: u64,
) -> Vec<(KeyRef, NextTransition)> {
    let timing = Timing::from_policy(policy);
    let mut out = Vec::new();
    for (i, k) in state.keys.iter().enumerate() {
        let mut cands: Vec<NextTransition> = Vec::new();
        for kind in RecordKind::ALL {
            let Some(to) = wanted(k, kind) else {
                continue;
            };
            let from = k.state(kind);
            let mk = |at: Option<u64>, waits_for: String| NextTransition {
                record: Some(kind),
                from: Some(from),
                to: Some(to),
                at,
                waits_for,
            };
            if !is_voluntary(to) {
                let c = match due_time(k, kind, to, &timing) {
                    Some(due) => mk(
                        Some(due.max(now)),
                        format!("the timer {}", Timing::formula(kind, to)),
                    ),
                    None if kind == RecordKind::Ds && to == RecordState::Omnipresent => mk(
                        None,
                        format!(
                            "the DS to appear at the parent (checkds, or `signet ds-seen --key {}`)",
                            k.key.tag
                        ),
                    ),
                    None if kind == RecordKind::Ds => mk(
                        None,
                        format!(
                            "the DS to be removed from the parent (checkds, or `signet ds-gone --key {}`)",
                            k.key.tag
                        ),
                    ),
                    None => mk(
                        None,
                        "the zone task to publish the signed version with the new key state"
                            .to_string(),
                    ),
                };
                cands.push(c);
                continue;
            }
            if let Err(why) = approval(state, i, kind, to) {
                cands.push(mk(None, why));
                continue;
            }
            match safety(state, i, kind, to, now, &timing) {
                Err(why) => cands.push(mk(None, format!("held back: {why}"))),
                Ok(()) if policy.manual_mode && !zone_untouched(state) => {
                    cands.push(mk(None, "`signet step` (manual-mode)".to_string()))
                }
                Ok(()) => cands.push(mk(Some(now), "nothing: due now".to_string())),
            }
        }
        if cands.is_empty() && k.goal == Goal::Omnipresent && k.successor.is_none() {
            if let Some(roll) = k.roll_at() {
                cands.push(NextTransition {
                    record: None,
                    from: None,
                    to: None,
                    at: Some(roll.saturating_sub(timing.lead).max(now)),
                    waits_for: format!(
                        "the end of its lifetime at {} (a successor is introduced a publication interval before)",
                        fmt_time(roll)
                    ),
                });
            }
        }
        let best = cands
            .iter()
            .filter(|c| c.at.is_some())
            .min_by_key(|c| c.at)
            .or_else(|| cands.first())
            .cloned();
        if let Some(b) = best {
            out.push((k.key, b));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(v: &[u8]) -> Vec<u8> {
        v.to_vec()
    }

    #[test]
    fn chain_rules() {
        // keys: 0 = ksk 13, 1 = zsk 13, 2 = ksk 15, 3 = zsk 15
        let algs = masks(&[13, 13, 15, 15]);
        // insecure
        assert!(chain_problem(0, 0, 0, 0, &algs, true).is_none());
        // plain 13 chain
        assert!(chain_problem(0b1, 0b11, 0b1, 0b10, &algs, true).is_none());
        // DS without matching DNSKEY
        assert!(chain_problem(0b1, 0b10, 0b1, 0b10, &algs, false).is_some());
        // DNSKEY not signed by the DS key
        assert!(chain_problem(0b1, 0b11, 0b0, 0b10, &algs, false).is_some());
        // zone signed by a key not in the DNSKEY set
        assert!(chain_problem(0b1, 0b01, 0b1, 0b10, &algs, false).is_some());
        // DS of both algorithms: each needs its chain
        assert!(chain_problem(0b101, 0b1111, 0b101, 0b1010, &algs, false).is_none());
        assert!(chain_problem(0b101, 0b1111, 0b101, 0b0010, &algs, false).is_some());
        // strict: alg 15 in the DNSKEY set without zone signatures of alg 15
        assert!(chain_problem(0b1, 0b1111, 0b101, 0b0010, &algs, false).is_none());
        assert!(chain_problem(0b1, 0b1111, 0b101, 0b0010, &algs, true).is_some());
    }
}
