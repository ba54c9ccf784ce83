//! A simulated zone on a simulated clock: the key state machine driven exactly as the zone task
//! drives it (step, create requested keys, publish, confirm), a keystore that hands out fresh
//! tags, and a parent ("registrar") that follows the published CDS after a delay and is
//! reported by a checkds that polls it. Everything served is recorded in a
//! [`super::glitch::History`] for the checker.
//!
//! Used by [`super::simulate`] (the `--plan` dry run) and by the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::config::Policy;
use crate::keystore::KeyRole;

use super::glitch::{self, DnskeyVersion, History};
use super::plan::plan;
use super::rules::{step_with, Change, StepOptions, StepOutcome};
use super::state::{KaspError, KeyRef, RecordKind, RecordState, ZoneKeyState};
use super::time::fmt_time;

/// How the simulated parent behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentModel {
    /// Seconds from the moment a changed CDS set is served until the parent publishes the
    /// matching DS set (the registrar's delay).
    pub delay: u64,
    /// Interval of checkds polls of the parent while a DS change is awaited.
    pub poll: u64,
    /// The registrar adds DS records but never removes any (a stale DS), until
    /// [`Simulation::fix_parent`].
    pub never_removes: bool,
}

impl Default for ParentModel {
    fn default() -> Self {
        ParentModel {
            delay: 0,
            poll: 3600,
            never_removes: false,
        }
    }
}

/// Simulation options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    pub parent: ParentModel,
    /// Seconds from a step that changes the plan to the publication of the signed version
    /// (signing time); the state's timers start at publication.
    pub publish_delay: u64,
    /// Serialise the state to JSON and read it back after every step (a restart each time).
    pub restart_every_step: bool,
    /// In manual mode, the operator runs `signet step` this long after a transition is held;
    /// `None`: only [`Simulation::operator_step`] does.
    pub operator_delay: Option<u64>,
    /// Passed to every step (test hooks).
    pub step: StepOptions,
    /// The first key tag handed out.
    pub first_tag: u16,
    /// Stop after this many steps (a guard against a livelock).
    pub max_steps: usize,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            parent: ParentModel::default(),
            publish_delay: 0,
            restart_every_step: false,
            operator_delay: None,
            step: StepOptions::default(),
            first_tag: 10000,
            max_steps: 1_000_000,
        }
    }
}

/// One line of a schedule: when, what (for people), and, for an event of one key, the key,
/// its role and a stable event name (for `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleEvent {
    pub at: u64,
    pub what: String,
    /// The key the event is about, if any.
    pub key: Option<KeyRef>,
    pub role: Option<KeyRole>,
    /// `created`, `retired`, `purged`, or `RECORD-STATE` for a record's transition
    /// (`dnskey-rumoured` = DNSKEY published, `krrsig-rumoured` / `zrrsig-rumoured` = starts
    /// signing, `ds-rumoured` = DS submitted to the parent (CDS), `ds-unretentive` = DS
    /// withdrawal requested, `dnskey-hidden` = gone from every cache, …); `parent`, `checkds`,
    /// `operator`, `policy`, `note` for events of the zone.
    pub event: String,
}

impl ScheduleEvent {
    /// An event of the zone, not of one key.
    pub fn zone(at: u64, event: &str, what: String) -> ScheduleEvent {
        ScheduleEvent {
            at,
            what,
            key: None,
            role: None,
            event: event.to_string(),
        }
    }

    /// The event of a [`Change`] made by `step`.
    pub fn of_change(at: u64, c: &Change) -> ScheduleEvent {
        let (key, role, event) = match c {
            Change::Record {
                key,
                role,
                record,
                to,
                ..
            } => (
                *key,
                *role,
                format!(
                    "{}-{}",
                    record.as_str().to_ascii_lowercase(),
                    to.as_str().to_ascii_lowercase()
                ),
            ),
            Change::Retired { key, role, .. } => (*key, *role, "retired".to_string()),
        };
        ScheduleEvent {
            at,
            what: c.to_string(),
            key: Some(key),
            role: Some(role),
            event,
        }
    }
}

/// What a dry run says about one key: the dates of its milestones within the horizon (`None`:
/// not within it, or before the start for a key that exists already — see the key state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyTimeline {
    pub key: KeyRef,
    pub role: Option<KeyRole>,
    /// Registered (generated) in the dry run.
    pub created: Option<u64>,
    /// DNSKEY first published.
    pub published: Option<u64>,
    /// First signature (DNSKEY RRset or zone) published.
    pub active: Option<u64>,
    /// Goal set to hidden (replaced, or no longer in the policy).
    pub retired: Option<u64>,
    /// CDS published for it: the DS is asked of the parent.
    pub ds_submit: Option<u64>,
    /// The DS counts as in every resolver's cache.
    pub ds_omnipresent: Option<u64>,
    /// CDS withdrawn: the DS removal is asked of the parent.
    pub ds_withdraw: Option<u64>,
    /// Every record of the retired key gone from every cache.
    pub removed: Option<u64>,
    /// Deleted after `purge-keys`.
    pub purged: Option<u64>,
}

/// Per key, the milestones of a schedule, in order of first appearance.
pub fn key_timelines(events: &[ScheduleEvent]) -> Vec<KeyTimeline> {
    let mut out: Vec<KeyTimeline> = Vec::new();
    for e in events {
        let Some(key) = e.key else {
            continue;
        };
        let i = match out.iter().position(|t| t.key == key) {
            Some(i) => i,
            None => {
                out.push(KeyTimeline {
                    key,
                    ..KeyTimeline::default()
                });
                out.len() - 1
            }
        };
        let t = &mut out[i];
        if t.role.is_none() {
            t.role = e.role;
        }
        let first = |slot: &mut Option<u64>| {
            if slot.is_none() {
                *slot = Some(e.at);
            }
        };
        match e.event.as_str() {
            "created" => first(&mut t.created),
            "dnskey-rumoured" => first(&mut t.published),
            "krrsig-rumoured" | "zrrsig-rumoured" => first(&mut t.active),
            "retired" => first(&mut t.retired),
            "ds-rumoured" => first(&mut t.ds_submit),
            "ds-omnipresent" => first(&mut t.ds_omnipresent),
            "ds-unretentive" => first(&mut t.ds_withdraw),
            "purged" => first(&mut t.purged),
            _ => {}
        }
    }
    // removal: the last record of a retired key reaching hidden
    for t in &mut out {
        if t.retired.is_none() {
            continue;
        }
        t.removed = events
            .iter()
            .filter(|e| e.key == Some(t.key) && e.event.ends_with("-hidden"))
            .map(|e| e.at)
            .max();
    }
    out
}

impl fmt::Display for ScheduleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", fmt_time(self.at), self.what)
    }
}

/// A zone, its keys and its parent on a simulated clock.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub state: ZoneKeyState,
    pub policy: Policy,
    pub now: u64,
    pub opts: SimOptions,
    /// Everything that happened, in order.
    pub log: Vec<ScheduleEvent>,
    /// What the child and the parent served when.
    pub history: History,
    /// The parent's DS set now.
    pub parent_ds: BTreeSet<KeyRef>,
    /// The outcome of the last step.
    pub last: StepOutcome,
    /// Steps taken.
    pub steps: usize,
    /// Set when the simulation stopped itself (livelock guard, state error).
    pub stopped: Option<String>,
    pending_parent: Option<(u64, BTreeSet<KeyRef>)>,
    pending_publication: Option<u64>,
    next_poll: Option<u64>,
    operator_at: Option<u64>,
    cds_target: Option<BTreeSet<KeyRef>>,
    next_tag: u16,
    reported: Option<BTreeSet<KeyRef>>,
    notes: BTreeMap<KeyRef, String>,
}

impl Simulation {
    /// A zone without keys under `policy` at `start`.
    pub fn new(policy: Policy, start: u64, opts: SimOptions) -> Simulation {
        Simulation::from_state(ZoneKeyState::new(), policy, start, opts)
    }

    /// A zone with existing keys (`signet keys --plan` on a live zone). The parent is assumed
    /// to hold the DS of the keys whose DS is omnipresent or being removed.
    pub fn from_state(
        state: ZoneKeyState,
        policy: Policy,
        start: u64,
        opts: SimOptions,
    ) -> Simulation {
        let parent_ds: BTreeSet<KeyRef> = state
            .keys
            .iter()
            .filter(|k| {
                matches!(
                    k.state(RecordKind::Ds),
                    RecordState::Omnipresent | RecordState::Unretentive
                ) || k.ds_seen.is_some()
            })
            .map(|k| k.key)
            .collect();
        let mut history = History::new();
        let p = plan(&state);
        history.publish_zone(
            start,
            DnskeyVersion {
                keys: p.publish_dnskey.iter().copied().collect(),
                signers: p.sign_dnskey.iter().copied().collect(),
            },
            p.sign_zone.iter().copied().collect(),
        );
        history.publish_ds(start, parent_ds.clone());
        Simulation {
            state,
            policy,
            now: start,
            log: Vec::new(),
            history,
            parent_ds: parent_ds.clone(),
            last: StepOutcome::default(),
            steps: 0,
            stopped: None,
            pending_parent: None,
            pending_publication: None,
            next_poll: None,
            operator_at: None,
            cds_target: None,
            next_tag: opts.first_tag,
            reported: Some(parent_ds),
            notes: BTreeMap::new(),
            opts,
        }
    }

    fn note(&mut self, event: &str, what: String) {
        self.log.push(ScheduleEvent::zone(self.now, event, what));
    }

    fn note_key(&mut self, key: KeyRef, role: KeyRole, event: &str, what: String) {
        self.log.push(ScheduleEvent {
            at: self.now,
            what,
            key: Some(key),
            role: Some(role),
            event: event.to_string(),
        });
    }

    /// Runs every event up to and including `until`; the clock ends at `until`.
    pub fn run_until(&mut self, until: u64) {
        loop {
            if self.stopped.is_some() {
                return;
            }
            self.tick(false);
            let candidates = [
                self.last.next_event,
                self.pending_publication,
                self.pending_parent.as_ref().map(|p| p.0),
                self.next_poll,
                self.operator_at,
            ];
            let next = candidates.into_iter().flatten().min();
            match next {
                Some(t) if t <= until => self.now = t.max(self.now + 1),
                _ => {
                    self.now = self.now.max(until);
                    return;
                }
            }
        }
    }

    /// Everything due at `now`, then a step.
    fn tick(&mut self, operator: bool) {
        let now = self.now;
        if self.pending_publication.is_some_and(|t| t <= now) {
            self.pending_publication = None;
            self.publish();
        }
        if let Some((t, ds)) = self.pending_parent.clone() {
            if t <= now {
                self.pending_parent = None;
                self.parent_ds = ds.clone();
                self.history.publish_ds(now, ds.clone());
                self.note("parent", format!("parent: DS set now {}", keys(&ds)));
            }
        }
        if self.next_poll.is_some_and(|t| t <= now) {
            self.next_poll = None;
            self.checkds();
        }
        let mut operator = operator;
        if self.operator_at.is_some_and(|t| t <= now) {
            self.operator_at = None;
            operator = true;
        }
        if self.pending_publication.is_none() {
            self.step(operator);
        }
        if self.needs_poll() && self.next_poll.is_none() {
            self.next_poll = Some(now + self.opts.parent.poll.max(1));
        }
    }

    fn step(&mut self, operator: bool) {
        let mut opts = self.opts.step;
        opts.operator_step = operator;
        if operator {
            self.note("operator", "operator: signet step".into());
        }
        let mut out;
        let mut rounds = 0;
        loop {
            self.steps += 1;
            rounds += 1;
            if self.steps > self.opts.max_steps || rounds > 64 {
                self.stopped = Some(format!(
                    "stopped at {} after {} steps",
                    fmt_time(self.now),
                    self.steps
                ));
                return;
            }
            out = step_with(&mut self.state, &self.policy, self.now, &opts);
            for c in &out.changes {
                self.log.push(ScheduleEvent::of_change(self.now, c));
            }
            if out.new_keys_needed.is_empty() {
                break;
            }
            for req in out.new_keys_needed.clone() {
                loop {
                    let tag = self.next_tag;
                    self.next_tag = self.next_tag.wrapping_add(1);
                    let key = KeyRef {
                        algorithm: req.algorithm,
                        tag,
                    };
                    match self.state.add_key(&req, key, self.now) {
                        Ok(()) => {
                            self.note_key(
                                key,
                                req.role,
                                "created",
                                format!(
                                    "new {} key {key} ({}){}",
                                    req.role,
                                    req.reason,
                                    req.successor_of
                                        .map(|p| format!(", successor of {}", p.tag))
                                        .unwrap_or_default()
                                ),
                            );
                            if let Some(p) = req.successor_of {
                                self.note_key(
                                    p,
                                    req.role,
                                    "retired",
                                    format!("key {p} {}: retired (successor {key})", req.role),
                                );
                            }
                            break;
                        }
                        Err(KaspError::TagInUse(_)) => continue,
                        Err(e) => {
                            self.note("note", format!("cannot add key: {e}"));
                            break;
                        }
                    }
                }
            }
            // Only the first round is the operator's step.
            opts.operator_step = false;
        }
        for k in out.purge.clone() {
            let role = self.state.key(k).map(|e| e.role);
            if self.state.forget(k).is_ok() {
                match role {
                    Some(role) => self.note_key(k, role, "purged", format!("key {k} purged")),
                    None => self.note("note", format!("key {k} purged")),
                }
            }
        }
        if out.republish {
            if self.opts.publish_delay == 0 {
                self.publish();
            } else {
                self.pending_publication = Some(self.now + self.opts.publish_delay);
            }
        }
        if !out.blocked_manual.is_empty() && self.operator_at.is_none() {
            if let Some(d) = self.opts.operator_delay {
                self.operator_at = Some(self.now + d.max(1));
            }
        }
        if self.opts.restart_every_step {
            match ZoneKeyState::from_json(&self.state.to_json()) {
                Ok(s) => self.state = s,
                Err(e) => self.stopped = Some(format!("state does not round-trip: {e}")),
            }
        }
        self.last = out;
    }

    /// The zone task serves the version of the current plan; the registrar sees its CDS.
    fn publish(&mut self) {
        let p = plan(&self.state);
        self.history.publish_zone(
            self.now,
            DnskeyVersion {
                keys: p.publish_dnskey.iter().copied().collect(),
                signers: p.sign_dnskey.iter().copied().collect(),
            },
            p.sign_zone.iter().copied().collect(),
        );
        self.state.published(self.now);
        let target = if p.cds_delete {
            Some(BTreeSet::new())
        } else if p.cds.is_empty() || p.unsigned {
            None
        } else {
            Some(p.cds.iter().copied().collect::<BTreeSet<KeyRef>>())
        };
        if let Some(mut t) = target {
            if self.opts.parent.never_removes {
                t.extend(self.parent_ds.iter().copied());
            }
            if self.cds_target.as_ref() != Some(&t) {
                self.cds_target = Some(t.clone());
                if t != self.parent_ds || self.pending_parent.is_some() {
                    let at = self.now + self.opts.parent.delay;
                    if self.opts.parent.delay == 0 {
                        self.parent_ds = t.clone();
                        self.history.publish_ds(self.now, t.clone());
                        self.note("parent", format!("parent: DS set now {}", keys(&t)));
                        self.pending_parent = None;
                    } else {
                        self.pending_parent = Some((at, t));
                    }
                }
            }
        }
    }

    fn needs_poll(&self) -> bool {
        self.state
            .keys
            .iter()
            .any(|k| match k.state(RecordKind::Ds) {
                RecordState::Rumoured => k.ds_seen.is_none(),
                RecordState::Unretentive => k.ds_gone.is_none(),
                _ => false,
            })
    }

    /// checkds: reports the parent's DS set, key by key.
    fn checkds(&mut self) {
        if self.reported.as_ref() != Some(&self.parent_ds) {
            self.reported = Some(self.parent_ds.clone());
            self.note(
                "checkds",
                format!("checkds: the parent has {}", keys(&self.parent_ds)),
            );
        }
        let ds_keys: Vec<KeyRef> = self
            .state
            .keys
            .iter()
            .filter(|k| k.ds.is_some())
            .map(|k| k.key)
            .collect();
        for k in ds_keys {
            let r = if self.parent_ds.contains(&k) {
                self.state.ds_seen(k.tag, Some(k.algorithm), self.now)
            } else {
                self.state.ds_gone(k.tag, Some(k.algorithm), self.now)
            };
            if let Ok(n) = r {
                let repeated = self.notes.get(&k) == Some(&n.message);
                if n.unexpected && !repeated {
                    self.note("checkds", format!("checkds: {}", n.message));
                }
                self.notes.insert(k, n.message);
            }
        }
    }

    /// `signet rollover --role`, now.
    pub fn rollover(&mut self, role: KeyRole) -> Result<Vec<KeyRef>, KaspError> {
        let r = self.state.rollover(role, self.now)?;
        self.note("operator", format!("operator: rollover of the {role} keys"));
        self.tick(false);
        Ok(r)
    }

    /// `signet step`, now.
    pub fn operator_step(&mut self) {
        self.tick(true);
    }

    /// A new policy (reload), applied now.
    pub fn set_policy(&mut self, policy: Policy) {
        self.note(
            "policy",
            format!(
                "policy changed: {} key(s): {}",
                policy.keys.len(),
                policy
                    .keys
                    .iter()
                    .map(|k| format!("{} alg {}", k.role, k.algorithm))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        self.policy = policy;
        self.tick(false);
    }

    /// The registrar cleans up: the parent publishes exactly the wanted DS set now.
    pub fn fix_parent(&mut self) {
        let want: BTreeSet<KeyRef> = plan(&self.state).want_ds.into_iter().collect();
        self.opts.parent.never_removes = false;
        self.pending_parent = None;
        self.cds_target = Some(want.clone());
        self.parent_ds = want.clone();
        self.history.publish_ds(self.now, want.clone());
        self.note(
            "parent",
            format!("parent: DS set now {} (fixed)", keys(&want)),
        );
        self.tick(false);
    }

    /// The glitch checker over everything served so far.
    pub fn check(&self, timings: &glitch::Timings, options: &glitch::Options) -> glitch::Report {
        glitch::check(&self.history, timings, options)
    }

    /// The log as text, one event per line.
    pub fn timeline(&self) -> String {
        let mut s = String::new();
        for e in &self.log {
            s.push_str(&e.to_string());
            s.push('\n');
        }
        s
    }
}

fn keys(s: &BTreeSet<KeyRef>) -> String {
    if s.is_empty() {
        return "{} (none)".into();
    }
    let v: Vec<String> = s.iter().map(|k| k.tag.to_string()).collect();
    format!("{{{}}}", v.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{KeyRole as CfgRole, KeySpec, Lifetime};
    use crate::kasp::{next_transitions, Timing};

    const DAY: u64 = 86_400;
    const START: u64 = 1_800_000_000;

    fn policy() -> Policy {
        let spec = |role, lifetime| KeySpec {
            role,
            algorithm: 13,
            lifetime,
            keystore: "files".into(),
        };
        Policy {
            keys: vec![
                spec(CfgRole::Ksk, Lifetime::Unlimited),
                spec(CfgRole::Zsk, Lifetime::Secs(30 * DAY)),
            ],
            ..Policy::default()
        }
    }

    #[test]
    fn timelines_of_a_zsk_rollover() {
        let p = policy();
        let t = Timing::from_policy(&p);
        let mut s = Simulation::new(p, START, SimOptions::default());
        s.run_until(START + 40 * DAY);
        let tl = key_timelines(&s.log);
        let zsks: Vec<&KeyTimeline> = tl.iter().filter(|k| k.role == Some(KeyRole::Zsk)).collect();
        assert_eq!(zsks.len(), 2, "{tl:#?}");
        let (old, new) = (zsks[0], zsks[1]);
        assert_eq!(old.created, Some(START));
        assert_eq!(old.retired, Some(START + 30 * DAY - t.lead));
        assert_eq!(new.created, old.retired);
        assert_eq!(new.active, Some(START + 30 * DAY));
        // the old DNSKEY leaves once its signatures left and the new ones reached the caches
        assert_eq!(
            old.removed,
            Some(START + 30 * DAY + t.zone_retire.max(t.zone_publish) + t.dnskey_retire)
        );
        assert_eq!(new.retired, None);
        assert_eq!(new.removed, None);
        // record transitions are named RECORD-STATE, with their key and role
        let e = s
            .log
            .iter()
            .find(|e| e.key == Some(new.key) && e.event == "zrrsig-rumoured")
            .expect("the new ZSK starts signing");
        assert_eq!(e.at, START + 30 * DAY);
        assert_eq!(e.role, Some(KeyRole::Zsk));
        assert!(s.log.iter().any(|e| e.event == "parent" && e.key.is_none()));
    }

    #[test]
    fn next_transitions_name_dates_and_waits() {
        let p = policy();
        let t = Timing::from_policy(&p);
        let mut s = Simulation::new(p.clone(), START, SimOptions::default());
        // a fresh zone: every record rumoured, DNSKEY timers running
        s.run_until(START);
        let next = next_transitions(&s.state, &p, START);
        assert_eq!(next.len(), 2, "{next:#?}");
        for (_, n) in &next {
            assert_eq!(n.to, Some(RecordState::Omnipresent));
            assert_eq!(n.at, Some(START + t.dnskey_publish), "{n:?}");
            assert!(n.waits_for.contains("publish-safety"), "{n:?}");
        }
        // at rest: the ZSK's next event is its rollover, the KSK (unlimited) has none
        s.run_until(START + 5 * DAY);
        let next = next_transitions(&s.state, &p, s.now);
        assert_eq!(next.len(), 1, "{next:#?}");
        let (k, n) = &next[0];
        assert_eq!(s.state.key(*k).map(|e| e.role), Some(KeyRole::Zsk));
        assert_eq!(n.record, None);
        assert_eq!(n.at, Some(START + 30 * DAY - t.lead));
        // the DS requested but never seen: no date, the parent is named
        let mut s2 = Simulation::from_state(
            ZoneKeyState::new(),
            p.clone(),
            START,
            SimOptions {
                parent: super::ParentModel {
                    delay: 365 * DAY,
                    ..Default::default()
                },
                ..SimOptions::default()
            },
        );
        s2.run_until(START + 2 * DAY);
        let next = next_transitions(&s2.state, &p, s2.now);
        let (_, n) = next
            .iter()
            .find(|(k, _)| s2.state.key(*k).map(|e| e.role) == Some(KeyRole::Ksk))
            .expect("the KSK waits");
        assert_eq!(n.record, Some(RecordKind::Ds));
        assert_eq!(n.at, None);
        assert!(n.waits_for.contains("ds-seen --key"), "{n:?}");
    }
}
