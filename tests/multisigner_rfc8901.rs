//! RFC 8901 model 2 with two `signet serve` providers (issue 7): each has its own KSK and ZSK
//! and follows the same unsigned upstream (a knotd hidden primary); a controller (this test,
//! driving the real `nsupdate`) runs the "add a signer" and "remove a signer" processes; the
//! parent zone `test.` is signed and served by knotd (automatic signing, DS changed by UPDATE);
//! validating resolvers anchored at the parent's KSK check every step:
//!
//! * `unbound-host` (no cache) through each provider alone: a provider that is part of the
//!   signer set validates, one whose KSK has no DS at the parent does not (negative control);
//! * a caching `unbound` whose stub is switched from provider A to provider B with
//!   `unbound-control` after it cached A's DNSKEY RRset: B's answers (signed by B's ZSK)
//!   validate with A's cached DNSKEY set only once B's ZSK is in A's set (the reason for model
//!   2's ZSK exchange); before the exchange the same check is bogus (negative control).
//!
//! Steps: A alone (DS_A) → ZSKs exchanged → CDS/CDNSKEY union on both → DS_B added at the
//! parent → NS of B added on both → DS_A removed, CDS of A withdrawn → ZSK_A removed from B.
//!
//! The second test runs the same processes with **knotd** as the other provider
//! (`dnskey-management: incremental`, research/peers.md §5): signet A and Knot B, then signet
//! leaves and Knot stays.

mod common;
mod multisigner_support;

use common::*;
use multisigner_support::chain::*;
use multisigner_support::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn two_signet_providers_add_and_remove_a_signer() {
    require_chain_peers!();
    let tmp = TempDir::new("ms-8901");
    let xfr = TsigKey::generate("xfr-key");
    let ctl = TsigKey::generate("ctl");
    let (pa, pb) = (free_port(), free_port());
    let upstream = KnotPrimary::builder(&xfr)
        .zone(CHILD, &child_text(1))
        .notify(pa)
        .notify(pb)
        .start(&tmp);
    let parent = KnotParent::start(&tmp, &ctl);
    let zone_extra = format!(
        "primaries = [\"127.0.0.1:{}\"]\ntransfer-tsig = \"xfr-key\"\nallow-transfer = [\"key:xfr-key\"]\n\
         update = {{ keys = [\"ctl\"], types = [\"DNSKEY\", \"CDS\", \"CDNSKEY\", \"NS\"] }}\n",
        upstream.port()
    );
    let a = Signet::start(&tmp, "signet-a", pa, CHILD, &[&xfr, &ctl], &zone_extra);
    let b = Signet::start(&tmp, "signet-b", pb, CHILD, &[&xfr, &ctl], &zone_extra);
    a.serial_change(CHILD, None);
    b.serial_change(CHILD, None);
    let (ksk_a, zsk_a) = zone_keys(pa);
    let (ksk_b, zsk_b) = zone_keys(pb);
    assert_ne!(ksk_a, ksk_b, "each provider has its own keys");
    let (ds_a, ds_b) = (ds_of(&tmp.join("."), &ksk_a), ds_of(&tmp.join("."), &ksk_b));
    let anchor = parent.anchor();
    let pp = parent.port;

    // ---- step 0: A is the only signer; the parent holds DS_A
    parent.set_ds(&[&ds_a], &[]);
    assert_validates(&tmp, "0-a", &anchor, pp, pa);
    assert_bogus(&tmp, "0-b", &anchor, pp, pb);

    // ---- add signer B, 1: ZSK exchange (each signer publishes the other's ZSK)
    // negative control first: without the exchange, B's data does not validate with A's keys
    parent.set_ds(&[&ds_b], &[]);
    assert!(
        cached_a_validates_b(&tmp, "before-exchange", &anchor, pp, pa, pb).is_err(),
        "B's answers validated with A's DNSKEY set before the ZSK exchange: the check proves nothing"
    );
    parent.set_ds(&[], &[&ds_b]);
    nsupdate(
        pa,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {zsk_b}")],
    )
    .assert_ok("ZSK_B into A");
    nsupdate(
        pb,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {zsk_a}")],
    )
    .assert_ok("ZSK_A into B");
    assert_eq!(
        rrset(pa, CHILD, "DNSKEY"),
        sorted(&[&ksk_a, &zsk_a, &zsk_b])
    );
    assert_eq!(
        rrset(pb, CHILD, "DNSKEY"),
        sorted(&[&ksk_b, &zsk_b, &zsk_a])
    );
    assert_eq!(signer_tags(pa, CHILD, "DNSKEY"), vec![tag_of(&ksk_a)]);
    assert_eq!(signer_tags(pb, CHILD, "DNSKEY"), vec![tag_of(&ksk_b)]);
    assert_validates(&tmp, "1-a", &anchor, pp, pa);
    assert_bogus(&tmp, "1-b", &anchor, pp, pb);

    // ---- 2: the CDS/CDNSKEY union on both signers (what a CDS-scanning parent reads)
    for port in [pa, pb] {
        nsupdate(
            port,
            CHILD,
            Some(&ctl),
            &[
                format!("update add {CHILD}. 60 IN CDS {ds_a}"),
                format!("update add {CHILD}. 60 IN CDS {ds_b}"),
                format!("update add {CHILD}. 60 IN CDNSKEY {ksk_a}"),
                format!("update add {CHILD}. 60 IN CDNSKEY {ksk_b}"),
            ],
        )
        .assert_ok("CDS union");
    }
    for port in [pa, pb] {
        let cds = rrset(port, CHILD, "CDS");
        assert!(cds.contains(&ds_a) && cds.contains(&ds_b), "{cds:?}");
        let cdnskey = rrset(port, CHILD, "CDNSKEY");
        assert!(
            cdnskey.contains(&ksk_a) && cdnskey.contains(&ksk_b),
            "{cdnskey:?}"
        );
    }
    assert_eq!(rrset(pa, CHILD, "CDS"), rrset(pb, CHILD, "CDS"));

    // ---- 3: the parent publishes both DS; both providers validate, and mixed caches too
    parent.set_ds(&[&ds_b], &[]);
    assert_validates(&tmp, "3-a", &anchor, pp, pa);
    assert_validates(&tmp, "3-b", &anchor, pp, pb);
    cached_a_validates_b(&tmp, "after-exchange", &anchor, pp, pa, pb)
        .unwrap_or_else(|e| panic!("step 3: {e}"));
    cached_a_validates_b(&tmp, "after-exchange-ba", &anchor, pp, pb, pa)
        .unwrap_or_else(|e| panic!("step 3 (B then A): {e}"));

    // ---- 4: B's name server joins the NS set on both
    for port in [pa, pb] {
        nsupdate(
            port,
            CHILD,
            Some(&ctl),
            &[format!(
                "update add {CHILD}. 60 IN NS ns.provider-b.example."
            )],
        )
        .assert_ok("NS of B");
        let ns = rrset(port, CHILD, "NS");
        assert_eq!(
            ns,
            vec![format!("ns.provider-b.example."), format!("ns1.{CHILD}.")]
        );
    }
    verify_axfr(pa, CHILD, &xfr, &tmp.join("a-both.zone"), true);
    verify_axfr(pb, CHILD, &xfr, &tmp.join("b-both.zone"), true);
    // the upstream changes: both re-sign with the overlay still in place
    upstream
        .update_zone(CHILD, &format!("{}h99 A 198.51.100.99\n", child_text(2)))
        .unwrap();
    a.wait_rrset(&format!("h99.{CHILD}"), "A", |v| !v.is_empty());
    b.wait_rrset(&format!("h99.{CHILD}"), "A", |v| !v.is_empty());
    assert_validates(&tmp, "4-a", &anchor, pp, pa);
    assert_validates(&tmp, "4-b", &anchor, pp, pb);

    // ---- remove signer A: its NS goes, its DS goes (CDS without A first), then its ZSK
    for port in [pa, pb] {
        nsupdate(
            port,
            CHILD,
            Some(&ctl),
            &[
                format!("update delete {CHILD}. CDS {ds_a}"),
                format!("update delete {CHILD}. CDNSKEY {ksk_a}"),
            ],
        )
        .assert_ok("CDS without A");
        assert!(!rrset(port, CHILD, "CDS").contains(&ds_a));
    }
    parent.set_ds(&[], &[&ds_a]);
    assert_validates(&tmp, "5-b", &anchor, pp, pb);
    assert_bogus(&tmp, "5-a", &anchor, pp, pa);
    nsupdate(
        pb,
        CHILD,
        Some(&ctl),
        &[format!("update delete {CHILD}. DNSKEY {zsk_a}")],
    )
    .assert_ok("ZSK_A out of B");
    assert_eq!(rrset(pb, CHILD, "DNSKEY"), sorted(&[&ksk_b, &zsk_b]));
    assert_validates(&tmp, "6-b", &anchor, pp, pb);
    verify_axfr(pb, CHILD, &xfr, &tmp.join("b-alone.zone"), false);
}

/// knotd as a signing provider of the child (its own KSK and ZSK, `dnskey-management:
/// incremental` so that the DNSKEY/CDS/CDNSKEY a controller adds by UPDATE stay), loading the
/// same unsigned content as the upstream from its own file. `cds-cdnskey-publish: always`:
/// with `none`, Knot 3.2 kept the injected CDS of the other signer but dropped the one for its
/// own KSK from the union the controller had sent.
struct KnotSigner {
    proc: Proc,
    port: u16,
}

impl KnotSigner {
    fn start(tmp: &TempDir, ctl: &TsigKey, xfr: &TsigKey) -> KnotSigner {
        let port = free_port();
        let dir = tmp.subdir("knot-signer");
        mkdir(&dir.join("db"));
        write_file(&dir.join("child.zone"), child_text(1));
        let d = dir.display();
        let conf = dir.join("knot.conf");
        write_file(
            &conf,
            format!(
                r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
control:
    listen: "{d}/knot.sock"
key:
  - id: {cn}
    algorithm: {ca}
    secret: {cs}
  - id: {xn}
    algorithm: {xa}
    secret: {xs}
acl:
  - id: upd
    address: 127.0.0.0/8
    key: {cn}
    action: update
  - id: xfr
    address: 127.0.0.0/8
    key: {xn}
    action: transfer
policy:
  - id: ms
    algorithm: ecdsap256sha256
    nsec3: off
    dnskey-ttl: 60
    zone-max-ttl: 60
    dnskey-management: incremental
    delete-delay: 1d
    cds-cdnskey-publish: always
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: {CHILD}
    file: child.zone
    dnssec-signing: on
    dnssec-policy: ms
    acl: [upd, xfr]
"#,
                cn = ctl.name,
                ca = ctl.algorithm,
                cs = ctl.secret,
                xn = xfr.name,
                xa = xfr.algorithm,
                xs = xfr.secret,
            ),
        );
        let check = run(
            Command::new(bin("knotc"))
                .arg("-c")
                .arg(&conf)
                .arg("conf-check"),
            TOOL_TIMEOUT,
        );
        assert!(check.ok(), "signer knot.conf rejected: {check}");
        let mut cmd = Command::new(bin("knotd"));
        cmd.arg("-c").arg(&conf);
        let proc = Proc::spawn("knot-signer", cmd, &dir);
        proc.wait_for_log("server started", START_TIMEOUT)
            .unwrap_or_else(|e| panic!("signer knotd: {e}"));
        assert!(
            wait_until(START_TIMEOUT, || rrset(port, CHILD, "DNSKEY").len() >= 2),
            "knotd does not sign the child: {}",
            proc.log_tail(30)
        );
        KnotSigner { proc, port }
    }
}

#[test]
fn signet_and_knot_providers_add_and_remove_a_signer() {
    require_chain_peers!();
    let tmp = TempDir::new("ms-knot");
    let xfr = TsigKey::generate("xfr-key");
    let ctl = TsigKey::generate("ctl");
    let pa = free_port();
    let upstream = KnotPrimary::builder(&xfr)
        .zone(CHILD, &child_text(1))
        .notify(pa)
        .start(&tmp);
    let parent = KnotParent::start(&tmp, &ctl);
    let a = Signet::start(
        &tmp,
        "signet-a",
        pa,
        CHILD,
        &[&xfr, &ctl],
        &format!(
            "primaries = [\"127.0.0.1:{}\"]\ntransfer-tsig = \"xfr-key\"\nallow-transfer = [\"key:xfr-key\"]\n\
             update = {{ keys = [\"ctl\"], types = [\"DNSKEY\", \"CDS\", \"CDNSKEY\"] }}\n",
            upstream.port()
        ),
    );
    a.serial_change(CHILD, None);
    let knot = KnotSigner::start(&tmp, &ctl, &xfr);
    let pk = knot.port;
    let (ksk_a, zsk_a) = zone_keys(pa);
    let (ksk_k, zsk_k) = zone_keys(pk);
    let ds_a = ds_of(&tmp.join("."), &ksk_a);
    let ds_k = ds_of(&tmp.join("."), &ksk_k);
    let anchor = parent.anchor();
    let pp = parent.port;

    // signet alone
    parent.set_ds(&[&ds_a], &[]);
    assert_validates(&tmp, "k0-a", &anchor, pp, pa);
    assert_bogus(&tmp, "k0-k", &anchor, pp, pk);

    // add Knot: ZSK exchange in both directions
    nsupdate(
        pa,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {zsk_k}")],
    )
    .assert_ok("Knot's ZSK into signet");
    nsupdate(
        pk,
        CHILD,
        Some(&ctl),
        &[format!("update add {CHILD}. 60 IN DNSKEY {zsk_a}")],
    )
    .assert_ok("signet's ZSK into Knot");
    assert_eq!(
        rrset(pa, CHILD, "DNSKEY"),
        sorted(&[&ksk_a, &zsk_a, &zsk_k])
    );
    let on_knot = wait_until(Duration::from_secs(20), || {
        rrset(pk, CHILD, "DNSKEY") == sorted(&[&ksk_k, &zsk_k, &zsk_a])
    });
    assert!(
        on_knot,
        "Knot's DNSKEY set: {:?}\n{}",
        rrset(pk, CHILD, "DNSKEY"),
        knot.proc.log_tail(20)
    );
    // the CDS/CDNSKEY union on both (injected together: kzonecheck wants them to agree)
    for port in [pa, pk] {
        nsupdate(
            port,
            CHILD,
            Some(&ctl),
            &[
                format!("update add {CHILD}. 60 IN CDS {ds_a}"),
                format!("update add {CHILD}. 60 IN CDS {ds_k}"),
                format!("update add {CHILD}. 60 IN CDNSKEY {ksk_a}"),
                format!("update add {CHILD}. 60 IN CDNSKEY {ksk_k}"),
            ],
        )
        .assert_ok("CDS union");
    }
    let same = wait_until(Duration::from_secs(20), || {
        rrset(pk, CHILD, "CDS") == rrset(pa, CHILD, "CDS")
    });
    assert!(
        same,
        "CDS differ: Knot {:?}, signet {:?}\n{}",
        rrset(pk, CHILD, "CDS"),
        rrset(pa, CHILD, "CDS"),
        knot.proc.log_tail(20)
    );
    parent.set_ds(&[&ds_k], &[]);
    assert_validates(&tmp, "k1-a", &anchor, pp, pa);
    assert_validates(&tmp, "k1-k", &anchor, pp, pk);
    cached_a_validates_b(&tmp, "signet-then-knot", &anchor, pp, pa, pk)
        .unwrap_or_else(|e| panic!("signet's DNSKEY set, Knot's answers: {e}"));
    cached_a_validates_b(&tmp, "knot-then-signet", &anchor, pp, pk, pa)
        .unwrap_or_else(|e| panic!("Knot's DNSKEY set, signet's answers: {e}"));
    verify_axfr(pa, CHILD, &xfr, &tmp.join("signet-both.zone"), true);

    // remove signet: CDS without it on Knot, DS_A gone, then signet's ZSK out of Knot
    nsupdate(
        pk,
        CHILD,
        Some(&ctl),
        &[
            format!("update delete {CHILD}. CDS {ds_a}"),
            format!("update delete {CHILD}. CDNSKEY {ksk_a}"),
        ],
    )
    .assert_ok("Knot's CDS without signet");
    parent.set_ds(&[], &[&ds_a]);
    assert_validates(&tmp, "k2-k", &anchor, pp, pk);
    assert_bogus(&tmp, "k2-a", &anchor, pp, pa);
    nsupdate(
        pk,
        CHILD,
        Some(&ctl),
        &[format!("update delete {CHILD}. DNSKEY {zsk_a}")],
    )
    .assert_ok("signet's ZSK out of Knot");
    assert!(wait_until(Duration::from_secs(20), || rrset(
        pk, CHILD, "DNSKEY"
    ) == sorted(&[
        &ksk_k, &zsk_k
    ])));
    assert_validates(&tmp, "k3-k", &anchor, pp, pk);
}
