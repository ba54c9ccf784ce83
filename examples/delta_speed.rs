//! Time of one diff-driven signing step (issue 4's goal: a one-record change upstream in a
//! 1M-name zone from NOTIFY in to NOTIFY out in under 50 ms): `signer::delta::sign_zone_delta`
//! plus `verify::check_zone_delta` for a one-record change, beside the full incremental path
//! (`sign_zone_incremental` + `check_zone_since`) for the same change.
//!
//! ```sh
//! cargo run --release --example delta_speed -- [NAMES=100000] [ROUNDS=20] [NSEC3=0|1]
//! ```
//! The zone: NAMES names right below the apex and one level deeper (A, AAAA or TXT RRsets),
//! a few hundred delegations, Ed25519 CSK (deterministic signatures). Each round adds a new
//! name or removes the one added before, alternately, or changes an address.

use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::signer::fixtures::{ed25519_key, XorShift};
use signet::signer::{self, delta, verify, Denial, SignParams};
use signet::zone::data::{RRset, Zone};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Reproducible random labels.
fn label(rng: &mut XorShift) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let len = 5 + rng.below(9);
    (0..len)
        .map(|_| alphabet[rng.below(alphabet.len())])
        .collect()
}

fn rrset(rtype: u16, rdatas: Vec<Vec<u8>>) -> RRset {
    RRset {
        rtype,
        ttl: 3600,
        rdatas,
    }
}

fn zone(n: usize, origin: &Name) -> Zone {
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    let mut z = Zone::new(origin.clone());
    let ns = origin.prepend(b"ns").expect("name");
    let mut soa = ns.as_wire().to_vec();
    soa.extend_from_slice(origin.prepend(b"hostmaster").expect("name").as_wire());
    for v in [1u32, 3600, 600, 86400, 3600] {
        soa.extend_from_slice(&v.to_be_bytes());
    }
    let apex = z.nodes.entry(origin.clone()).or_default();
    apex.put(rrset(t::SOA, vec![soa]));
    apex.put(rrset(t::NS, vec![ns.as_wire().to_vec()]));
    z.nodes
        .entry(ns)
        .or_default()
        .put(rrset(t::A, vec![vec![192, 0, 2, 1]]));
    let mut parent = origin.clone();
    for i in 0..n {
        // one name in four one level below the previous top-level name
        let name = if i % 4 == 3 {
            parent.prepend(&label(&mut rng)).expect("name")
        } else {
            parent = origin.prepend(&label(&mut rng)).expect("name");
            parent.clone()
        };
        let r = rng.next_u64();
        let node = z.nodes.entry(name.clone()).or_default();
        match r % 3 {
            0 => node.put(rrset(t::A, vec![(r as u32).to_be_bytes().to_vec()])),
            1 => node.put(rrset(t::AAAA, vec![[(r & 0xff) as u8; 16].to_vec()])),
            _ => node.put(rrset(t::TXT, vec![b"\x0bsome text!!".to_vec()])),
        }
        if i % 500 == 7 && name.label_count() == origin.label_count() + 1 {
            node.put(rrset(t::NS, vec![b"\x02ns\x07example\x00".to_vec()]));
        }
    }
    z
}

fn main() {
    // positional: names, rounds, 1 for NSEC3
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap_or_else(|_| panic!("not a number: {a}")))
        .collect();
    let n = args.first().copied().unwrap_or(100_000) as usize;
    let rounds = args.get(1).copied().unwrap_or(20) as usize;
    let denial = if args.get(2) == Some(&1) {
        Denial::Nsec3 {
            iterations: 0,
            salt: vec![],
            opt_out: false,
        }
    } else {
        Denial::Nsec
    };
    let origin = Name::parse("bench.test.", None).expect("origin");
    let keys = vec![ed25519_key(1, 257, true, true).expect("key")];
    let params = SignParams {
        denial,
        ..SignParams::default()
    };
    let refresh = 5 * 86400;
    let t0 = 1_704_067_200u64;

    let started = Instant::now();
    let mut unsigned = zone(n, &origin);
    let mut signed = signer::sign_zone(&unsigned, &keys, &params, t0).expect("sign");
    println!(
        "{} names, {} nodes signed ({:?}) in {:.1?}",
        n,
        signed.nodes.len(),
        params.denial,
        started.elapsed()
    );

    let mut sign_times = Vec::new();
    let mut check_times = Vec::new();
    let mut sizes = Vec::new();
    let added = origin.prepend(b"delta-speed-new").expect("name");
    let moved = unsigned
        .nodes
        .keys()
        .nth(unsigned.nodes.len() / 2)
        .expect("a name")
        .clone();
    for round in 1..=rounds {
        let now = t0 + round as u64 * 60;
        let mut next = unsigned.clone();
        next.set_serial(round as u32 + 1);
        let mut touched: BTreeSet<Name> = [origin.clone()].into_iter().collect();
        match round % 3 {
            0 => {
                if let Some(node) = next.nodes.get_mut(&moved) {
                    node.put(rrset(t::A, vec![vec![198, 51, 100, round as u8]]));
                }
                touched.insert(moved.clone());
            }
            _ => {
                if next.nodes.remove(&added).is_none() {
                    next.nodes
                        .entry(added.clone())
                        .or_default()
                        .put(rrset(t::A, vec![vec![192, 0, 2, 99]]));
                }
                touched.insert(added.clone());
            }
        }
        let t = Instant::now();
        let changed =
            delta::sign_zone_delta(&mut signed, &next, &touched, &keys, &params, now, refresh)
                .expect("delta");
        sign_times.push(t.elapsed());
        let t = Instant::now();
        let problems = verify::check_zone_delta(&signed, now, &changed);
        check_times.push(t.elapsed());
        assert!(problems.is_empty(), "{problems:?}");
        sizes.push(changed.len());
        unsigned = next;
    }
    let med = |v: &mut Vec<Duration>| {
        v.sort();
        (v[0], v[v.len() / 2])
    };
    let (smin, smed) = med(&mut sign_times);
    let (cmin, cmed) = med(&mut check_times);
    println!(
        "one-record change, {rounds} rounds: sign_zone_delta min {smin:.2?} median {smed:.2?}; \
         check_zone_delta min {cmin:.2?} median {cmed:.2?}; names changed {sizes:?}"
    );

    // the full path for the same kind of change, once
    let mut next = unsigned.clone();
    next.set_serial(rounds as u32 + 2);
    next.nodes
        .entry(origin.prepend(b"full-path").expect("name"))
        .or_default()
        .put(rrset(t::A, vec![vec![192, 0, 2, 98]]));
    let now = t0 + (rounds as u64 + 1) * 60;
    let t = Instant::now();
    let full =
        signer::sign_zone_incremental(next, &signed, refresh, &keys, &params, now).expect("full");
    let fs = t.elapsed();
    let t = Instant::now();
    let problems = verify::check_zone_since(&full, now, Some(&signed));
    let fc = t.elapsed();
    assert!(problems.is_empty(), "{problems:?}");
    println!("full path for comparison: sign_zone_incremental {fs:.1?}, check_zone_since {fc:.1?}");
}
