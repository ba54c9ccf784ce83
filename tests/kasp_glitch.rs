//! Glitch freedom of every rollover type over two simulated years.
//!
//! Each test drives `kasp::sim::Simulation` — the key state machine driven the way the zone task
//! drives it, a keystore handing out fresh tags, a registrar that copies the served CDS set to
//! the parent after a delay, a checkds that polls the parent — and runs the glitch checker over
//! everything that was served: at no instant may any combination of cached DS set, DNSKEY
//! RRset (+RRSIGs) and zone data (+RRSIGs) fail to validate, per DS algorithm and also under
//! the strict reading of RFC 4035 §2.2 for the DNSKEY RRset's algorithms. Zone data is
//! NSEC-agnostic: one timeline stands for every signed RRset, positive or denial.
//!
//! Two worlds: TTLs of seconds (hundreds of rollovers in two years) and TTLs of days (a
//! registrar taking five days). Then the negative side: the same schedules computed with
//! timings shorter than the truth, or with the safety rule switched off by a test hook, are
//! caught by the checker — down to a single second.

use signet::config::{KeyRole, KeySpec, Lifetime, Policy};
use signet::kasp::glitch::{Options, Report, Timings};
use signet::kasp::sim::{ParentModel, SimOptions, Simulation};
use signet::kasp::{Goal, StepOptions};
use signet::keystore::KeyRole as Role;

const START: u64 = 1_800_000_000;
const DAY: u64 = 86_400;
const YEARS2: u64 = 2 * 365 * DAY;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum World {
    /// TTLs of seconds.
    Short,
    /// TTLs of days.
    Long,
}

fn spec(role: KeyRole, algorithm: u8, lifetime: Option<u64>) -> KeySpec {
    KeySpec {
        role,
        algorithm,
        lifetime: lifetime.map_or(Lifetime::Unlimited, Lifetime::Secs),
        keystore: "files".into(),
    }
}

fn policy(world: World, keys: Vec<KeySpec>) -> Policy {
    match world {
        World::Short => Policy {
            keys,
            dnskey_ttl: 5,
            max_zone_ttl: 11,
            publish_safety: 2,
            retire_safety: 3,
            zone_propagation_delay: 3,
            parent_ds_ttl: 7,
            parent_propagation_delay: 4,
            purge_keys: DAY,
            ..Policy::default()
        },
        World::Long => Policy {
            keys,
            dnskey_ttl: 2 * DAY,
            max_zone_ttl: 3 * DAY,
            publish_safety: DAY,
            retire_safety: DAY,
            zone_propagation_delay: 3600,
            parent_ds_ttl: 2 * DAY,
            parent_propagation_delay: 12 * 3600,
            purge_keys: 30 * DAY,
            ..Policy::default()
        },
    }
}

/// Lifetimes (zsk, ksk, csk) that roll often in two years.
fn lifetimes(world: World) -> (u64, u64, u64) {
    match world {
        World::Short => (DAY, 5 * DAY, 3 * DAY),
        World::Long => (30 * DAY, 120 * DAY, 60 * DAY),
    }
}

/// A registrar that acts late (after the DS TTL), and a checkds that polls it.
fn options(world: World) -> SimOptions {
    SimOptions {
        parent: match world {
            World::Short => ParentModel {
                delay: 60,
                poll: 20,
                never_removes: false,
            },
            World::Long => ParentModel {
                delay: 5 * DAY,
                poll: DAY,
                never_removes: false,
            },
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

fn tail(s: &Simulation) -> String {
    let t = s.timeline();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The checker finds nothing, the simulation never stalled, and no key is stuck retiring.
fn assert_glitch_free(s: &Simulation, truth: &Timings, max_retiring: u64) -> Report {
    assert!(s.stopped.is_none(), "{:?}\n{}", s.stopped, tail(s));
    let r = s.check(truth, &strict());
    assert!(r.clean(), "{r}\n{}", tail(s));
    assert!(r.combinations > 0);
    for k in &s.state.keys {
        if k.goal == Goal::Hidden && !k.all_hidden() {
            let age = s.now - k.retired.unwrap_or(s.now);
            assert!(
                age <= max_retiring,
                "key {} retiring for {age}s: {:?}\n{}",
                k.key,
                s.last.waiting_for,
                tail(s)
            );
        }
    }
    r
}

fn count(s: &Simulation, needle: &str) -> usize {
    s.log.iter().filter(|e| e.what.contains(needle)).count()
}

/// Longest time a key may legitimately spend retiring in each world.
fn max_retiring(world: World) -> u64 {
    match world {
        World::Short => 2 * 3600,
        World::Long => 30 * DAY,
    }
}

fn run(world: World, keys: Vec<KeySpec>, opts: SimOptions) -> Simulation {
    let p = policy(world, keys);
    let mut s = Simulation::new(p, START, opts);
    s.run_until(START + YEARS2);
    s
}

fn check_world(world: World, keys: Vec<KeySpec>) -> Simulation {
    let p = policy(world, keys.clone());
    let s = run(world, keys, options(world));
    assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
    let r = s.check(&Timings::from_policy(&p), &strict());
    assert!(
        r.insecure_after_secure.is_empty(),
        "{:?}",
        r.insecure_after_secure
    );
    s
}

#[test]
fn zsk_rollovers_short_ttls() {
    let (zsk, _, _) = lifetimes(World::Short);
    let s = check_world(
        World::Short,
        vec![
            spec(KeyRole::Ksk, 13, None),
            spec(KeyRole::Zsk, 13, Some(zsk)),
        ],
    );
    assert!(
        count(&s, "zsk: stops signing the zone") >= 700,
        "{}",
        tail(&s)
    );
    assert_eq!(count(&s, "ksk: DS removal requested"), 0);
}

#[test]
fn zsk_rollovers_long_ttls() {
    let (zsk, _, _) = lifetimes(World::Long);
    let s = check_world(
        World::Long,
        vec![
            spec(KeyRole::Ksk, 13, None),
            spec(KeyRole::Zsk, 13, Some(zsk)),
        ],
    );
    assert!(
        count(&s, "zsk: stops signing the zone") >= 23,
        "{}",
        tail(&s)
    );
}

#[test]
fn ksk_rollovers_short_ttls() {
    let (_, ksk, _) = lifetimes(World::Short);
    let s = check_world(
        World::Short,
        vec![
            spec(KeyRole::Ksk, 13, Some(ksk)),
            spec(KeyRole::Zsk, 13, None),
        ],
    );
    assert!(
        count(&s, "ksk: DS gone from every resolver") >= 140,
        "{}",
        tail(&s)
    );
}

#[test]
fn ksk_rollovers_long_ttls_late_parent() {
    let (_, ksk, _) = lifetimes(World::Long);
    let s = check_world(
        World::Long,
        vec![
            spec(KeyRole::Ksk, 13, Some(ksk)),
            spec(KeyRole::Zsk, 13, None),
        ],
    );
    assert!(
        count(&s, "ksk: DS gone from every resolver") >= 5,
        "{}",
        tail(&s)
    );
}

#[test]
fn ksk_and_zsk_rollovers_both_worlds() {
    for world in [World::Short, World::Long] {
        let (zsk, ksk, _) = lifetimes(world);
        let s = check_world(
            world,
            vec![
                spec(KeyRole::Ksk, 13, Some(ksk)),
                spec(KeyRole::Zsk, 13, Some(zsk)),
            ],
        );
        assert!(count(&s, "ksk: DS gone from every resolver") >= 5);
        assert!(count(&s, "zsk: stops signing the zone") >= 20);
    }
}

#[test]
fn csk_rollovers_both_worlds() {
    for world in [World::Short, World::Long] {
        let (_, _, csk) = lifetimes(world);
        let s = check_world(world, vec![spec(KeyRole::Csk, 13, Some(csk))]);
        assert!(
            count(&s, "csk: DS gone from every resolver") >= 10,
            "{world:?}"
        );
        assert!(count(&s, "csk: stops signing the zone") >= 10, "{world:?}");
    }
}

/// Changes the policy at each (offset, keys) and runs two years.
/// Policy key sets from given offsets on.
type PolicyPlan = Vec<(u64, Vec<KeySpec>)>;

fn run_changes(world: World, plan: &[(u64, Vec<KeySpec>)], opts: SimOptions) -> Simulation {
    let mut s = Simulation::new(policy(world, plan[0].1.clone()), START, opts);
    for (at, keys) in &plan[1..] {
        s.run_until(START + at);
        s.set_policy(policy(world, keys.clone()));
    }
    s.run_until(START + YEARS2);
    s
}

/// Alternates two key sets every `period`, for two years.
fn alternating(a: Vec<KeySpec>, b: Vec<KeySpec>, period: u64) -> PolicyPlan {
    let mut v = vec![(0, a.clone())];
    let mut t = period;
    let mut flip = true;
    while t < YEARS2 {
        v.push((t, if flip { b.clone() } else { a.clone() }));
        flip = !flip;
        t += period;
    }
    v
}

#[test]
fn algorithm_rollovers_13_15_csk() {
    for world in [World::Short, World::Long] {
        let (_, _, csk) = lifetimes(world);
        let period = match world {
            World::Short => 7 * DAY,
            World::Long => 90 * DAY,
        };
        let plan = alternating(
            vec![spec(KeyRole::Csk, 13, Some(csk))],
            vec![spec(KeyRole::Csk, 15, Some(csk))],
            period,
        );
        let s = run_changes(world, &plan, options(world));
        let p = policy(world, vec![]);
        assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
        assert!(
            count(&s, "(ed25519) csk: DS trusted by every resolver") >= 3,
            "{world:?}\n{}",
            tail(&s)
        );
        assert!(count(&s, "(ecdsap256sha256) csk: DS gone from every resolver") >= 3);
    }
}

#[test]
fn algorithm_rollovers_13_15_ksk_zsk() {
    for world in [World::Short, World::Long] {
        let (zsk, ksk, _) = lifetimes(world);
        let period = match world {
            World::Short => 11 * DAY,
            World::Long => 100 * DAY,
        };
        let keys = |alg| {
            vec![
                spec(KeyRole::Ksk, alg, Some(ksk)),
                spec(KeyRole::Zsk, alg, Some(zsk)),
            ]
        };
        let s = run_changes(
            world,
            &alternating(keys(13), keys(15), period),
            options(world),
        );
        let p = policy(world, vec![]);
        assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
        assert!(count(&s, "(ed25519) ksk: DS trusted by every resolver") >= 3);
        assert!(
            count(
                &s,
                "(ecdsap256sha256) zsk: zone RRSIGs gone from every cache"
            ) >= 3
        );
    }
}

#[test]
fn ksk_zsk_to_csk_and_back() {
    for world in [World::Short, World::Long] {
        let (zsk, ksk, csk) = lifetimes(world);
        let period = match world {
            World::Short => 6 * DAY,
            World::Long => 80 * DAY,
        };
        let split = vec![
            spec(KeyRole::Ksk, 13, Some(ksk)),
            spec(KeyRole::Zsk, 13, Some(zsk)),
        ];
        let combined = vec![spec(KeyRole::Csk, 13, Some(csk))];
        let s = run_changes(world, &alternating(split, combined, period), options(world));
        let p = policy(world, vec![]);
        assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
        assert!(
            count(&s, "csk: DS trusted by every resolver") >= 3,
            "{world:?}"
        );
        assert!(
            count(&s, "csk: DS gone from every resolver") >= 3,
            "{world:?}"
        );
    }
}

#[test]
fn ksk_zsk_13_to_csk_15_and_back() {
    let world = World::Long;
    let (zsk, ksk, csk) = lifetimes(world);
    let split = vec![
        spec(KeyRole::Ksk, 13, Some(ksk)),
        spec(KeyRole::Zsk, 13, Some(zsk)),
    ];
    let combined = vec![spec(KeyRole::Csk, 15, Some(csk))];
    let s = run_changes(
        world,
        &alternating(split, combined, 75 * DAY),
        options(world),
    );
    let p = policy(world, vec![]);
    assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
    assert!(count(&s, "(ed25519) csk: DS trusted by every resolver") >= 3);
}

#[test]
fn going_insecure_and_back() {
    for world in [World::Short, World::Long] {
        let (_, _, csk) = lifetimes(world);
        let period = match world {
            World::Short => 4 * DAY,
            World::Long => 60 * DAY,
        };
        let plan = alternating(vec![spec(KeyRole::Csk, 13, Some(csk))], vec![], period);
        let s = run_changes(world, &plan, options(world));
        let p = policy(world, vec![]);
        let r = assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
        // the parent's DS set empties only while the policy is insecure
        assert!(!r.insecure_after_secure.is_empty());
        for t in &r.insecure_after_secure {
            let since_change = (t - START) % (2 * period);
            assert!(since_change >= period, "insecure at {t} in a secure phase");
        }
        assert!(count(&s, "the zone goes insecure") >= 5);
        // the unsigned zone was served in each insecure phase
        let unsigned = s
            .history
            .dnskey
            .iter()
            .filter(|(t, v)| *t > START && v.keys.is_empty())
            .count();
        assert!(unsigned >= 5, "{unsigned}");
    }
}

#[test]
fn lifetimes_shorter_than_a_rollover_still_safe() {
    // The ZSK lifetime is shorter than a ZSK rollover takes (Ipub + Iret > 1 minute), and the
    // KSK's shorter than the parent's delay: rollovers overlap, keys are replaced while being
    // introduced.
    let world = World::Short;
    let keys = vec![
        spec(KeyRole::Ksk, 13, Some(90)),
        spec(KeyRole::Zsk, 13, Some(30)),
    ];
    let p = Policy {
        purge_keys: 60,
        ..policy(world, keys.clone())
    };
    let mut s = Simulation::new(p.clone(), START, options(world));
    s.run_until(START + DAY);
    assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
    assert!(count(&s, "zsk: stops signing the zone") >= 100);
    assert!(count(&s, "ksk: DS trusted by every resolver") >= 100);
}

#[test]
fn slow_publication_keeps_the_margins() {
    for (world, delay) in [(World::Short, 4), (World::Long, 6 * 3600)] {
        let (zsk, ksk, _) = lifetimes(world);
        let keys = vec![
            spec(KeyRole::Ksk, 13, Some(ksk)),
            spec(KeyRole::Zsk, 13, Some(zsk)),
        ];
        let p = policy(world, keys.clone());
        let mut opts = options(world);
        opts.publish_delay = delay;
        let s = run(world, keys, opts);
        assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
        assert!(count(&s, "zsk: stops signing the zone") >= 20);
    }
}

#[test]
fn restart_after_every_step_gives_the_same_schedule() {
    let scenarios: Vec<(World, PolicyPlan)> = vec![
        (
            World::Short,
            vec![(
                0,
                vec![
                    spec(KeyRole::Ksk, 13, Some(2 * DAY)),
                    spec(KeyRole::Zsk, 13, Some(DAY / 2)),
                ],
            )],
        ),
        (
            World::Long,
            alternating(
                vec![spec(KeyRole::Csk, 13, Some(60 * DAY))],
                vec![
                    spec(KeyRole::Ksk, 15, Some(90 * DAY)),
                    spec(KeyRole::Zsk, 15, Some(30 * DAY)),
                ],
                120 * DAY,
            ),
        ),
        (
            World::Long,
            alternating(vec![spec(KeyRole::Csk, 13, None)], vec![], 100 * DAY),
        ),
    ];
    for (world, plan) in scenarios {
        let plain = run_changes(world, &plan, options(world));
        let mut opts = options(world);
        opts.restart_every_step = true;
        let restarted = run_changes(world, &plan, opts);
        assert!(restarted.stopped.is_none(), "{:?}", restarted.stopped);
        assert_eq!(plain.log, restarted.log, "{world:?}");
        assert_eq!(plain.history, restarted.history);
        assert_eq!(plain.state, restarted.state);
    }
}

#[test]
fn restart_between_decision_and_publication() {
    // The zone task persists the state after `step` and crashes before serving the version:
    // on restart it serves the plan of the persisted state later. Timers then start at the
    // (late) publication; nothing breaks.
    let world = World::Long;
    let (zsk, ksk, _) = lifetimes(world);
    let keys = vec![
        spec(KeyRole::Ksk, 13, Some(ksk)),
        spec(KeyRole::Zsk, 13, Some(zsk)),
    ];
    let p = policy(world, keys.clone());
    let mut opts = options(world);
    opts.restart_every_step = true;
    opts.publish_delay = 2 * 3600; // the restart takes two hours
    let s = run(world, keys, opts);
    assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world));
}

#[test]
fn manual_mode_with_a_slow_operator_is_safe() {
    for world in [World::Short, World::Long] {
        let (zsk, ksk, _) = lifetimes(world);
        let keys = vec![
            spec(KeyRole::Ksk, 13, Some(ksk)),
            spec(KeyRole::Zsk, 13, Some(zsk)),
        ];
        let mut p = policy(world, keys);
        p.manual_mode = true;
        let mut opts = options(world);
        opts.operator_delay = Some(match world {
            World::Short => 600,
            World::Long => 3 * DAY,
        });
        let mut s = Simulation::new(p.clone(), START, opts);
        s.run_until(START + YEARS2);
        assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world) * 2);
        assert!(count(&s, "operator: signet step") >= 20);
        assert!(count(&s, "zsk: stops signing the zone") >= 10);
    }
}

// ---- the checker catches broken timings -------------------------------------------------

/// Runs `keys` with the state machine believing `lie` while the world is `truth`.
fn lying(world: World, keys: Vec<KeySpec>, lie: impl Fn(&mut Policy), days: u64) -> Report {
    let truth = policy(world, keys);
    let mut believed = truth.clone();
    lie(&mut believed);
    let mut s = Simulation::new(believed, START, options(world));
    s.run_until(START + days * DAY);
    assert!(s.stopped.is_none());
    s.check(&Timings::from_policy(&truth), &strict())
}

#[test]
fn a_too_short_dnskey_ttl_is_caught() {
    let (zsk, _, _) = lifetimes(World::Long);
    let keys = vec![
        spec(KeyRole::Ksk, 13, None),
        spec(KeyRole::Zsk, 13, Some(zsk)),
    ];
    let r = lying(World::Long, keys, |p| p.dnskey_ttl = 3600, 100);
    assert!(!r.glitches.is_empty(), "{r}");
    // the new ZSK signed before its DNSKEY reached every cache
    assert!(
        r.glitches[0].reason.contains("signs the zone data"),
        "{}",
        r.glitches[0]
    );
}

#[test]
fn a_too_short_max_zone_ttl_is_caught() {
    let (zsk, _, _) = lifetimes(World::Long);
    let keys = vec![
        spec(KeyRole::Ksk, 13, None),
        spec(KeyRole::Zsk, 13, Some(zsk)),
    ];
    let r = lying(World::Long, keys, |p| p.max_zone_ttl = 3600, 100);
    assert!(!r.glitches.is_empty(), "{r}");
}

#[test]
fn a_too_short_parent_ds_ttl_is_caught() {
    let (_, ksk, _) = lifetimes(World::Long);
    let keys = vec![
        spec(KeyRole::Ksk, 13, Some(ksk)),
        spec(KeyRole::Zsk, 13, None),
    ];
    let r = lying(World::Long, keys, |p| p.parent_ds_ttl = 3600, 300);
    assert!(!r.glitches.is_empty(), "{r}");
    assert!(
        r.glitches
            .iter()
            .any(|g| g.reason.contains("matches a DNSKEY")),
        "{r}"
    );
}

#[test]
fn a_too_short_zone_propagation_delay_is_caught() {
    let (_, _, csk) = lifetimes(World::Long);
    let r = lying(
        World::Long,
        vec![spec(KeyRole::Csk, 13, Some(csk))],
        |p| {
            p.zone_propagation_delay = 0;
            p.publish_safety = 0;
            p.retire_safety = 0;
        },
        200,
    );
    assert!(!r.glitches.is_empty(), "{r}");
}

#[test]
fn one_second_short_is_caught_and_exact_is_safe() {
    // Without safety margins the waits are exactly TTL + propagation: the state machine's
    // schedule is glitch-free, and the same schedule computed with any one TTL a second
    // shorter than the truth is not.
    let keys = vec![
        spec(KeyRole::Ksk, 13, Some(5 * DAY)),
        spec(KeyRole::Zsk, 13, Some(DAY)),
    ];
    let mut exact = policy(World::Short, keys.clone());
    exact.publish_safety = 0;
    exact.retire_safety = 0;
    let mut s = Simulation::new(exact.clone(), START, options(World::Short));
    s.run_until(START + 30 * DAY);
    assert_glitch_free(&s, &Timings::from_policy(&exact), 3600);

    type Lie = (&'static str, fn(&mut Policy));
    let lies: [Lie; 3] = [
        ("dnskey-ttl", |p| p.dnskey_ttl -= 1),
        ("max-zone-ttl", |p| p.max_zone_ttl -= 1),
        ("parent-ds-ttl", |p| p.parent_ds_ttl -= 1),
    ];
    for (what, lie) in lies {
        let mut believed = exact.clone();
        lie(&mut believed);
        let mut s = Simulation::new(believed, START, options(World::Short));
        s.run_until(START + 30 * DAY);
        let r = s.check(&Timings::from_policy(&exact), &strict());
        assert!(!r.glitches.is_empty(), "{what} one second short not caught");
    }
}

#[test]
fn without_the_safety_rule_a_ksk_rollover_breaks() {
    // Correct timings, but the possible-worlds safety evaluation disabled by the test hook:
    // the old KSK's DNSKEY leaves while its DS is still at the parent.
    let (_, ksk, _) = lifetimes(World::Long);
    let keys = vec![
        spec(KeyRole::Ksk, 13, Some(ksk)),
        spec(KeyRole::Zsk, 13, None),
    ];
    let p = policy(World::Long, keys);
    let mut opts = options(World::Long);
    opts.step = StepOptions {
        unsafe_skip_safety: true,
        ..StepOptions::default()
    };
    let mut s = Simulation::new(p.clone(), START, opts);
    s.run_until(START + 200 * DAY);
    let r = s.check(&Timings::from_policy(&p), &strict());
    assert!(!r.glitches.is_empty(), "{r}");
    // and with the rule, the same run is clean
    let mut s = Simulation::new(p.clone(), START, options(World::Long));
    s.run_until(START + 200 * DAY);
    assert!(s.check(&Timings::from_policy(&p), &strict()).clean());
}

#[test]
fn without_the_safety_rule_an_algorithm_rollover_breaks() {
    let world = World::Long;
    let plan = alternating(
        vec![spec(KeyRole::Csk, 13, None)],
        vec![spec(KeyRole::Csk, 15, None)],
        60 * DAY,
    );
    let mut opts = options(world);
    opts.step = StepOptions {
        unsafe_skip_safety: true,
        ..StepOptions::default()
    };
    let s = run_changes(world, &plan[..3], opts);
    let r = s.check(&Timings::from_policy(&policy(world, vec![])), &strict());
    assert!(!r.clean(), "{r}");
}

/// xorshift64*: deterministic pseudo-random numbers for the stress test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[test]
fn emergency_rollovers_at_random_moments() {
    // `signet rollover` of a random role at random moments — often in the middle of another
    // rollover — on top of lifetimes, with policy changes between KSK+ZSK and CSK and between
    // algorithms now and then, for two years in each world and several seeds.
    for world in [World::Short, World::Long] {
        for seed in [1u64, 7, 42] {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let (zsk, ksk, csk) = lifetimes(world);
            let sets = [
                vec![
                    spec(KeyRole::Ksk, 13, Some(ksk)),
                    spec(KeyRole::Zsk, 13, Some(zsk)),
                ],
                vec![spec(KeyRole::Csk, 13, Some(csk))],
                vec![spec(KeyRole::Csk, 15, Some(csk))],
                vec![
                    spec(KeyRole::Ksk, 15, Some(ksk)),
                    spec(KeyRole::Zsk, 15, None),
                ],
            ];
            let mean_gap = match world {
                World::Short => 6 * 3600,
                World::Long => 10 * DAY,
            };
            let mut s = Simulation::new(policy(world, sets[0].clone()), START, options(world));
            let mut rolls = 0;
            while s.now < START + YEARS2 {
                let next = s.now + 1 + rng.below(2 * mean_gap);
                s.run_until(next.min(START + YEARS2));
                if rng.below(10) == 0 {
                    let keys = sets[rng.below(sets.len() as u64) as usize].clone();
                    s.set_policy(policy(world, keys));
                } else {
                    let roles = [Role::Ksk, Role::Zsk, Role::Csk];
                    let role = roles[rng.below(3) as usize];
                    if s.rollover(role).is_ok() {
                        rolls += 1;
                    }
                }
                if s.stopped.is_some() {
                    break;
                }
            }
            let p = policy(world, vec![]);
            assert_glitch_free(&s, &Timings::from_policy(&p), max_retiring(world) * 4);
            assert!(rolls > 20, "{world:?} seed {seed}: {rolls}");
        }
    }
}
