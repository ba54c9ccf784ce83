//! # kasp — key and signing policy: the key state machine
//!
//! signet rolls keys by itself, under a policy in BIND's `dnssec-policy` vocabulary, and every
//! step of every rollover is decided by one rule: *after the change, every resolver can still
//! validate, whatever it has cached*. This module is the pure core of that: a persistable
//! per-zone key state ([`ZoneKeyState`]), the function that moves it ([`step`]), what to
//! publish ([`plan`]), a dry run ([`simulate`]) and the checker that proves schedules
//! glitch-free ([`glitch`]). It never touches key material, the clock or the network: the
//! zone task feeds it time and events and carries out its plan.
//!
//! ## The model (Mekking, "Flexible and Robust Key Rollover"; BIND's keymgr)
//!
//! Each key has a **goal** — omnipresent (in use) or hidden (retiring; final) — and, per
//! **record kind**, a **state** with the time it last changed:
//!
//! | kind | what | keys |
//! |---|---|---|
//! | DNSKEY | the key in the apex DNSKEY RRset | all |
//! | KRRSIG | its RRSIG over the DNSKEY RRset (and CDS/CDNSKEY) | KSK, CSK |
//! | ZRRSIG | its RRSIGs over the rest of the zone | ZSK, CSK |
//! | DS | the DS for it at the parent | KSK, CSK |
//!
//! The states say what caches may hold: **hidden** (no cache has it), **rumoured** (published;
//! some caches still hold a version without it), **omnipresent** (every cache that has the
//! RRset has it), **unretentive** (withdrawn; some caches still hold a version with it).
//!
//! ### DNSKEY
//! ```text
//!            goal omnipresent, safe                timer: confirmed publication
//!   hidden ─────────────────────────▶ rumoured ────────────────────────────────▶ omnipresent
//!     ▲      (manual mode: `step`)        │  dnskey-ttl + zone-prop + publish-safety    │
//!     │                                   │ goal hidden, safe                            │ goal hidden, safe
//!     │ timer: dnskey-ttl + zone-prop     ▼ (manual mode: `step`)                        │ (manual: `step`)
//!     └──────── + retire-safety ──── unretentive ◀────────────────────────────────────────┘
//! ```
//! ### KRRSIG
//! The same diagram and timers as DNSKEY (it travels in the same response). To rumoured only
//! once the key's DNSKEY is published — or before it, when the key's algorithm does not yet
//! sign the DNSKEY RRset (algorithm rollover, RFC 6781 §4.1.4: new signatures first).
//! ### ZRRSIG
//! ```text
//!   hidden ──(DNSKEY omnipresent [pre-publication], or a new algorithm; safe)──▶ rumoured
//!   rumoured ──(max-zone-ttl + zone-prop + publish-safety after publication)──▶ omnipresent
//!   rumoured | omnipresent ──(goal hidden; safe)──▶ unretentive
//!   unretentive ──(max-zone-ttl + zone-prop + retire-safety)──▶ hidden
//! ```
//! ### DS
//! ```text
//!   hidden ──(DNSKEY and KRRSIG omnipresent; safe) — CDS/CDNSKEY published ──▶ rumoured
//!   rumoured ──(ds-seen, then parent-ds-ttl + parent-prop + publish-safety)──▶ omnipresent
//!   rumoured | omnipresent ──(goal hidden; safe) — CDS withdrawn ──▶ unretentive
//!   unretentive ──(ds-gone, then parent-ds-ttl + parent-prop + retire-safety)──▶ hidden
//! ```
//! The timer moves (rumoured → omnipresent, unretentive → hidden) only record what caches
//! hold, so they happen whatever the goal — a key retired while being introduced first
//! becomes omnipresent if its timer runs out before it is withdrawn. The moves to rumoured and
//! unretentive change what is published and are the only ones checked for safety and held by
//! manual mode.
//!
//! The DS transitions out of the uncertain states need the parent to show the change:
//! [`ZoneKeyState::ds_seen`] / [`ZoneKeyState::ds_gone`] (checkds, or the operator). An
//! observation contrary to the request only clears the other one ("not yet"); a DS the parent
//! drops while it should stay goes back to rumoured; a DS of a retired key that reappears goes
//! back to unretentive (and is asked away again).
//!
//! ### Timing (RFC 7583)
//!
//! See [`Timing`]: Ipub = DNSKEY TTL + zone propagation delay + publish safety (§3.3.1);
//! Iret for signatures = max zone TTL + zone propagation delay + retire safety (§3.2.1, the
//! signing delay Dsgn is 0 because signet re-signs every RRset with the new key set in the
//! version it publishes); the DS waits run from the parent observation: parent DS TTL +
//! parent propagation delay + safety (§3.3.1, Dreg is the time until `ds-seen`). Timers start
//! when the zone task confirms that the version carrying the change is served
//! ([`ZoneKeyState::published`]), not when `step` decides it, so a slow signing never eats
//! into the safety margins.
//!
//! ### Safety: the possible worlds
//!
//! A transition that changes what is published (to rumoured or unretentive) is made only if,
//! afterwards, **every combination** of a cached DS set, a cached DNSKEY RRset (with its
//! RRSIGs) and cached zone data (with its RRSIGs) still validates. The three RRsets are cached
//! independently; for each, the versions a cache may still hold are represented by the
//! version served now and the one served just before each change whose replaced version is
//! still within its cache window (the wait of that kind of change: introductions use the
//! publish wait, withdrawals the retire wait, DS observations the DS waits; a change not yet
//! confirmed as served keeps the old version live). Presence in a version:
//!
//! * DNSKEY, KRRSIG, ZRRSIG — signet's own records, so exact: present from the record's
//!   publication (`published_since`) until its withdrawal (`since` of unretentive); a hidden
//!   record is taken as absent throughout (understating what caches hold, the safe side for
//!   records that only help validation);
//! * DS — the parent acts when it likes, so only observations count: present from `ds-seen`,
//!   absent from `ds-gone` (each cleared by a contrary request), absent if never asked for
//!   and never seen, and *maybe* otherwise — uncertain DS are taken both ways.
//!
//! A combination validates when its DS set is empty (an insecure delegation) or, for each
//! algorithm of the DS set, a DS of it matches a DNSKEY that signs the DNSKEY RRset and a
//! DNSKEY of it signs the zone data; and (RFC 4035 §2.2 applied to the DNSKEY RRset) each
//! algorithm in the DNSKEY RRset signs both. This one rule replaces Mekking's equations for
//! the existence of DS, DNSKEY and signatures and their successor relation: a swap of two
//! keys is safe because every version served has one or the other, and rollovers during
//! rollovers need nothing special. When a transition is held back, `step` wakes up again
//! when the next old version leaves the caches.
//!
//! Besides, unless the zone goes insecure, a transition must not break what held before: a
//! non-empty DNSKEY RRset, every algorithm in it signing the DNSKEY RRset and the zone (the
//! zone is never partially signed), and a non-empty set of DS asked of the parent.
//!
//! A consequence worth knowing: a stale DS at the parent (one signet asked to remove) does
//! not hold a rollover back when another DS of the same algorithm chains — the old DNSKEY can
//! go safely — but the key is kept (not purged) and `waiting_for` names the DS until
//! `ds-gone`. A stale DS of an algorithm nothing else chains for (after an algorithm rollover)
//! keeps the old keys published until it is gone.

//! ### Rollover methods
//!
//! The methods fall out of the approvals above plus safety, with no per-method code:
//! * **ZSK pre-publication** (RFC 6781 §4.1.1.1): new DNSKEY; once omnipresent, the new key
//!   signs and the old stops; once the old signatures expired, the old DNSKEY goes.
//! * **KSK double-KSK** (§4.1.2): new DNSKEY signed by both; once omnipresent, CDS switches
//!   to the new key; once the parent shows it (and the old DS is gone and expired), the old
//!   DNSKEY goes.
//! * **CSK**: both at once, each part as above.
//! * **Algorithm rollover** (§4.1.4, conservative): the new algorithm signs the DNSKEY RRset
//!   and the zone first; its DNSKEYs appear once those signatures are everywhere; DS switches;
//!   the old DNSKEYs go, then the old signatures. Never a flag day. KSK+ZSK ↔ CSK, with or
//!   without an algorithm change, is the same machinery.
//! * **Going insecure** (a policy without keys): every key retires, CDS/CDNSKEY DELETE
//!   (RFC 8078) is published, and once the parent's DS is gone from every cache everything
//!   is withdrawn at once; the zone is then served unsigned. Coming back is a new zone's
//!   introduction.
//!
//! ### Lifecycle
//!
//! [`step`] matches each policy `keys` entry to a key (role, algorithm, keystore; a successor
//! inherits its predecessor's entry when several share role and algorithm); a key
//! whose lifetime — counted from its takeover — ends within the publication interval, or that
//! `rollover` marked, gets a successor requested ([`StepOutcome::new_keys_needed`]); keys
//! the policy no longer describes retire once their replacements are registered. Keys hidden
//! everywhere for `purge-keys` are reported in [`StepOutcome::purge`]. Manual mode holds every
//! transition to rumoured or unretentive until `signet step` (the initial signing of a new
//! zone excepted); timers run regardless.
//!
//! ## The interface for the zone task
//!
//! 1. Load the state: [`ZoneKeyState::from_json`] of `state-dir/…/keys.json`, or
//!    [`ZoneKeyState::new`] (or [`ZoneKeyState::adopt_key`] for keys already in service).
//! 2. `let out = step(&mut state, &policy, now, false)` — with a clone of the policy whose
//!    `keys` is empty when the zone is to go insecure (BIND's `insecure` policy); for each
//!    [`KeyRequest`] in `out.new_keys_needed`, generate the key in its keystore (regenerate
//!    while [`ZoneKeyState::tag_in_use`]), save its material crash-safely, then
//!    [`ZoneKeyState::add_key`] and call `step` again at once. Persist the state (temp +
//!    fsync + rename) before publishing anything that depends on it.
//! 3. If `out.republish`: sign with [`plan`] — see [`KeyPlan`] for the exact recipe — serve
//!    the version, call [`ZoneKeyState::published`] and persist again.
//! 4. Delete the material of `out.purge` keys, then [`ZoneKeyState::forget`] them.
//! 5. Sleep until `out.next_event`, a checkds answer (`ds_seen`/`ds_gone` per key), an
//!    operator command ([`ZoneKeyState::rollover`], `step` with `operator_step`), or a
//!    policy change — then go to 2. `out.waiting_for` is what `signet status` shows;
//!    [`next_transitions`] gives, per key, its next transition with its date (when a timer
//!    or the lifetime decides it) and what it waits for (`signet keys`).
//!
//! A policy change is a new `policy` passed to `step` (the zone task restarts on reload with
//! the new configuration and its keys.json): a new algorithm, KSK+ZSK ↔ CSK or the built-in
//! `insecure` policy (no keys) are rollovers like the others. [`simulate`] with
//! [`key_timelines`] is `signet keys --plan`.
//!
//! ## What the tests prove, and what they do not
//!
//! `tests/kasp_*.rs` drive [`sim::Simulation`] for two simulated years per rollover type
//! (ZSK, KSK, CSK, algorithm 13→15, KSK+ZSK ↔ CSK, insecure and back) with TTLs of seconds
//! and of days, a parent that acts late or keeps a stale DS, slow publication, restarts after
//! every step, rollovers during rollovers and manual mode; the [`glitch`] checker finds no
//! combination of cached data that fails to validate, while it does find glitches when the
//! state machine is given timings shorter than the truth or its safety rule is disabled.
//! This proves the schedule against the checker's model (see [`glitch`] for its limits); it
//! does not replace a test against a real parent and a validating resolver.

pub mod glitch;
mod plan;
mod rules;
pub mod sim;
mod state;
mod time;

pub use plan::{plan, KeyPlan, CDNSKEY_DELETE_RDATA, CDS_DELETE_RDATA};
pub use rules::{
    next_transitions, step, step_held, step_with, Change, NextTransition, StepOptions, StepOutcome,
    Timing, ZoneSigningHold,
};
pub use state::{
    DsNote, Goal, KaspError, KeyEntry, KeyRef, KeyRequest, Record, RecordKind, RecordState,
    ZoneKeyState, STATE_FORMAT,
};
pub use time::fmt_time;

use crate::config::Policy;
pub use sim::{key_timelines, KeyTimeline, ScheduleEvent};

/// The dry run (`signet keys ZONE --plan`): the future schedule of `policy` for a zone in
/// `state` (use [`ZoneKeyState::new`] for a zone not signed yet) from `start` until `until`,
/// assuming the parent publishes each requested DS change at once and checkds sees it within
/// an hour, and the zone task publishes each change at once.
pub fn simulate(
    state: &ZoneKeyState,
    policy: &Policy,
    start: u64,
    until: u64,
) -> Vec<ScheduleEvent> {
    let mut s = sim::Simulation::from_state(
        state.clone(),
        policy.clone(),
        start,
        sim::SimOptions::default(),
    );
    s.run_until(until);
    if let Some(why) = &s.stopped {
        s.log.push(ScheduleEvent::zone(
            s.now,
            "note",
            format!("simulation {why}"),
        ));
    }
    s.log
}
