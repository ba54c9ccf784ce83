//! Tests of [`super::sign_zone_delta`] and [`crate::signer::verify::check_zone_delta`]: random
//! zones and random edits, each round compared with the full incremental signer.

use super::*;
use crate::journal;
use crate::signer::fixtures::{ed25519_key, XorShift as Rng};
use crate::signer::{sign_zone_incremental, sign_zone_owned, verify};

fn ed25519(seed: u8, flags: u16, signs_keys: bool, signs_zone: bool) -> ActiveKey {
    ed25519_key(seed, flags, signs_keys, signs_zone).unwrap()
}

fn csk() -> Vec<ActiveKey> {
    vec![ed25519(7, 257, true, true)]
}

fn ksk_zsk() -> Vec<ActiveKey> {
    vec![ed25519(3, 257, true, false), ed25519(4, 256, false, true)]
}

fn origin() -> Name {
    Name::parse("delta.test.", None).unwrap()
}

/// Labels drawn from a small set, so that random names share ancestors (empty non-terminals,
/// names below delegations and DNAMEs).
const LABELS: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "www", "mail", "ns", "sub", "x", "y", "z", "k1", "k2",
];

fn random_name(rng: &mut Rng, max_depth: usize) -> Name {
    let depth = 1 + rng.below(max_depth);
    let mut n = origin();
    for i in 0..depth {
        let l = if i + 1 == depth && rng.chance(4) {
            "*"
        } else {
            LABELS[rng.below(LABELS.len())]
        };
        n = n.prepend(l.as_bytes()).unwrap();
    }
    n
}

fn wire(name: &str) -> Vec<u8> {
    Name::parse(name, None).unwrap().as_wire().to_vec()
}

fn set(rtype: u16, ttl: u32, rdatas: Vec<Vec<u8>>) -> RRset {
    RRset { rtype, ttl, rdatas }
}

fn soa(serial: u32) -> RRset {
    let mut rd = wire("ns.delta.test.");
    rd.extend(wire("hostmaster.delta.test."));
    for v in [serial, 3600, 600, 86400, 300] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    set(t::SOA, 300, vec![rd])
}

fn a_record(rng: &mut Rng) -> Vec<u8> {
    vec![192, 0, 2, rng.below(250) as u8]
}

fn ds_record(rng: &mut Rng) -> Vec<u8> {
    let mut rd = vec![(rng.next_u64() & 0xff) as u8, 1, 13, 2];
    rd.extend((0..32).map(|_| (rng.next_u64() & 0xff) as u8));
    rd
}

fn ns_record(owner: &Name, rng: &mut Rng) -> Vec<u8> {
    if rng.chance(50) {
        owner.prepend(b"ns").unwrap().as_wire().to_vec()
    } else {
        wire("ns.elsewhere.example.")
    }
}

/// A random zone: plain names at depths 1–3 (empty non-terminals between), delegations with
/// and without DS with glue and names below, a DNAME with names below, wildcards.
fn random_zone(rng: &mut Rng, names: usize) -> Zone {
    let mut z = Zone::new(origin());
    let apex = z.nodes.entry(origin()).or_default();
    apex.put(soa(1));
    apex.put(set(t::NS, 300, vec![wire("ns.delta.test.")]));
    z.nodes
        .entry(Name::parse("ns.delta.test.", None).unwrap())
        .or_default()
        .put(set(t::A, 300, vec![vec![192, 0, 2, 1]]));
    for _ in 0..names {
        let n = random_name(rng, 3);
        let node = z.nodes.entry(n).or_default();
        if rng.chance(70) {
            node.put(set(t::A, 300, vec![a_record(rng)]));
        } else {
            node.put(set(t::TXT, 600, vec![b"\x05hello".to_vec()]));
        }
    }
    for _ in 0..8 {
        let n = random_name(rng, 2);
        if n == origin() {
            continue;
        }
        let rd = ns_record(&n, rng);
        let glue = n.prepend(b"ns").unwrap();
        let node = z.nodes.entry(n).or_default();
        node.put(set(t::NS, 300, vec![rd]));
        if rng.chance(50) {
            node.put(set(t::DS, 300, vec![ds_record(rng)]));
        }
        z.nodes
            .entry(glue)
            .or_default()
            .put(set(t::A, 300, vec![a_record(rng)]));
    }
    let dn = Name::parse("dn.delta.test.", None).unwrap();
    z.nodes
        .entry(dn.clone())
        .or_default()
        .put(set(t::DNAME, 300, vec![wire("target.example.")]));
    for l in ["a", "b.c"] {
        let n = Name::parse(l, Some(&dn)).unwrap();
        z.nodes
            .entry(n)
            .or_default()
            .put(set(t::A, 300, vec![vec![192, 0, 2, 9]]));
    }
    z
}

/// One random edit of `z`; the names it touches go to `touched`.
fn random_edit(rng: &mut Rng, z: &mut Zone, touched: &mut BTreeSet<Name>) {
    let apex = origin();
    // an existing name (not the apex), when there is one
    let existing = |rng: &mut Rng, z: &Zone| -> Option<Name> {
        let n = z.nodes.len();
        let i = rng.below(n);
        z.nodes.keys().nth(i).filter(|k| **k != apex).cloned()
    };
    match rng.below(11) {
        // add a record at a new or existing name, up to five labels deep
        0 | 1 => {
            let n = random_name(rng, 5);
            if n == apex {
                return;
            }
            let rd = a_record(rng);
            let node = z.nodes.entry(n.clone()).or_default();
            match node.rrsets.iter_mut().find(|s| s.rtype == t::A) {
                Some(s) => {
                    if !s.rdatas.contains(&rd) {
                        s.rdatas.push(rd)
                    }
                }
                None => node.put(set(t::A, 300, vec![rd])),
            }
            touched.insert(n);
        }
        // remove a whole name
        2 | 3 => {
            if let Some(n) = existing(rng, z) {
                z.nodes.remove(&n);
                touched.insert(n);
            }
        }
        // change a record or a TTL
        4 => {
            if let Some(n) = existing(rng, z) {
                if let Some(node) = z.nodes.get_mut(&n) {
                    let i = rng.below(node.rrsets.len().max(1));
                    if let Some(s) = node.rrsets.get_mut(i) {
                        if s.rtype == t::A {
                            s.rdatas = vec![a_record(rng)];
                        } else {
                            s.ttl += 1;
                        }
                    }
                }
                touched.insert(n);
            }
        }
        // a delegation over what is there, or one less
        5 | 6 => {
            if let Some(n) = existing(rng, z) {
                let rd = ns_record(&n, rng);
                if let Some(node) = z.nodes.get_mut(&n) {
                    if node.remove(t::NS).is_none() {
                        node.put(set(t::NS, 300, vec![rd]));
                    } else {
                        node.remove(t::DS);
                    }
                    if node.rrsets.is_empty() {
                        z.nodes.remove(&n);
                    }
                }
                touched.insert(n);
            }
        }
        // DS added at or removed from a delegation
        7 => {
            let dels: Vec<Name> = z
                .nodes
                .iter()
                .filter(|(k, n)| **k != apex && n.has(t::NS))
                .map(|(k, _)| k.clone())
                .collect();
            if dels.is_empty() {
                return;
            }
            let n = dels[rng.below(dels.len())].clone();
            let rd = ds_record(rng);
            if let Some(node) = z.nodes.get_mut(&n) {
                if node.remove(t::DS).is_none() {
                    node.put(set(t::DS, 300, vec![rd]));
                }
            }
            touched.insert(n);
        }
        // a DNAME added or removed
        8 => {
            if let Some(n) = existing(rng, z) {
                if let Some(node) = z.nodes.get_mut(&n) {
                    if node.remove(t::DNAME).is_none() && !node.has(t::CNAME) {
                        node.put(set(t::DNAME, 300, vec![wire("elsewhere.example.")]));
                    }
                    if node.rrsets.is_empty() {
                        z.nodes.remove(&n);
                    }
                }
                touched.insert(n);
            }
        }
        // a deep name that makes empty non-terminals, or removing one
        9 => {
            let n = random_name(rng, 3)
                .prepend(b"deep")
                .and_then(|n| n.prepend(b"er"))
                .unwrap();
            if z.nodes.remove(&n).is_none() {
                z.nodes.entry(n.clone()).or_default().put(set(
                    t::TXT,
                    300,
                    vec![b"\x04deep".to_vec()],
                ));
            }
            touched.insert(n);
        }
        // a name the size of an NSEC3 owner label, right below the apex
        _ => {
            let label: Vec<u8> = (0..32)
                .map(|_| b"0123456789abcdefghijklmnopqrstuv"[rng.below(32)])
                .collect();
            let n = apex.prepend(&label).unwrap();
            z.nodes
                .entry(n.clone())
                .or_default()
                .put(set(t::A, 300, vec![a_record(rng)]));
            touched.insert(n);
        }
    }
}

fn differing(a: &Zone, b: &Zone) -> BTreeSet<Name> {
    changed_names(a, b)
}

fn first_difference(a: &Zone, b: &Zone) -> String {
    match differing(a, b).into_iter().next() {
        Some(n) => format!(
            "{n}:\n delta: {:?}\n full:  {:?}",
            a.nodes.get(&n),
            b.nodes.get(&n)
        ),
        None => "no node differs".into(),
    }
}

const T0: u64 = 1_704_067_200;
const REFRESH: u32 = 5 * 86400;

fn params(denial: Denial) -> SignParams {
    SignParams {
        denial,
        threads: 1,
        ..SignParams::default()
    }
}

fn nsec3(opt_out: bool) -> Denial {
    Denial::Nsec3 {
        iterations: 0,
        salt: vec![0xab, 0xcd],
        opt_out,
    }
}

/// Many rounds of random edits: after each, the delta equals the full incremental signing,
/// its changed set is exactly the names that differ (and covers the IXFR diff), and both the
/// delta self-check and the full self-check pass.
fn rounds(seed: u64, denial: Denial, keys: &[ActiveKey], rounds: usize) {
    let mut rng = Rng(seed);
    let p = params(denial.clone());
    let mut unsigned = random_zone(&mut rng, 250);
    let mut signed = sign_zone_owned(unsigned.clone(), keys, &p, T0).unwrap();
    assert!(verify::check_zone(&signed, T0, true).is_empty());
    let mut nonempty = 0;
    for round in 1..=rounds {
        let now = T0 + round as u64 * 60;
        let mut touched = BTreeSet::new();
        let mut next = unsigned.clone();
        for _ in 0..1 + rng.below(4) {
            random_edit(&mut rng, &mut next, &mut touched);
        }
        next.set_serial(round as u32 + 1);
        touched.insert(origin());
        let full = sign_zone_incremental(next.clone(), &signed, REFRESH, keys, &p, now).unwrap();
        let mut delta = signed.clone();
        let changed = sign_zone_delta(&mut delta, &next, &touched, keys, &p, now, REFRESH)
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            delta == full,
            "round {round} ({denial:?}), touched {touched:?}: {}",
            first_difference(&delta, &full)
        );
        assert_eq!(changed, differing(&signed, &full), "round {round}");
        let cs = journal::diff(&signed, &full);
        for r in cs.removed.iter().chain(&cs.added) {
            assert!(changed.contains(&r.owner), "round {round}: {}", r.owner);
        }
        let problems = verify::check_zone_delta(&delta, now, &changed);
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        // every new signature expires after the bound the caller keeps
        let bound = earliest_new_expiration(&p, now);
        for name in &changed {
            let old = signed
                .nodes
                .get(name)
                .map(|n| n.sigs.clone())
                .unwrap_or_default();
            for s in delta
                .nodes
                .get(name)
                .map(|n| &n.sigs[..])
                .unwrap_or_default()
            {
                let exp = u32::from_be_bytes([s.rdata[8], s.rdata[9], s.rdata[10], s.rdata[11]]);
                assert!(
                    old.contains(s) || u64::from(exp) >= bound,
                    "round {round}: {name}"
                );
            }
        }
        if round % 5 == 0 || round == rounds {
            let problems = verify::check_zone(&delta, now, true);
            assert!(problems.is_empty(), "round {round}: {problems:?}");
        }
        if changed.len() > 1 {
            nonempty += 1;
        }
        unsigned = next;
        signed = delta;
    }
    // the edits did something
    assert!(
        nonempty > rounds / 2,
        "{nonempty} of {rounds} rounds changed more than the apex"
    );
}

/// Every denial mode with a CSK and with a KSK+ZSK, each from its own seed.
#[test]
fn random_edits_every_denial_and_key_set() {
    let cases: [(u64, Denial, Vec<ActiveKey>); 6] = [
        (0x1234_5678_9abc_def1, Denial::Nsec, csk()),
        (0x0fed_cba9_8765_4321, Denial::Nsec, ksk_zsk()),
        (0x5555_aaaa_3333_cccc, nsec3(false), csk()),
        (0x2468_ace0_1357_9bdf, nsec3(false), ksk_zsk()),
        (0x7777_1111_9999_3333, nsec3(true), csk()),
        (0x0123_4567_89ab_cdef, nsec3(true), ksk_zsk()),
    ];
    for (seed, denial, keys) in cases {
        rounds(seed, denial, &keys, 60);
    }
}

/// A random zone of `names` names signed at T0, then a delta one minute later that adds the
/// name `brand-new` with one A record: the signed result, its changed names, the new name.
fn one_new_name(
    seed: u64,
    denial: Denial,
    keys: &[ActiveKey],
    names: usize,
) -> (Zone, BTreeSet<Name>, Name) {
    let mut rng = Rng(seed);
    let p = params(denial);
    let unsigned = random_zone(&mut rng, names);
    let mut signed = sign_zone_owned(unsigned.clone(), keys, &p, T0).unwrap();
    let mut next = unsigned.clone();
    next.set_serial(2);
    let n = Name::parse("brand-new.delta.test.", None).unwrap();
    next.nodes
        .entry(n.clone())
        .or_default()
        .put(set(t::A, 300, vec![vec![192, 0, 2, 77]]));
    let touched: BTreeSet<Name> = [origin(), n.clone()].into_iter().collect();
    let changed =
        sign_zone_delta(&mut signed, &next, &touched, keys, &p, T0 + 60, REFRESH).unwrap();
    (signed, changed, n)
}

/// A one-record change touches the record's name, its NSEC/NSEC3 neighbourhood and the apex.
#[test]
fn one_record_change_is_small() {
    for denial in [Denial::Nsec, nsec3(false), nsec3(true)] {
        let (signed, changed, n) = one_new_name(99, denial, &csk(), 200);
        assert!(changed.contains(&n) && changed.contains(&origin()));
        // the name, the apex, one predecessor; NSEC3: the hashed owner and its predecessor
        assert!(
            (3..=5).contains(&changed.len()),
            "{} names changed: {changed:?}",
            changed.len()
        );
        assert!(verify::check_zone_delta(&signed, T0 + 60, &changed).is_empty());
    }
}

/// Another SOA MINIMUM changes every NSEC TTL: the delta falls back to the full signing.
#[test]
fn soa_minimum_change_falls_back() {
    let mut rng = Rng(5);
    let keys = csk();
    let p = params(Denial::Nsec);
    let unsigned = random_zone(&mut rng, 50);
    let signed = sign_zone_owned(unsigned.clone(), &keys, &p, T0).unwrap();
    let mut next = unsigned.clone();
    let mut s = soa(2);
    let rd = &mut s.rdatas[0];
    let l = rd.len();
    rd[l - 4..].copy_from_slice(&100u32.to_be_bytes());
    next.nodes.get_mut(&origin()).unwrap().put(s);
    let touched: BTreeSet<Name> = [origin()].into_iter().collect();
    let full = sign_zone_incremental(next.clone(), &signed, REFRESH, &keys, &p, T0 + 60).unwrap();
    let mut delta = signed.clone();
    let changed =
        sign_zone_delta(&mut delta, &next, &touched, &keys, &p, T0 + 60, REFRESH).unwrap();
    assert!(delta == full);
    assert_eq!(changed, differing(&signed, &full));
    assert!(changed.len() > 40);
}

/// A new entry on the hash of an entry that stays in the chain is a collision (RFC 5155 §7.1),
/// as in the full signer. SHA-1 collisions cannot be made here: an NSEC3 record planted at the
/// new name's hashed owner stands for a name of the zone with the same hash.
#[test]
fn nsec3_collision_is_an_error() {
    let mut rng = Rng(8);
    let keys = csk();
    let denial = nsec3(false);
    let p = params(denial.clone());
    let unsigned = random_zone(&mut rng, 50);
    let mut signed = sign_zone_owned(unsigned.clone(), &keys, &p, T0).unwrap();
    let n = Name::parse("collides.delta.test.", None).unwrap();
    let Denial::Nsec3 {
        iterations, salt, ..
    } = &denial
    else {
        unreachable!()
    };
    let owner = nsec3::owner_of(&nsec3::hash(&n, salt, *iterations), &origin()).unwrap();
    let rd = nsec3::nsec3_rdata(0, *iterations, salt, &[0; HASH_LEN], &[]);
    signed
        .nodes
        .entry(owner)
        .or_default()
        .put(set(t::NSEC3, 300, vec![rd]));
    let mut next = unsigned.clone();
    next.set_serial(2);
    next.nodes
        .entry(n.clone())
        .or_default()
        .put(set(t::A, 300, vec![vec![192, 0, 2, 1]]));
    let touched: BTreeSet<Name> = [origin(), n].into_iter().collect();
    let before = signed.clone();
    let r = sign_zone_delta(&mut signed, &next, &touched, &keys, &p, T0 + 60, REFRESH);
    assert!(
        matches!(r, Err(SignError::Nsec3Collision(_))),
        "{:?}",
        r.err()
    );
    // nothing changed
    assert!(signed == before, "{}", first_difference(&signed, &before));
}

/// Fails unless one of `problems` mentions `needle`.
fn assert_reports(problems: Vec<String>, needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "no problem mentions {needle}: {problems:?}"
    );
}

/// The delta self-check finds a bad signature and a broken chain at a changed name.
#[test]
fn check_zone_delta_catches_corruption() {
    for denial in [Denial::Nsec, nsec3(false)] {
        let (signed, changed, n) = one_new_name(42, denial.clone(), &ksk_zsk(), 100);
        assert!(verify::check_zone_delta(&signed, T0 + 60, &changed).is_empty());

        // a signature that does not verify
        let mut bad = signed.clone();
        let sig = &mut bad.nodes.get_mut(&n).unwrap().sigs[0];
        let l = sig.rdata.len();
        sig.rdata[l - 1] ^= 1;
        assert_reports(
            verify::check_zone_delta(&bad, T0 + 60, &changed),
            "brand-new.delta.test.",
        );

        // an expired one (checked after its expiration)
        let late = T0 + 30 * 86400;
        assert_reports(verify::check_zone_delta(&signed, late, &changed), "expired");

        // a next name that skips a member
        let mut broken = signed.clone();
        match denial {
            Denial::Nsec => {
                let node = broken.nodes.get_mut(&n).unwrap();
                let nsec = node.rrsets.iter_mut().find(|s| s.rtype == t::NSEC).unwrap();
                let rd = &mut nsec.rdatas[0];
                let end = crate::dns::wire::name_len(rd, 0).unwrap();
                let mut fresh = origin().as_wire().to_vec();
                fresh.extend_from_slice(&rd[end..]);
                *rd = fresh;
            }
            Denial::Nsec3 { .. } => {
                let owner = changed
                    .iter()
                    .find(|c| broken.nodes.get(c).is_some_and(|node| node.has(t::NSEC3)))
                    .unwrap()
                    .clone();
                let node = broken.nodes.get_mut(&owner).unwrap();
                let n3 = node
                    .rrsets
                    .iter_mut()
                    .find(|s| s.rtype == t::NSEC3)
                    .unwrap();
                // salt of 2 octets: the next hash starts at 8
                n3.rdatas[0][8] ^= 0x10;
            }
        }
        assert_reports(verify::check_zone_delta(&broken, T0 + 60, &changed), "next");

        // a delegation made over a subtree whose names were left signed and in the chain
        let mut cut = signed.clone();
        let x = cut
            .nodes
            .iter()
            .find(|(k, node)| {
                k.label_count() == origin().label_count() + 1
                    && !node.has(t::NS)
                    && !node.has(t::DNAME)
                    && cut
                        .nodes
                        .range((Excluded(*k), Unbounded))
                        .next()
                        .is_some_and(|(y, _)| y.is_subdomain_of(k))
            })
            .map(|(k, _)| k.clone())
            .unwrap();
        cut.nodes
            .get_mut(&x)
            .unwrap()
            .put(set(t::NS, 300, vec![wire("ns.elsewhere.example.")]));
        let only: BTreeSet<Name> = [x].into_iter().collect();
        assert_reports(
            verify::check_zone_delta(&cut, T0 + 60, &only),
            "below a changed name",
        );

        // an RRset whose signature went missing
        if denial == Denial::Nsec {
            let mut stale = signed.clone();
            let node = stale.nodes.get_mut(&n).unwrap();
            node.sigs.retain(|s| s.covered != t::A);
            assert_reports(
                verify::check_zone_delta(&stale, T0 + 60, &changed),
                "no RRSIG",
            );
        }
    }
}
