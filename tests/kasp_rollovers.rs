//! The key state machine's behaviour, step by step: exact RFC 7583 timelines of a ZSK
//! pre-publication and a double-KSK rollover, a parent that is late, stale or drops a DS,
//! manual mode, `rollover` (also during a rollover), going insecure, adopting keys, the
//! publication handshake, purging, the dry run, and bad input (unknown keys, colliding tags,
//! corrupt state files).

use signet::config::{KeyRole as CfgRole, KeySpec, Lifetime, Policy};
use signet::kasp::glitch::{Options, Timings};
use signet::kasp::sim::{ParentModel, SimOptions, Simulation};
use signet::kasp::{
    plan, simulate, step, Change, Goal, KaspError, KeyRef, RecordKind, RecordState, Timing,
    ZoneKeyState,
};
use signet::keystore::KeyRole;

const START: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn spec(role: CfgRole, algorithm: u8, lifetime: Option<u64>) -> KeySpec {
    KeySpec {
        role,
        algorithm,
        lifetime: lifetime.map_or(Lifetime::Unlimited, Lifetime::Secs),
        keystore: "files".into(),
    }
}

/// TTLs of seconds, distinct so that every wait is recognisable.
fn policy(keys: Vec<KeySpec>) -> Policy {
    Policy {
        keys,
        dnskey_ttl: 50,
        max_zone_ttl: 300,
        publish_safety: 20,
        retire_safety: 30,
        zone_propagation_delay: 10,
        parent_ds_ttl: 600,
        parent_propagation_delay: 60,
        purge_keys: 10 * DAY,
        ..Policy::default()
    }
}

fn opts(delay: u64) -> SimOptions {
    SimOptions {
        parent: ParentModel {
            delay,
            poll: 30,
            never_removes: false,
        },
        ..SimOptions::default()
    }
}

fn strict() -> Options {
    Options {
        strict_dnskey_algorithms: true,
        max_glitches: 5,
    }
}

fn assert_clean(s: &Simulation) {
    assert!(s.stopped.is_none(), "{:?}", s.stopped);
    let r = s.check(&Timings::from_policy(&s.policy), &strict());
    assert!(r.clean(), "{r}\n{}", s.timeline());
}

/// Keys of `role` heading for omnipresent.
fn active(st: &ZoneKeyState, role: KeyRole) -> Vec<KeyRef> {
    st.keys
        .iter()
        .filter(|k| k.role == role && k.goal == Goal::Omnipresent)
        .map(|k| k.key)
        .collect()
}

/// The time of the first log line mentioning all of `needles`.
fn when(s: &Simulation, needles: &[&str]) -> u64 {
    s.log
        .iter()
        .find(|e| needles.iter().all(|n| e.what.contains(n)))
        .map(|e| e.at)
        .unwrap_or_else(|| panic!("no event {needles:?} in\n{}", s.timeline()))
}

fn tag(k: KeyRef) -> String {
    format!("key {} ", k.tag)
}

/// A zone signed with KSK+ZSK (or the given keys) whose DS the parent holds, at rest.
fn settled(keys: Vec<KeySpec>) -> Simulation {
    let mut s = Simulation::new(policy(keys), START, opts(0));
    s.run_until(START + DAY);
    assert!(s.last.waiting_for.is_empty(), "{:?}", s.last.waiting_for);
    s
}

#[test]
fn initial_signing_then_ds() {
    let s = settled(vec![spec(CfgRole::Csk, 13, None)]);
    let t = Timing::from_policy(&s.policy);
    let csk = active(&s.state, KeyRole::Csk)[0];
    // DNSKEY and both signatures at once: the zone is signed immediately
    assert_eq!(when(&s, &[&tag(csk), "DNSKEY published"]), START);
    assert_eq!(when(&s, &[&tag(csk), "signs the zone"]), START);
    assert_eq!(when(&s, &[&tag(csk), "signs the DNSKEY RRset"]), START);
    // the DS is asked for once the zone signatures are in every cache
    assert_eq!(
        when(&s, &[&tag(csk), "DS requested"]),
        START + t.zone_publish
    );
    let seen = when(&s, &["checkds: the parent has"]);
    assert_eq!(
        when(&s, &[&tag(csk), "DS trusted by every resolver"]),
        seen + t.ds_publish
    );
    let p = plan(&s.state);
    assert_eq!(p.want_ds, vec![csk]);
    assert_eq!(p.cds, vec![csk]);
    assert!(!p.cds_delete && !p.unsigned);
    assert_clean(&s);
}

#[test]
fn zsk_prepublication_timeline() {
    let life = 2 * DAY;
    let mut s = Simulation::new(
        policy(vec![
            spec(CfgRole::Ksk, 13, None),
            spec(CfgRole::Zsk, 13, Some(life)),
        ]),
        START,
        opts(0),
    );
    s.run_until(START + 3 * DAY);
    let t = Timing::from_policy(&s.policy);
    let old = KeyRef {
        algorithm: 13,
        tag: 10001,
    };
    let new = KeyRef {
        algorithm: 13,
        tag: 10002,
    };
    // the successor is created and published one publication interval before the end of life
    let t0 = START + life - t.lead;
    assert_eq!(when(&s, &["new zsk key 10002", "successor of 10001"]), t0);
    assert_eq!(when(&s, &[&tag(new), "DNSKEY published"]), t0);
    // it signs exactly when its DNSKEY is in every cache, and the old key stops then
    let t1 = t0 + t.dnskey_publish;
    assert_eq!(t1, START + life);
    assert_eq!(when(&s, &[&tag(new), "DNSKEY in every cache"]), t1);
    assert_eq!(when(&s, &[&tag(new), "signs the zone"]), t1);
    assert_eq!(when(&s, &[&tag(old), "stops signing the zone"]), t1);
    // the old DNSKEY goes once the old signatures expired from every cache
    let t2 = t1 + t.zone_retire;
    assert_eq!(when(&s, &[&tag(old), "zone RRSIGs gone"]), t2);
    assert_eq!(when(&s, &[&tag(old), "DNSKEY withdrawn"]), t2);
    assert_eq!(
        when(&s, &[&tag(old), "DNSKEY gone from every cache"]),
        t2 + t.dnskey_retire
    );
    // no DS change in a ZSK rollover
    assert_eq!(
        s.log
            .iter()
            .filter(|e| e.what.contains("DS removal"))
            .count(),
        0
    );
    assert_clean(&s);
}

#[test]
fn ksk_double_ksk_waits_for_a_late_parent() {
    let delay = 7 * DAY;
    let life = 10 * DAY;
    let mut s = Simulation::new(
        policy(vec![
            spec(CfgRole::Ksk, 13, Some(life)),
            spec(CfgRole::Zsk, 13, None),
        ]),
        START,
        opts(delay),
    );
    // the first DS takes a week too
    s.run_until(START + life + DAY);
    let t = Timing::from_policy(&s.policy);
    let (old, new) = (
        KeyRef {
            algorithm: 13,
            tag: 10000,
        },
        KeyRef {
            algorithm: 13,
            tag: 10002,
        },
    );
    let t0 = when(&s, &["new ksk key 10002"]);
    assert_eq!(t0, START + life - t.lead);
    // the new DNSKEY is signed by both KSKs, then CDS switches to the new key
    assert_eq!(when(&s, &[&tag(new), "signs the DNSKEY RRset"]), t0);
    let swap = t0 + t.dnskey_publish;
    assert_eq!(when(&s, &[&tag(new), "DS requested"]), swap);
    assert_eq!(when(&s, &[&tag(old), "DS removal requested"]), swap);
    let p = plan(&s.state);
    assert_eq!(p.want_ds, vec![new]);
    assert!(p.publish_dnskey.contains(&old) && p.sign_dnskey.contains(&old));
    // a day later the parent has not acted: the old KSK stays, and status says why
    let w = s.last.waiting_for.join("\n");
    assert!(
        w.contains("the DS to appear at the parent (checkds, or `signet ds-seen --key 10002`)"),
        "{w}"
    );
    assert!(w.contains("the DS to be removed from the parent"), "{w}");
    // the registrar acts a week after the CDS change; the old KSK goes one DS TTL later
    s.run_until(START + 30 * DAY);
    let acted = swap + delay;
    let gone = when(&s, &[&tag(old), "DS gone from every resolver"]);
    assert!(gone >= acted + t.ds_retire, "{gone} {acted}");
    assert!(gone <= acted + t.ds_retire + 30, "polled every 30 s");
    assert_eq!(when(&s, &[&tag(old), "DNSKEY withdrawn"]), gone);
    assert_eq!(
        when(&s, &[&tag(old), "stops signing the DNSKEY RRset"]),
        gone
    );
    assert_clean(&s);
}

#[test]
fn a_stale_ds_is_reported_and_keeps_the_key() {
    let mut o = opts(60);
    o.parent.never_removes = true;
    let mut s = Simulation::new(
        policy(vec![
            spec(CfgRole::Ksk, 13, None),
            spec(CfgRole::Zsk, 13, None),
        ]),
        START,
        o,
    );
    s.run_until(START + DAY);
    let old = active(&s.state, KeyRole::Ksk)[0];
    s.rollover(KeyRole::Ksk).expect("rollover");
    s.run_until(START + 20 * DAY);
    // The parent added the new DS but kept the old one. The new DS chains (same algorithm),
    // so the old DNSKEY could go; the key itself stays, its DS still to be removed, and status
    // says so.
    let k = s.state.key(old).expect("kept");
    assert_eq!(k.dnskey.state, RecordState::Hidden);
    assert_eq!(k.state(RecordKind::Ds), RecordState::Unretentive);
    assert!(k.removed.is_none());
    assert!(!plan(&s.state).want_ds.contains(&old));
    let w = s.last.waiting_for.join("\n");
    assert!(
        w.contains(&format!(
            "key {old} ksk: the DS to be removed from the parent"
        )),
        "{w}"
    );
    assert_clean(&s);
    // never purged while the parent shows it
    s.run_until(START + 60 * DAY);
    assert!(s.state.key(old).is_some());
    // the registrar cleans up: the key is done
    s.fix_parent();
    s.run_until(START + 62 * DAY);
    let k = s.state.key(old).expect("kept until purge");
    assert!(k.all_hidden() && k.removed.is_some());
    assert!(s.last.waiting_for.is_empty(), "{:?}", s.last.waiting_for);
    assert_clean(&s);
}

#[test]
fn a_stale_ds_of_the_old_algorithm_holds_the_old_keys() {
    // After an algorithm rollover a DS of the old algorithm needs a chain of its own (a
    // validator may insist on every DS algorithm): the old key stays until the DS goes.
    let mut o = opts(60);
    o.parent.never_removes = true;
    let mut s = Simulation::new(policy(vec![spec(CfgRole::Csk, 13, None)]), START, o);
    s.run_until(START + DAY);
    let old = active(&s.state, KeyRole::Csk)[0];
    s.set_policy(policy(vec![spec(CfgRole::Csk, 15, None)]));
    s.run_until(START + 30 * DAY);
    let new = active(&s.state, KeyRole::Csk)[0];
    assert_eq!(new.algorithm, 15);
    assert_eq!(s.parent_ds.len(), 2);
    let p = plan(&s.state);
    assert_eq!(p.want_ds, vec![new]);
    assert!(p.publish_dnskey.contains(&old));
    assert!(p.sign_dnskey.contains(&old) && p.sign_zone.contains(&old));
    assert!(s
        .last
        .waiting_for
        .iter()
        .any(|w| w.contains(&format!("key {old} csk: the DS to be removed"))));
    assert_clean(&s);
    s.fix_parent();
    s.run_until(START + 32 * DAY);
    assert_eq!(s.state.key(old).map(|k| k.all_hidden()), Some(true));
    assert_eq!(plan(&s.state).publish_dnskey, vec![new]);
    assert_clean(&s);
}

#[test]
fn the_parent_dropping_a_wanted_ds() {
    let mut s = settled(vec![spec(CfgRole::Csk, 13, None)]);
    let csk = active(&s.state, KeyRole::Csk)[0];
    let now = s.now;
    let note = s
        .state
        .ds_gone(csk.tag, None, now)
        .expect("ds-gone for a known key");
    assert!(note.unexpected, "{}", note.message);
    assert_eq!(
        s.state.key(csk).map(|k| k.state(RecordKind::Ds)),
        Some(RecordState::Rumoured)
    );
    // still wanted, waiting to be seen again
    let pol = s.policy.clone();
    let out = step(&mut s.state, &pol, now, false);
    assert_eq!(plan(&s.state).want_ds, vec![csk]);
    assert!(out.waiting_for.iter().any(|w| w.contains("ds-seen")));
    let note = s
        .state
        .ds_seen(csk.tag, Some(13), now + 100)
        .expect("ds-seen");
    assert!(!note.unexpected);
    let t = Timing::from_policy(&pol);
    let out = step(&mut s.state, &pol, now + 100, false);
    assert_eq!(out.next_event, Some(now + 100 + t.ds_publish));
    step(&mut s.state, &pol, now + 100 + t.ds_publish, false);
    assert_eq!(
        s.state.key(csk).map(|k| k.state(RecordKind::Ds)),
        Some(RecordState::Omnipresent)
    );
}

#[test]
fn ds_seen_before_it_was_asked_for() {
    // The operator put the DS at the parent early: the DS state still waits for its turn, and
    // its timer counts from the request.
    let pol = policy(vec![spec(CfgRole::Csk, 13, None)]);
    let mut st = ZoneKeyState::new();
    let out = step(&mut st, &pol, START, false);
    let req = &out.new_keys_needed[0];
    let k = KeyRef {
        algorithm: 13,
        tag: 4242,
    };
    st.add_key(req, k, START).expect("add");
    step(&mut st, &pol, START, false);
    st.published(START);
    let note = st.ds_seen(4242, None, START + 1).expect("seen");
    assert!(note.unexpected);
    let t = Timing::from_policy(&pol);
    let asked = START + t.zone_publish;
    let out = step(&mut st, &pol, asked, false);
    assert!(out.changes.iter().any(|c| matches!(
        c,
        Change::Record {
            record: RecordKind::Ds,
            to: RecordState::Rumoured,
            ..
        }
    )));
    assert_eq!(out.next_event, Some(asked + t.ds_publish));
}

#[test]
fn a_retired_keys_ds_reappearing() {
    let mut s = settled(vec![spec(CfgRole::Csk, 13, None)]);
    let old = active(&s.state, KeyRole::Csk)[0];
    s.rollover(KeyRole::Csk).expect("rollover");
    s.run_until(s.now + DAY);
    assert_eq!(s.state.key(old).map(|k| k.all_hidden()), Some(true));
    let now = s.now;
    let note = s.state.ds_seen(old.tag, None, now).expect("seen");
    assert!(note.unexpected, "{}", note.message);
    let pol = s.policy.clone();
    let out = step(&mut s.state, &pol, now, false);
    assert!(!out.republish && !s.state.publication_pending());
    assert!(!plan(&s.state).want_ds.contains(&old));
    assert!(
        out.waiting_for
            .iter()
            .any(|w| w.contains(&format!("key {old} csk: the DS to be removed"))),
        "{:?}",
        out.waiting_for
    );
    // it is not purged while the parent shows its DS
    let k = s.state.key(old).expect("kept");
    assert!(k.removed.is_none());
    s.state.ds_gone(old.tag, None, now + 10).expect("gone");
    let t = Timing::from_policy(&pol);
    step(&mut s.state, &pol, now + 10 + t.ds_retire, false);
    assert_eq!(s.state.key(old).map(|k| k.all_hidden()), Some(true));
}

#[test]
fn manual_mode_waits_for_step() {
    let mut p = policy(vec![
        spec(CfgRole::Ksk, 13, None),
        spec(CfgRole::Zsk, 13, Some(10 * DAY)),
    ]);
    p.manual_mode = true;
    let mut s = Simulation::new(p, START, opts(0));
    s.run_until(START + 1);
    // the initial signing is not held
    assert_eq!(plan(&s.state).publish_dnskey.len(), 2);
    // the DS request is
    s.run_until(START + DAY);
    assert!(plan(&s.state).want_ds.is_empty());
    assert!(s.last.blocked_manual.iter().any(|c| matches!(
        c,
        Change::Record {
            record: RecordKind::Ds,
            ..
        }
    )));
    assert!(s
        .last
        .waiting_for
        .iter()
        .any(|w| w.starts_with("manual-mode:") && w.contains("run `signet step`")));
    s.operator_step();
    assert_eq!(plan(&s.state).want_ds.len(), 1);
    // a ZSK rollover takes three steps: introduce, swap the signatures, withdraw the old key
    let zsk = active(&s.state, KeyRole::Zsk)[0];
    s.run_until(START + 11 * DAY);
    let new = active(&s.state, KeyRole::Zsk)[0];
    assert_ne!(zsk, new);
    assert!(!plan(&s.state).publish_dnskey.contains(&new), "held");
    let mut steps = 0;
    while s.state.key(zsk).is_some_and(|k| !k.all_hidden()) {
        assert!(steps < 3, "{}", s.timeline());
        s.operator_step();
        steps += 1;
        s.run_until(s.now + DAY);
    }
    assert_eq!(steps, 3);
    assert_clean(&s);
}

#[test]
fn rollover_starts_now_and_never_a_flag_day() {
    let mut s = settled(vec![
        spec(CfgRole::Ksk, 13, None),
        spec(CfgRole::Zsk, 13, None),
    ]);
    let now = s.now;
    let zsk = active(&s.state, KeyRole::Zsk)[0];
    assert_eq!(s.rollover(KeyRole::Zsk).expect("zsk"), vec![zsk]);
    let new = active(&s.state, KeyRole::Zsk)[0];
    assert_ne!(new, zsk);
    assert_eq!(when(&s, &[&tag(new), "DNSKEY published"]), now);
    assert!(s.log.iter().any(|e| e.what.contains("rollover of key")));
    // the new key signs only after its DNSKEY reached every cache
    let t = Timing::from_policy(&s.policy);
    s.run_until(now + DAY);
    assert_eq!(
        when(&s, &[&tag(new), "signs the zone"]),
        now + t.dnskey_publish
    );
    assert_clean(&s);
    // errors
    assert_eq!(
        s.state.rollover(KeyRole::Csk, now),
        Err(KaspError::NoKeyOfRole(KeyRole::Csk))
    );
}

/// Rolls `role` again at `offsets` after the first rollover started; ends with one active key
/// of the role, every other key gone, glitch-free.
fn roll_twice(keys: Vec<KeySpec>, role: KeyRole, offsets: &[u64], delay: u64) {
    let t = Timing::from_policy(&policy(vec![]));
    let _ = t;
    for &off in offsets {
        let mut s = Simulation::new(policy(keys.clone()), START, opts(delay));
        s.run_until(START + DAY);
        s.rollover(role).expect("first");
        s.run_until(s.now + off);
        s.rollover(role).expect("second");
        s.run_until(s.now + 30 * DAY);
        assert_clean(&s);
        let act = active(&s.state, role);
        assert_eq!(act.len(), 1, "offset {off}: {}", s.timeline());
        for k in &s.state.keys {
            if k.goal == Goal::Hidden {
                assert!(
                    k.all_hidden(),
                    "offset {off}: key {} left: {:?}",
                    k.key,
                    s.last.waiting_for
                );
            }
        }
        assert!(s.last.waiting_for.is_empty(), "{:?}", s.last.waiting_for);
        if role.signs_keys() {
            assert_eq!(plan(&s.state).want_ds, act);
            assert_eq!(s.parent_ds.iter().copied().collect::<Vec<_>>(), act);
        }
    }
}

#[test]
fn rollover_during_a_zsk_rollover() {
    // during pre-publication, at the signature swap, while the old signatures expire
    roll_twice(
        vec![spec(CfgRole::Ksk, 13, None), spec(CfgRole::Zsk, 13, None)],
        KeyRole::Zsk,
        &[0, 30, 80, 200, 400],
        0,
    );
}

#[test]
fn rollover_during_a_ksk_rollover() {
    // before the DS swap, while the parent is slow, after the swap
    roll_twice(
        vec![spec(CfgRole::Ksk, 13, None), spec(CfgRole::Zsk, 13, None)],
        KeyRole::Ksk,
        &[0, 40, 100, 2000, 4000],
        1800,
    );
}

#[test]
fn rollover_during_a_csk_rollover() {
    roll_twice(
        vec![spec(CfgRole::Csk, 13, None)],
        KeyRole::Csk,
        &[0, 40, 100, 500, 2000, 4000],
        1800,
    );
}

#[test]
fn going_insecure_publishes_cds_delete_then_unsigns() {
    let mut s = settled(vec![spec(CfgRole::Csk, 13, None)]);
    let csk = active(&s.state, KeyRole::Csk)[0];
    s.set_policy(policy(vec![]));
    let p = plan(&s.state);
    assert!(p.cds_delete, "{p:?}");
    assert!(p.want_ds.is_empty() && p.cds.is_empty());
    assert_eq!(
        p.publish_dnskey,
        vec![csk],
        "still signed until the DS is gone"
    );
    assert!(s.state.insecure);
    s.run_until(s.now + DAY);
    let p = plan(&s.state);
    assert!(p.unsigned && !p.cds_delete, "{p:?}");
    assert!(s.parent_ds.is_empty());
    assert!(s.last.waiting_for.is_empty(), "{:?}", s.last.waiting_for);
    // coming back: a new key, introduced like a new zone's
    s.set_policy(policy(vec![spec(CfgRole::Csk, 13, None)]));
    let back = active(&s.state, KeyRole::Csk);
    assert_eq!(back.len(), 1);
    assert_ne!(back[0], csk);
    s.run_until(s.now + DAY);
    assert_eq!(plan(&s.state).want_ds, back);
    assert_clean(&s);
}

#[test]
fn adopted_keys_need_no_change() {
    let pol = policy(vec![
        spec(CfgRole::Ksk, 13, Some(30 * DAY)),
        spec(CfgRole::Zsk, 13, None),
    ]);
    let mut st = ZoneKeyState::new();
    let ksk = KeyRef {
        algorithm: 13,
        tag: 111,
    };
    let zsk = KeyRef {
        algorithm: 13,
        tag: 222,
    };
    st.adopt_key(ksk, KeyRole::Ksk, "files", None, START - DAY, true)
        .expect("ksk");
    st.adopt_key(zsk, KeyRole::Zsk, "files", None, START - DAY, true)
        .expect("zsk");
    let out = step(&mut st, &pol, START, false);
    assert!(out.changes.is_empty() && !out.republish, "{out:?}");
    assert!(out.new_keys_needed.is_empty());
    let p = plan(&st);
    assert_eq!(p.publish_dnskey, vec![ksk, zsk]);
    assert_eq!(p.want_ds, vec![ksk]);
    // the policy's lifetime applies from adoption
    let t = Timing::from_policy(&pol);
    assert_eq!(out.next_event, Some(START - DAY + 30 * DAY - t.lead));
    // a key adopted without DS at the parent gets its DS asked for
    let mut st = ZoneKeyState::new();
    st.adopt_key(ksk, KeyRole::Csk, "files", None, START - DAY, false)
        .expect("csk");
    let pol = policy(vec![spec(CfgRole::Csk, 13, None)]);
    step(&mut st, &pol, START, false);
    assert_eq!(plan(&st).want_ds, vec![ksk]);
}

#[test]
fn timers_start_at_publication() {
    let pol = policy(vec![spec(CfgRole::Csk, 13, None)]);
    let t = Timing::from_policy(&pol);
    let mut st = ZoneKeyState::new();
    let out = step(&mut st, &pol, START, false);
    let k = KeyRef {
        algorithm: 13,
        tag: 7,
    };
    st.add_key(&out.new_keys_needed[0], k, START).expect("add");
    let out = step(&mut st, &pol, START, false);
    assert!(out.republish);
    assert!(st.publication_pending());
    // the signed version is slow to come: no timer runs meanwhile
    let out = step(&mut st, &pol, START + 10 * t.dnskey_publish, false);
    assert!(out.changes.is_empty());
    assert!(
        out.waiting_for[0].contains("publish"),
        "{:?}",
        out.waiting_for
    );
    let served = START + 10 * t.dnskey_publish + 5;
    assert!(st.published(served));
    assert!(!st.publication_pending());
    let out = step(&mut st, &pol, served + t.dnskey_publish - 1, false);
    assert!(out.changes.is_empty());
    assert_eq!(out.next_event, Some(served + t.dnskey_publish));
    let out = step(&mut st, &pol, served + t.dnskey_publish, false);
    assert!(out.changes.iter().any(|c| matches!(
        c,
        Change::Record {
            record: RecordKind::Dnskey,
            to: RecordState::Omnipresent,
            ..
        }
    )));
}

#[test]
fn step_is_idempotent() {
    let mut s = settled(vec![
        spec(CfgRole::Ksk, 13, Some(5 * DAY)),
        spec(CfgRole::Zsk, 13, Some(2 * DAY)),
    ]);
    for _ in 0..20 {
        s.run_until(s.now + 3 * 3600);
        let before = s.state.clone();
        let pol = s.policy.clone();
        let out = step(&mut s.state, &pol, s.now, false);
        assert!(out.changes.is_empty() && !out.republish, "{out:?}");
        assert_eq!(before, s.state);
    }
}

#[test]
fn bad_input() {
    let mut s = settled(vec![
        spec(CfgRole::Ksk, 13, None),
        spec(CfgRole::Zsk, 13, None),
    ]);
    let now = s.now;
    let ksk = active(&s.state, KeyRole::Ksk)[0];
    let zsk = active(&s.state, KeyRole::Zsk)[0];
    let before = s.state.clone();
    let unknown = s.state.ds_seen(9, None, now);
    assert_eq!(
        unknown,
        Err(KaspError::UnknownKey {
            tag: 9,
            algorithm: None
        })
    );
    assert_eq!(
        s.state.ds_gone(ksk.tag, Some(8), now),
        Err(KaspError::UnknownKey {
            tag: ksk.tag,
            algorithm: Some(8)
        })
    );
    assert_eq!(
        s.state.ds_seen(zsk.tag, None, now),
        Err(KaspError::NoDs(zsk))
    );
    assert_eq!(s.state, before, "errors change nothing");
    let msg = KaspError::NoDs(zsk).to_string();
    assert!(msg.contains("zsk"), "{msg}");
    assert!(KaspError::UnknownKey {
        tag: 9,
        algorithm: None
    }
    .to_string()
    .contains("no key with tag 9"));
    // a colliding tag is refused, whatever the algorithm
    let pol = s.policy.clone();
    s.state.rollover(KeyRole::Zsk, now).expect("roll");
    let out = step(&mut s.state, &pol, now, false);
    let req = out.new_keys_needed[0].clone();
    assert!(s.state.tag_in_use(ksk.tag));
    let clash = KeyRef {
        algorithm: 13,
        tag: ksk.tag,
    };
    assert_eq!(
        s.state.add_key(&req, clash, now),
        Err(KaspError::TagInUse(ksk))
    );
    let wrong_alg = KeyRef {
        algorithm: 15,
        tag: 3,
    };
    assert!(matches!(
        s.state.add_key(&req, wrong_alg, now),
        Err(KaspError::StaleRequest(_))
    ));
    let ok = KeyRef {
        algorithm: 13,
        tag: 3,
    };
    s.state.add_key(&req, ok, now).expect("add");
    // the same request again: its predecessor is already retiring
    let again = KeyRef {
        algorithm: 13,
        tag: 4,
    };
    assert!(matches!(
        s.state.add_key(&req, again, now),
        Err(KaspError::StaleRequest(_))
    ));
    assert!(s.state.forget(again).is_err());
}

#[test]
fn state_files() {
    let mut s = Simulation::new(
        policy(vec![
            spec(CfgRole::Ksk, 13, Some(3 * DAY)),
            spec(CfgRole::Zsk, 15, None),
            spec(CfgRole::Ksk, 15, None),
            spec(CfgRole::Zsk, 13, Some(DAY)),
        ]),
        START,
        opts(100),
    );
    s.run_until(START + 10 * DAY + 1000);
    let json = s.state.to_json();
    assert_eq!(ZoneKeyState::from_json(&json), Ok(s.state.clone()));
    // every truncation and a few corruptions: an error, never a panic
    for cut in 0..json.len() {
        if json.is_char_boundary(cut) {
            let _ = ZoneKeyState::from_json(&json[..cut]);
        }
    }
    let bad = |j: &str| match ZoneKeyState::from_json(j) {
        Err(KaspError::BadState(m)) => m,
        other => panic!("{j}: {other:?}"),
    };
    bad("");
    bad("[]");
    bad("{\"format\": 1}");
    assert!(bad(&json.replacen("\"format\": 1", "\"format\": 2", 1)).contains("format 2"));
    let first = s.state.keys[0].key.tag;
    let second = s.state.keys[1].key.tag;
    let dup = json.replace(&format!("\"tag\": {second}"), &format!("\"tag\": {first}"));
    assert!(bad(&dup).contains("two keys"));
    let zsk_with_ds = json.replacen("\"role\": \"ksk\"", "\"role\": \"zsk\"", 1);
    assert!(bad(&zsk_with_ds).contains("role"));
    assert!(bad(&"x".repeat(17 << 20)).contains("too large"));
    // files written before the publication handshake existed read as confirmed
    let old = json.replace("\"confirmed\": true,", "");
    assert_eq!(ZoneKeyState::from_json(&old), Ok(s.state.clone()));
}

#[test]
fn purge_after_purge_keys() {
    let mut p = policy(vec![spec(CfgRole::Csk, 13, Some(DAY))]);
    p.purge_keys = 2 * DAY;
    let mut s = Simulation::new(p, START, opts(0));
    s.run_until(START + 60 * DAY);
    assert!(s.log.iter().filter(|e| e.what.contains("purged")).count() >= 50);
    // a key is removed a few hours into its successor's life and purged two days later: at
    // most the current key, its successor and four removed keys remain
    assert!(s.state.keys.len() <= 6, "{}", s.state.keys.len());
    for k in &s.state.keys {
        if let Some(r) = k.removed {
            assert!(s.now < r + 2 * DAY + 1);
        }
    }
    assert_clean(&s);
    // purge-keys = 0 keeps everything
    let mut p = policy(vec![spec(CfgRole::Csk, 13, Some(DAY))]);
    p.purge_keys = 0;
    let mut s = Simulation::new(p, START, opts(0));
    s.run_until(START + 10 * DAY);
    assert!(s.state.keys.len() >= 10);
}

#[test]
fn several_keys_per_role_and_keystore_changes() {
    let mut s = Simulation::new(
        policy(vec![
            spec(CfgRole::Ksk, 13, None),
            spec(CfgRole::Zsk, 13, Some(DAY)),
            spec(CfgRole::Zsk, 13, Some(3 * DAY / 2)),
        ]),
        START,
        opts(0),
    );
    s.run_until(START + 10 * DAY);
    assert_eq!(active(&s.state, KeyRole::Zsk).len(), 2);
    assert_eq!(plan(&s.state).sign_zone.len(), 2);
    assert_clean(&s);
    // moving the KSK to another keystore rolls it
    let mut p = s.policy.clone();
    p.keys[0].keystore = "hsm".into();
    let old = active(&s.state, KeyRole::Ksk)[0];
    s.set_policy(p);
    s.run_until(s.now + 2 * DAY);
    let new = active(&s.state, KeyRole::Ksk)[0];
    assert_ne!(old, new);
    assert_eq!(s.state.key(new).map(|k| k.keystore.as_str()), Some("hsm"));
    assert_eq!(s.state.key(old).map(|k| k.all_hidden()), Some(true));
    assert_clean(&s);
}

#[test]
fn dry_run_schedule() {
    // BIND's default policy: one CSK, never rolled
    let ev = simulate(
        &ZoneKeyState::new(),
        &Policy::default(),
        START,
        START + 365 * DAY,
    );
    let t = Timing::from_policy(&Policy::default());
    assert!(ev
        .iter()
        .any(|e| e.at == START && e.what.contains("DNSKEY published")));
    assert!(ev
        .iter()
        .any(|e| e.at == START + t.zone_publish && e.what.contains("DS requested")));
    assert!(!ev.iter().any(|e| e.what.contains("successor")));
    // with lifetimes: every rollover, with its date
    let p = Policy {
        keys: vec![
            spec(CfgRole::Ksk, 13, Some(180 * DAY)),
            spec(CfgRole::Zsk, 13, Some(30 * DAY)),
        ],
        ..Policy::default()
    };
    let ev = simulate(&ZoneKeyState::new(), &p, START, START + 365 * DAY);
    let t = Timing::from_policy(&p);
    let zsk_rolls: Vec<u64> = ev
        .iter()
        .filter(|e| e.what.contains("new zsk key") && e.what.contains("successor"))
        .map(|e| e.at)
        .collect();
    assert_eq!(zsk_rolls.len(), 12, "{ev:#?}");
    assert_eq!(zsk_rolls[0], START + 30 * DAY - t.lead);
    assert_eq!(zsk_rolls[1], START + 60 * DAY - t.lead);
    assert_eq!(
        ev.iter()
            .filter(|e| e.what.contains("new ksk key") && e.what.contains("successor"))
            .count(),
        2
    );
    let text: Vec<String> = ev.iter().map(|e| e.to_string()).collect();
    assert!(text[0].starts_with("2027-01-15T08:00:00Z  "), "{}", text[0]);
    // from a live zone: the schedule continues where the zone is
    let mut s = Simulation::new(p.clone(), START, SimOptions::default());
    s.run_until(START + 100 * DAY);
    let ev = simulate(&s.state, &p, s.now, s.now + 40 * DAY);
    let first = ev
        .iter()
        .find(|e| e.what.contains("new zsk key"))
        .expect("a zsk rollover");
    assert_eq!(first.at, START + 120 * DAY - t.lead);
}
