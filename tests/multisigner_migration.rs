//! The postfix.org migration (../shared/seeds/000, issue 7): a signed zone moves from an old
//! DNS provider to a new one with its own signing keys, without ever going insecure. The old
//! provider is signet A (KSK + ZSK), the new one signet B (one CSK); both follow the same
//! unsigned upstream (a knotd hidden primary, "zone data imported minus keys and signatures").
//! The parent `test.` is signed and served by knotd; the controller (this test, with the real
//! `nsupdate`) plays the registrar and the operators. The seed's steps:
//!
//! 1. only A is delegated and its DS is at the parent;
//! 2. the old KSK DNSKEY is imported into the new zone (B), the new CSK into the old zone (A);
//! 3. the DS of the new CSK is added at the parent (both DS);
//! 4. the NS set switches to B (upstream zone edit + reload, delegation NS at the parent);
//! 5. the old DS is removed, the old keys leave B, A is stopped.
//!
//! At every step validating resolvers anchored at the parent's KSK are asked: `unbound-host`
//! (no cache) through each provider alone, and a caching `unbound` that first caches one
//! provider's DNSKEY RRset and is then switched to the other (what a resolver sees across the
//! NS switch). Where the seed's order matters the negative control is asserted too: before the
//! CSK import, a resolver holding A's DNSKEY set cannot validate B's answers; a provider whose
//! key has no DS does not validate; and a resolver holding B's DNSKEY set cannot validate A's
//! ZSK-signed answers while B carries only A's KSK (the seed imported just the KSK; this test
//! then imports A's ZSK too). Each provider's AXFR is checked by ldns-verify-zone,
//! dnssec-verify (`-z` for B's CSK) and kzonecheck (not for B while it carries A's KSK, see
//! [`verify_csk_axfr`]) after each change of its DNSKEY set.

mod common;
mod multisigner_support;

use common::*;
use multisigner_support::chain::*;
use multisigner_support::*;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const NS_A: &str = "ns.provider-a.example.";
const NS_B: &str = "ns.provider-b.example.";

/// The unsigned child with the apex NS set `ns`.
fn upstream_text(serial: u32, ns: &str) -> String {
    let text = child_text(serial);
    assert!(text.contains("@ NS ns1\n"));
    text.replace("@ NS ns1\n", &format!("@ NS {ns}\n"))
}

/// The AXFR of B's zone (CSK policy) checked by ldns-verify-zone, `dnssec-verify -z` (BIND 9.18
/// says "Missing ZSK for algorithm" for any single-CSK zone without `-z`, also for one signed by
/// its own `dnssec-signzone -z`) and, unless B carries A's KSK, kzonecheck. kzonecheck 3.2
/// misjudges a DNSKEY set of one signing SEP key plus a second, non-signing SEP key: it says
/// "no valid signature for a record" at the first name, and says the same of the same key set
/// signed by `dnssec-signzone -z` (tried by hand), while ldns-verify-zone and unbound accept it.
fn verify_csk_axfr(port: u16, key: &TsigKey, path: &Path, foreign_ksk: bool) {
    let text = axfr(port, CHILD, Some(key));
    assert!(!axfr_failed(&text), "AXFR failed:\n{text}");
    axfr_to_file(&text, path);
    ldns_verify_zone(path).unwrap_or_else(|e| panic!("ldns-verify-zone: {e}"));
    let out = run(
        Command::new(bin("dnssec-verify"))
            .args(["-z", "-o", CHILD])
            .arg(path),
        TOOL_TIMEOUT,
    );
    assert!(out.ok(), "dnssec-verify -z: {out}");
    if !foreign_ksk {
        kzonecheck(CHILD, path).unwrap_or_else(|e| panic!("kzonecheck: {e}"));
    }
}

/// Negative control through one provider: not validated, and because unbound-host found the
/// answer bogus (not because a tool or server failed).
fn expect_bogus(tmp: &TempDir, step: &str, anchor: &str, parent: u16, child: u16) {
    match validates_via(tmp, step, anchor, parent, child) {
        Ok(()) => panic!("{step}: validated through 127.0.0.1:{child} although it must not"),
        Err(e) => assert!(
            e.contains("BOGUS"),
            "{step}: not validated, but not as bogus either:\n{e}"
        ),
    }
}

/// Negative control with a cache: the first provider's DNSKEY set validated and was cached,
/// and the second provider's first answer is refused (SERVFAIL from the validating unbound).
fn expect_cached_bogus(
    tmp: &TempDir,
    label: &str,
    anchor: &str,
    parent: u16,
    first: u16,
    second: u16,
) {
    match cached_a_validates_b(tmp, label, anchor, parent, first, second) {
        Ok(()) => panic!(
            "{label}: answers of 127.0.0.1:{second} validated with the DNSKEY set cached from \
             127.0.0.1:{first}: the check proves nothing"
        ),
        Err(e) => assert!(
            e.starts_with("h2 from B") && e.contains("status: SERVFAIL"),
            "{label}: failed for another reason than validation:\n{e}"
        ),
    }
}

fn step(t0: Instant, what: &str) {
    eprintln!("[{:>5.1}s] {what}", t0.elapsed().as_secs_f64());
}

#[test]
fn postfix_style_migration_between_two_signers() {
    require_chain_peers!();
    let t0 = Instant::now();
    let tmp = TempDir::new("ms-migrate");
    let xfr = TsigKey::generate("xfr-key");
    let ctl = TsigKey::generate("ctl");
    let (pa, pb) = (free_port(), free_port());
    let upstream = KnotPrimary::builder(&xfr)
        .zone(CHILD, &upstream_text(1, NS_A))
        .notify(pa)
        .notify(pb)
        .start(&tmp);
    let parent = KnotParent::start(&tmp, &ctl);
    let zone_extra = format!(
        "primaries = [\"127.0.0.1:{}\"]\ntransfer-tsig = \"xfr-key\"\nallow-transfer = [\"key:xfr-key\"]\n\
         update = {{ keys = [\"ctl\"], types = [\"DNSKEY\", \"CDS\", \"CDNSKEY\", \"CSYNC\", \"NS\"] }}\n",
        upstream.port()
    );
    let a = Signet::start(&tmp, "signet-a", pa, CHILD, &[&xfr, &ctl], &zone_extra);
    let b = Signet::start_with_keys(&tmp, "signet-b", pb, CHILD, &[&xfr, &ctl], CSK, &zone_extra);
    a.serial_change(CHILD, None);
    b.serial_change(CHILD, None);
    let (ksk_a, zsk_a) = zone_keys(pa);
    let keys_b = rrset(pb, CHILD, "DNSKEY");
    assert_eq!(keys_b.len(), 1, "B has one CSK: {keys_b:?}");
    let csk_b = keys_b[0].clone();
    assert!(csk_b.starts_with("257 "), "B's CSK: {csk_b}");
    assert_eq!(
        signer_tags(pb, &format!("h1.{CHILD}"), "A"),
        vec![tag_of(&csk_b)],
        "B signs data with its CSK"
    );
    assert_eq!(
        signer_tags(pa, &format!("h1.{CHILD}"), "A"),
        vec![tag_of(&zsk_a)],
        "A signs data with its ZSK"
    );
    let ds_a = ds_of(&tmp.join("."), &ksk_a);
    let ds_b = ds_of(&tmp.join("."), &csk_b);
    let anchor = parent.anchor();
    let pp = parent.port;
    step(t0, "setup done");

    // ---- 1: the old provider alone: delegated to A's name server, DS_A at the parent
    parent.set_ns(&[NS_A]);
    parent.set_ds(&[&ds_a], &[]);
    for port in [pa, pb] {
        assert_eq!(rrset(port, CHILD, "NS"), vec![NS_A.to_string()]);
    }
    assert_validates(&tmp, "1-a", &anchor, pp, pa);
    expect_bogus(&tmp, "1-b", &anchor, pp, pb);
    // negative control of the CSK import: even with DS_B present, a resolver that cached A's
    // DNSKEY set and then reaches B cannot validate B's CSK-signed answers
    parent.set_ds(&[&ds_b], &[]);
    expect_cached_bogus(&tmp, "1-cached-a-then-b", &anchor, pp, pa, pb);
    parent.set_ds(&[], &[&ds_b]);
    step(t0, "1: old provider alone");

    // ---- 2: old KSK DNSKEY into the new zone, new CSK into the old zone
    nsupdate(
        pb,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {ksk_a}")],
    )
    .assert_ok("A's KSK into B");
    nsupdate(
        pa,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {csk_b}")],
    )
    .assert_ok("B's CSK into A");
    assert_eq!(
        rrset(pa, CHILD, "DNSKEY"),
        sorted(&[&ksk_a, &zsk_a, &csk_b])
    );
    assert_eq!(rrset(pb, CHILD, "DNSKEY"), sorted(&[&csk_b, &ksk_a]));
    // each signs its DNSKEY set with its own key only: the imported keys are published, not used
    assert_eq!(signer_tags(pa, CHILD, "DNSKEY"), vec![tag_of(&ksk_a)]);
    assert_eq!(signer_tags(pb, CHILD, "DNSKEY"), vec![tag_of(&csk_b)]);
    verify_axfr(pa, CHILD, &xfr, &tmp.join("a-2.zone"), false);
    verify_csk_axfr(pb, &xfr, &tmp.join("b-2.zone"), true);
    assert_validates(&tmp, "2-a", &anchor, pp, pa);
    // B's DNSKEY set is signed by the CSK only, and the parent has no DS for it yet
    expect_bogus(&tmp, "2-b", &anchor, pp, pb);
    // the point of the import: a resolver with A's DNSKEY set (validated through DS_A) already
    // validates B's answers, before the parent knows B
    cached_a_validates_b(&tmp, "2-cached-a-then-b", &anchor, pp, pa, pb)
        .unwrap_or_else(|e| panic!("step 2, A's DNSKEY set, B's answers: {e}"));
    step(t0, "2: keys exchanged");

    // ---- 3: both DS at the parent
    parent.set_ds(&[&ds_b], &[]);
    assert_validates(&tmp, "3-a", &anchor, pp, pa);
    assert_validates(&tmp, "3-b", &anchor, pp, pb);
    cached_a_validates_b(&tmp, "3-cached-a-then-b", &anchor, pp, pa, pb)
        .unwrap_or_else(|e| panic!("step 3, A's DNSKEY set, B's answers: {e}"));
    // the seed imported only the old KSK into the new zone: a resolver holding B's DNSKEY set
    // that still asks A (old NS cached) cannot validate A's ZSK-signed answers ...
    expect_cached_bogus(&tmp, "3-cached-b-then-a", &anchor, pp, pb, pa);
    // ... until the old ZSK is imported too ("old signer's keys into the new one")
    nsupdate(
        pb,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {zsk_a}")],
    )
    .assert_ok("A's ZSK into B");
    assert_eq!(
        rrset(pb, CHILD, "DNSKEY"),
        sorted(&[&csk_b, &ksk_a, &zsk_a])
    );
    cached_a_validates_b(&tmp, "3-cached-b-then-a-zsk", &anchor, pp, pb, pa)
        .unwrap_or_else(|e| panic!("step 3, B's DNSKEY set with A's ZSK, A's answers: {e}"));
    verify_csk_axfr(pb, &xfr, &tmp.join("b-3.zone"), true);
    step(t0, "3: both DS");

    // ---- 4: NS switch: the upstream zone now names B's server, then the delegation moves
    upstream
        .update_zone(CHILD, &upstream_text(2, NS_B))
        .unwrap_or_else(|e| panic!("upstream reload: {e}"));
    a.wait_rrset(CHILD, "NS", |v| v == [NS_B.to_string()]);
    b.wait_rrset(CHILD, "NS", |v| v == [NS_B.to_string()]);
    // the injected keys survived the new upstream version
    assert_eq!(
        rrset(pa, CHILD, "DNSKEY"),
        sorted(&[&ksk_a, &zsk_a, &csk_b])
    );
    assert_eq!(
        rrset(pb, CHILD, "DNSKEY"),
        sorted(&[&csk_b, &ksk_a, &zsk_a])
    );
    parent.set_ns(&[NS_B]);
    assert_validates(&tmp, "4-a", &anchor, pp, pa);
    assert_validates(&tmp, "4-b", &anchor, pp, pb);
    // a resolver that learnt the zone from A follows the new delegation to B
    cached_a_validates_b(&tmp, "4-cached-a-then-b", &anchor, pp, pa, pb)
        .unwrap_or_else(|e| panic!("step 4, A's DNSKEY set, B's answers: {e}"));
    verify_axfr(pa, CHILD, &xfr, &tmp.join("a-4.zone"), false);
    verify_csk_axfr(pb, &xfr, &tmp.join("b-4.zone"), true);
    step(t0, "4: NS switched");

    // ---- 5: old removed: DS_A withdrawn, A's keys out of B, A stopped
    parent.set_ds(&[], &[&ds_a]);
    assert_validates(&tmp, "5-b", &anchor, pp, pb);
    // A's DNSKEY set is signed by KSK_A only, which has no DS any more
    expect_bogus(&tmp, "5-a", &anchor, pp, pa);
    nsupdate(
        pb,
        CHILD,
        Some(&ctl),
        &[
            format!("update delete {CHILD}. DNSKEY {ksk_a}"),
            format!("update delete {CHILD}. DNSKEY {zsk_a}"),
        ],
    )
    .assert_ok("A's keys out of B");
    assert_eq!(rrset(pb, CHILD, "DNSKEY"), vec![csk_b.clone()]);
    let _ = a.proc.stop();
    assert!(
        soa_serial(pa, CHILD).is_none(),
        "A still answers after it was stopped"
    );
    assert_validates(&tmp, "5-b-alone", &anchor, pp, pb);
    verify_csk_axfr(pb, &xfr, &tmp.join("b-5.zone"), false);
    // B carries on by itself: a new upstream version is signed and validates
    upstream
        .update_zone(
            CHILD,
            &format!("{}h99 A 198.51.100.99\n", upstream_text(3, NS_B)),
        )
        .unwrap_or_else(|e| panic!("upstream reload: {e}"));
    b.wait_rrset(&format!("h99.{CHILD}"), "A", |v| !v.is_empty());
    assert_eq!(rrset(pb, CHILD, "DNSKEY"), vec![csk_b.clone()]);
    assert_validates(&tmp, "5-b-new-version", &anchor, pp, pb);
    step(t0, "5: old provider removed");
}
