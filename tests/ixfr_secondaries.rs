//! IXFR out (RFC 1995) to real secondaries: a BIND named (`request-ixfr yes`) and an NSD 4.6
//! follow many rounds of random edits of a signed zone (hosts added, removed and changed, TTL
//! changes, delegations that come and go, names below empty non-terminals), NSEC and NSEC3 with
//! opt-out. Every version is signed by the library with Ed25519 keys at one fixed time, so
//! unchanged RRsets keep byte-identical RRSIGs and the diff is small; each diff is appended to a
//! [`Journal`] and the version is published with the journal's history, then both secondaries
//! are NOTIFYed. After every round both secondaries serve the new serial, their AXFR equals the
//! signed version, and our log shows an incremental IXFR to each (they did not fall back to
//! AXFR). A third secondary (named) is left behind while the journal is compacted past its
//! serial: it gets an AXFR-style answer and still converges. All copies pass ldns-verify-zone,
//! dnssec-verify and kzonecheck.

mod common;
#[path = "ixfr_support.rs"]
mod ixfr_support;
#[path = "publisher_support.rs"]
mod support;

use common::*;
use ixfr_support::*;
use signet::journal::{diff, Journal, JournalLimits};
use signet::publisher::{Publisher, Served};
use signet::signer::Denial;
use signet::zone::data::Zone;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::*;

const ZONE: &str = "example.test";

// ------------------------------------------------------------------------------- helpers

fn notify(r: &Running, p: &Arc<Publisher>, port: u16, key: &TsigKey) {
    let target: SocketAddr = format!("127.0.0.1:{port}")
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let handle = {
        let _rt = r.enter();
        p.notify(
            &name("example.test."),
            vec![target],
            Some(Arc::new(lib_key(&key.name, &key.secret))),
        )
        .unwrap_or_else(|| panic!("notify task"))
    };
    let outcomes = r
        .block_on(handle)
        .unwrap_or_else(|e| panic!("notify task: {e}"));
    assert_eq!(outcomes.len(), 1);
}

/// The canonical form of a zone we hold.
fn ours_canonical(zone: &Zone, path: &std::path::Path) -> String {
    write_zone(zone, path);
    canonical_zone(ZONE, path).unwrap_or_else(|e| panic!("{e}"))
}

/// The canonical form of a secondary's AXFR (with `key`).
fn theirs_canonical(port: u16, key: &TsigKey, path: &std::path::Path) -> String {
    let text = axfr(port, ZONE, Some(key));
    axfr_to_file(&text, path);
    canonical_zone(ZONE, path).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_same(ours: &str, theirs: &str, who: &str, serial: u32) {
    if ours != theirs {
        let a: BTreeSet<&str> = ours.lines().collect();
        let b: BTreeSet<&str> = theirs.lines().collect();
        let missing: Vec<_> = a.difference(&b).take(10).collect();
        let extra: Vec<_> = b.difference(&a).take(10).collect();
        panic!(
            "{who} at serial {serial} differs from ours:\n missing: {missing:#?}\n extra: {extra:#?}"
        );
    }
}

fn run_rounds(label: &str, denial: Denial, rounds: u32) {
    require!(
        "named",
        "nsd",
        "dig",
        "named-compilezone",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    logs();
    let mut rng = Rng(seed(label));
    let tmp = TempDir::new(label);
    let k_named = TsigKey::generate(&format!("{label}-named"));
    let k_nsd = TsigKey::generate(&format!("{label}-nsd"));
    let k_late = TsigKey::generate(&format!("{label}-late"));
    let signer = ZoneSigner::new(denial);
    let mut model = Model::new(120);
    let mut current = signer.sign(&model);
    let limits = JournalLimits {
        max_entries: 4,
        ..JournalLimits::default()
    };
    let jdir = tmp.subdir("journal");
    let mut journal = Journal::open(&jdir, &name("example.test."), limits)
        .unwrap_or_else(|e| panic!("journal: {e}"));
    current = journal
        .recover(current)
        .unwrap_or_else(|e| panic!("recover: {e}"));
    let acl = vec![
        acl_key(&k_named.name),
        acl_key(&k_nsd.name),
        acl_key(&k_late.name),
    ];
    let p = publisher();
    p.set_keys(keyring(vec![
        lib_key(&k_named.name, &k_named.secret),
        lib_key(&k_nsd.name, &k_nsd.secret),
        lib_key(&k_late.name, &k_late.secret),
    ]));
    p.publish(Arc::new(
        Served::new(current.clone(), acl.clone()).with_history(journal.history()),
    ));
    let r = start(p.clone());

    let named = NamedSecondary::builder(r.port, &k_named)
        .zone(ZONE)
        .start(&tmp);
    let nsd = NsdSecondary::builder(r.port, &k_nsd).zone(ZONE).start(&tmp);
    let late = NamedSecondary::builder(r.port, &k_late)
        .zone(ZONE)
        .start(&tmp);
    for (who, port, proc) in [
        ("named", named.port(), named.proc()),
        ("nsd", nsd.port(), nsd.proc()),
        ("late named", late.port(), late.proc()),
    ] {
        wait_serial(port, ZONE, 1, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{who}: {e}\n{}", proc.log_tail(40)));
    }

    let mut total_ixfr_records = 0usize;
    for _ in 0..rounds {
        let done = model.edit(&mut rng);
        let next = signer.sign(&model);
        let cs = diff(&current, &next);
        let serial = model.serial;
        eprintln!(
            "{label}: serial {serial}: {} → {} records changed ({} in the zone): {}",
            cs.removed.len(),
            cs.added.len(),
            next.record_count(),
            done.join(", ")
        );
        assert!(
            cs.record_count() < next.record_count() / 2,
            "the diff should be small with deterministic signatures"
        );
        total_ixfr_records += cs.record_count();
        // journal before publish and NOTIFY
        journal
            .append(&cs)
            .unwrap_or_else(|e| panic!("append: {e}"));
        // this test keeps its "snapshot" (`current`) at every version: move the journal's pin
        // there, so that compaction may drop everything older
        journal.set_keep_from(Some(cs.to));
        current = next;
        p.publish(Arc::new(
            Served::new(current.clone(), acl.clone()).with_history(journal.history()),
        ));
        let named_before = ixfr_lines("incremental", &k_named.name);
        let nsd_before = ixfr_lines("incremental", &k_nsd.name);
        notify(&r, &p, named.port(), &k_named);
        notify(&r, &p, nsd.port(), &k_nsd);
        named
            .wait_serial(ZONE, serial, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        nsd.wait_serial(ZONE, serial, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"));
        // both got an incremental IXFR (the log line is written when the transfer is done)
        assert!(
            wait_until(Duration::from_secs(10), || {
                ixfr_lines("incremental", &k_named.name) > named_before
                    && ixfr_lines("incremental", &k_nsd.name) > nsd_before
            }),
            "serial {serial}: no incremental IXFR to both secondaries; our log:\n{}",
            tail(&log_text(), 30)
        );
        let ours = ours_canonical(&current, &tmp.join(format!("ours-{serial}.zone")));
        let f_named = tmp.join(format!("named-{serial}.zone"));
        let f_nsd = tmp.join(format!("nsd-{serial}.zone"));
        assert_same(
            &ours,
            &theirs_canonical(named.port(), &k_named, &f_named),
            "named",
            serial,
        );
        assert_same(
            &ours,
            &theirs_canonical(nsd.port(), &k_nsd, &f_nsd),
            "nsd",
            serial,
        );
        ldns_verify_zone(&f_named).unwrap_or_else(|e| panic!("serial {serial}: {e}"));
    }
    eprintln!("{label}: {total_ixfr_records} records in {rounds} incremental transfers");
    assert_eq!(
        ixfr_lines("axfr-style", &k_named.name) + ixfr_lines("axfr-style", &k_nsd.name),
        0,
        "nobody who follows every serial needs a full transfer"
    );
    // named logs the IXFR it received
    let nlog = named.proc().log();
    assert!(
        nlog.contains("Transfer status: success"),
        "{}",
        named.proc().log_tail(40)
    );

    // the late secondary is at serial 1, which the journal (4 entries) no longer covers
    assert!(journal.since(1).is_none());
    notify(&r, &p, late.port(), &k_late);
    late.wait_serial(ZONE, model.serial, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        wait_until(Duration::from_secs(10), || ixfr_lines(
            "axfr-style",
            &k_late.name
        ) >= 1),
        "the late secondary should get an AXFR-style IXFR answer; our log:\n{}",
        tail(&log_text(), 30)
    );
    let ours = ours_canonical(&current, &tmp.join("ours-final.zone"));
    let f_late = tmp.join("late-final.zone");
    assert_same(
        &ours,
        &theirs_canonical(late.port(), &k_late, &f_late),
        "late named",
        model.serial,
    );
    // and every copy passes the three validators
    verify_all(ZONE, &f_late);
    let last = model.serial;
    verify_all(ZONE, &tmp.join(format!("named-{last}.zone")));
    verify_all(ZONE, &tmp.join(format!("nsd-{last}.zone")));

    // a restart: the journal reopens with the same history and the snapshot is the last version
    drop(journal);
    let mut journal = Journal::open(&jdir, &name("example.test."), limits)
        .unwrap_or_else(|e| panic!("journal: {e}"));
    assert_eq!(journal.last_serial(), Some(last));
    let recovered = journal
        .recover(current.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recovered.serial(), Some(last));
    assert_eq!(journal.len(), 4.min(rounds as usize));
}

#[test]
fn named_and_nsd_follow_by_ixfr_nsec() {
    run_rounds("ixfr-nsec", Denial::Nsec, 12);
}

#[test]
fn named_and_nsd_follow_by_ixfr_nsec3_opt_out() {
    run_rounds(
        "ixfr-nsec3",
        Denial::Nsec3 {
            iterations: 0,
            salt: Vec::new(),
            opt_out: true,
        },
        12,
    );
}
