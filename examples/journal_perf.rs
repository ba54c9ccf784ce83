//! Cost of the journal path for a one-record change in a large zone (issue 4's benchmark: a
//! one-record change in a 1M-name zone, NOTIFY in to NOTIFY out under 50 ms): `diff` of the two
//! signed versions, `Journal::append` (with fsync), `Journal::history` and the condensed IXFR.
//! A benchmark, not a test (it builds a zone of a million names):
//! `cargo run --release --example journal_perf` prints the timings.
//! The names carry fake RRSIGs: signing is not what is measured here.

use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::journal::{condense, diff, diff_names, Journal, JournalLimits};
use signet::zone::data::{Node, RRset, Sig, Zone};
use std::time::Instant;

fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn soa(serial: u32) -> Vec<u8> {
    let mut rd = name("ns.example.").as_wire().to_vec();
    rd.extend_from_slice(name("hostmaster.example.").as_wire());
    for v in [serial, 3600, 600, 86400, 300] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    rd
}

fn sig(covered: u16, salt: u32) -> Sig {
    let mut rd = covered.to_be_bytes().to_vec();
    rd.extend_from_slice(&[13, 2, 0, 0, 1, 44]);
    rd.extend_from_slice(&salt.to_be_bytes());
    rd.extend_from_slice(&[0; 6]);
    rd.extend_from_slice(name("example.").as_wire());
    rd.extend_from_slice(&[0x5a; 64]);
    Sig {
        covered,
        ttl: 300,
        rdata: rd,
    }
}

fn big_zone(names: u32) -> Zone {
    let mut z = Zone::new(name("example."));
    let mut apex = Node::default();
    apex.put(RRset {
        rtype: t::SOA,
        ttl: 300,
        rdatas: vec![soa(1)],
    });
    apex.put(RRset {
        rtype: t::NS,
        ttl: 300,
        rdatas: vec![name("ns.example.").as_wire().to_vec()],
    });
    apex.sigs.push(sig(t::SOA, 1));
    z.nodes.insert(name("example."), apex);
    for i in 0..names {
        let mut n = Node::default();
        n.put(RRset {
            rtype: t::A,
            ttl: 300,
            rdatas: vec![i.to_be_bytes().to_vec()],
        });
        n.sigs.push(sig(t::A, i));
        n.sigs.push(sig(t::NSEC, i));
        z.nodes.insert(name(&format!("host{i:07}.example.")), n);
    }
    z
}

fn main() {
    let t0 = Instant::now();
    let v1 = big_zone(1_000_000);
    eprintln!("build: {:?}", t0.elapsed());
    let mut v2 = v1.clone();
    v2.set_serial(2);
    let owner = name("host0500000.example.");
    if let Some(n) = v2.nodes.get_mut(&owner) {
        n.put(RRset {
            rtype: t::A,
            ttl: 300,
            rdatas: vec![vec![192, 0, 2, 1]],
        });
        n.sigs[0] = sig(t::A, 4_000_000);
    }
    if let Some(apex) = v2.nodes.get_mut(&name("example.")) {
        apex.sigs[0] = sig(t::SOA, 2);
    }

    let t = Instant::now();
    let cs = diff(&v1, &v2);
    let t_diff = t.elapsed();
    assert_eq!(cs.record_count(), 8, "{cs:?}");
    let t = Instant::now();
    let cs2 = diff_names(&v1, &v2, [&owner]);
    let t_diff_names = t.elapsed();
    assert_eq!(cs2, cs);

    let dir = std::env::temp_dir().join(format!("signet-journal-perf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut j = Journal::open(&dir, &name("example."), JournalLimits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    j.reset(1).unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    j.append(&cs).unwrap_or_else(|e| panic!("{e}"));
    let t_append = t.elapsed();
    let t = Instant::now();
    let h = j.history();
    let t_hist = t.elapsed();
    let t = Instant::now();
    let c = condense(h.changesets()).unwrap_or_else(|e| panic!("{e}"));
    let t_condense = t.elapsed();
    assert_eq!(c.record_count(), 8);
    eprintln!(
        "one-record change, 1M names: diff {t_diff:?} (diff_names {t_diff_names:?}), append+fsync {t_append:?}, history {t_hist:?}, condense {t_condense:?}; IXFR {} records",
        c.record_count() + 2
    );
    let _ = std::fs::remove_dir_all(&dir);
}
