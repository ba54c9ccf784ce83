//! Issue 4 end to end: a one-record change at a real hidden primary (knotd) reaches a BIND
//! named and an NSD secondary as a small incremental IXFR from `signet serve` (incremental
//! signing keeps every unchanged signature; the journal holds the diff); a kill -9 of signet and a
//! restart keep the journal, and the next change is still incremental.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.net";

fn zone_text(serial: u32, extra: &str) -> String {
    let mut s = format!(
        "$TTL 300\n$ORIGIN example.net.\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    );
    for i in 0..300 {
        s.push_str(&format!("host{i} A 198.51.100.{}\n", i % 250 + 1));
    }
    s.push_str(extra);
    s
}

fn start_signet(dir: &TempDir, conf: &std::path::Path, name: &str) -> Proc {
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(conf)
        .env("SIGNET_LOG", "signet=debug");
    Proc::spawn(name, cmd, dir.path())
}

/// The number of records of the last incremental IXFR signet sent to `key`, from its log.
fn last_incremental(log: &str) -> Option<usize> {
    log.lines()
        .rev()
        .filter(|l| l.contains("IXFR out") && l.contains("incremental"))
        .find_map(|l| {
            let i = l.find("records=")?;
            l[i + 8..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
}

#[test]
fn one_record_change_reaches_secondaries_as_small_ixfr() {
    require!("knotd", "knotc", "named", "nsd", "dig", "ldns-verify-zone");
    let dir = TempDir::new("ixfr-e2e");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let nport = free_port();
    let dport = free_port();
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(1, ""))
        .port(kport)
        .notify(port)
        .start(&dir);
    let conf = dir.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"
{tsig}
[keystore.files]
backend = "files"
directory = "{keys}"
[policy.p]
keys = [{{ role = "ksk", algorithm = "ecdsap256sha256" }}, {{ role = "zsk", algorithm = "ecdsap256sha256" }}]
nsec3 = {{ iterations = 0, salt-length = 0, opt-out = false }}
[[zone]]
name = "{ZONE}"
policy = "p"
primaries = ["127.0.0.1:{kport}"]
transfer-tsig = "{kn}"
allow-transfer = ["key:{kn}"]
notify = ["127.0.0.1:{nport}", "127.0.0.1:{dport}"]
"#,
            state = dir.join("state").display(),
            keys = dir.join("keys").display(),
            tsig = key.signet_toml(),
            kn = key.name,
        ),
    );
    let signet = start_signet(&dir, &conf, "signet");
    wait_until(Duration::from_secs(30), || soa_serial(port, ZONE).is_some());
    let s1 = soa_serial(port, ZONE).unwrap();
    let named = NamedSecondary::builder(port, &key)
        .zone(ZONE)
        .port(nport)
        .start(&dir);
    let nsd = NsdSecondary::builder(port, &key)
        .zone(ZONE)
        .port(dport)
        .start(&dir);
    named
        .wait_serial(ZONE, s1, Duration::from_secs(30))
        .unwrap();
    nsd.wait_serial(ZONE, s1, Duration::from_secs(30)).unwrap();

    // one record added upstream
    knot.update_zone(ZONE, &zone_text(2, "new A 192.0.2.77\n"))
        .unwrap();
    let mut s2 = s1;
    wait_until(Duration::from_secs(30), || {
        s2 = soa_serial(port, ZONE).unwrap_or(s1);
        s2 != s1
    });
    assert_ne!(s2, s1, "signet never picked up the change");
    named
        .wait_serial(ZONE, s2, Duration::from_secs(30))
        .unwrap();
    nsd.wait_serial(ZONE, s2, Duration::from_secs(30)).unwrap();
    let n = last_incremental(&signet.log())
        .unwrap_or_else(|| panic!("no incremental IXFR out:\n{}", signet.log_tail(40)));
    // the new A + its RRSIG, the NSEC3 records around it (+ RRSIGs), SOA twice + RRSIGs
    eprintln!("one-record change: incremental IXFR of {n} records");
    assert!(n <= 20, "a one-record change made an IXFR of {n} records");
    for (who, text) in [("named", named.axfr(ZONE)), ("nsd", nsd.axfr(ZONE))] {
        let f = dir.join(format!("{who}.zone"));
        axfr_to_file(&text, &f);
        let ours = dir.join("ours.zone");
        axfr_to_file(&axfr(port, ZONE, Some(&key)), &ours);
        assert_eq!(
            canonical_zone(ZONE, &f).unwrap(),
            canonical_zone(ZONE, &ours).unwrap(),
            "{who} differs"
        );
        ldns_verify_zone(&f).unwrap();
    }

    // kill -9, restart: the journal survives and the next change is still incremental
    signet.signal("KILL");
    drop(signet);
    let again = start_signet(&dir, &conf, "signet-2");
    wait_serial(port, ZONE, s2, Duration::from_secs(10)).unwrap();
    knot.update_zone(
        ZONE,
        &zone_text(3, "new A 192.0.2.77\nnewer A 192.0.2.78\n"),
    )
    .unwrap();
    let mut s3 = s2;
    wait_until(Duration::from_secs(30), || {
        s3 = soa_serial(port, ZONE).unwrap_or(s2);
        s3 != s2
    });
    named
        .wait_serial(ZONE, s3, Duration::from_secs(30))
        .unwrap();
    let n = last_incremental(&again.log())
        .unwrap_or_else(|| panic!("no incremental IXFR after restart:\n{}", again.log_tail(40)));
    assert!(n <= 20, "{n} records");
}

/// Knot's `ixfr/knot_bind` idiom through signet: a zone, then rounds of random upstream edits
/// (adds, deletes, changes, delegations that come and go, names moving in and out of empty
/// non-terminals); after every round named's and NSD's copies equal signet's, signet sent them
/// incremental IXFR, and the copies validate.
fn random_rounds(nsec3: &str, label: &str) {
    require!(
        "knotd",
        "knotc",
        "named",
        "nsd",
        "dig",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let dir = TempDir::new(label);
    let key = TsigKey::generate("xfr-key");
    let (port, kport, nport, dport) = (free_port(), free_port(), free_port(), free_port());
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &random_zone(1, 0))
        .port(kport)
        .notify(port)
        .start(&dir);
    let conf = dir.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"
{tsig}
[keystore.files]
backend = "files"
directory = "{keys}"
[policy.p]
keys = [{{ role = "ksk", algorithm = "ed25519" }}, {{ role = "zsk", algorithm = "ed25519" }}]
{nsec3}
[[zone]]
name = "{ZONE}"
policy = "p"
primaries = ["127.0.0.1:{kport}"]
transfer-tsig = "{kn}"
allow-transfer = ["key:{kn}"]
notify = ["127.0.0.1:{nport}", "127.0.0.1:{dport}"]
"#,
            state = dir.join("state").display(),
            keys = dir.join("keys").display(),
            tsig = key.signet_toml(),
            kn = key.name,
        ),
    );
    let signet = start_signet(&dir, &conf, "signet");
    wait_until(Duration::from_secs(30), || soa_serial(port, ZONE).is_some());
    let mut serial = soa_serial(port, ZONE).unwrap();
    let named = NamedSecondary::builder(port, &key)
        .zone(ZONE)
        .port(nport)
        .start(&dir);
    let nsd = NsdSecondary::builder(port, &key)
        .zone(ZONE)
        .port(dport)
        .start(&dir);
    named
        .wait_serial(ZONE, serial, Duration::from_secs(30))
        .unwrap();
    nsd.wait_serial(ZONE, serial, Duration::from_secs(30))
        .unwrap();
    // versions signed by the diff-driven path (signer::delta), from the log
    let deltas = |log: &str| {
        log.lines()
            .filter(|l| l.contains("signed the change"))
            .count()
    };
    for round in 1..=6u32 {
        let before = signet
            .log()
            .lines()
            .filter(|l| l.contains("IXFR out") && l.contains("incremental"))
            .count();
        let deltas_before = deltas(&signet.log());
        knot.update_zone(ZONE, &random_zone(1 + round, round))
            .unwrap();
        let old = serial;
        wait_until(Duration::from_secs(30), || {
            serial = soa_serial(port, ZONE).unwrap_or(old);
            serial != old
        });
        assert_ne!(serial, old, "round {round}: no new serial");
        named
            .wait_serial(ZONE, serial, Duration::from_secs(30))
            .unwrap();
        nsd.wait_serial(ZONE, serial, Duration::from_secs(30))
            .unwrap();
        let after = signet
            .log()
            .lines()
            .filter(|l| l.contains("IXFR out") && l.contains("incremental"))
            .count();
        assert!(
            after >= before + 2,
            "round {round}: not an incremental IXFR to both secondaries:\n{}",
            signet.log_tail(20)
        );
        // an upstream IXFR is signed by the delta, not by a walk of the zone
        assert!(
            deltas(&signet.log()) > deltas_before,
            "round {round}: the upstream change was not signed by the diff-driven path:\n{}",
            signet.log_tail(20)
        );
        let ours = dir.join(format!("ours{round}.zone"));
        axfr_to_file(&axfr(port, ZONE, Some(&key)), &ours);
        let want = canonical_zone(ZONE, &ours).unwrap();
        for (who, text) in [("named", named.axfr(ZONE)), ("nsd", nsd.axfr(ZONE))] {
            let f = dir.join(format!("{who}{round}.zone"));
            axfr_to_file(&text, &f);
            assert_eq!(
                canonical_zone(ZONE, &f).unwrap(),
                want,
                "round {round}: {who} differs"
            );
        }
        verify_all(ZONE, &ours);
    }
}

/// A zone with hosts that come and go per round, delegations (with and without DS) that come
/// and go, names below empty non-terminals that appear and vanish, and changed data; each
/// round touches about a tenth of the names (a realistic edit, small enough for IXFR).
fn random_zone(serial: u32, round: u32) -> String {
    let mut s = format!(
        "$TTL 300\n$ORIGIN example.net.\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n"
    );
    let h = |a: u64, b: u64| {
        let mut x =
            a.wrapping_mul(0x9E3779B97F4A7C15) ^ b.wrapping_mul(0x2545F4914F6CDD1D) ^ 0x1234567;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..80u64 {
        // about one name in ten is touched by a round
        let touched = round > 0 && h(i, round as u64) % 10 == 0;
        let present = !touched || h(i, round as u64 + 1000) % 2 == 0;
        if !present {
            continue;
        }
        let v = if touched { round as u64 } else { 0 };
        match h(i, 0) % 5 {
            0 => s.push_str(&format!("h{i} A 198.51.100.{}\nh{i} TXT \"v{v}\"\n", i + 1)),
            1 => s.push_str(&format!("d{i} NS ns.d{i}\nns.d{i} A 192.0.2.{}\n", i + 10)),
            2 => s.push_str(&format!(
                "s{i} NS ns.example.com.\ns{i} DS {} 13 2 {:064X}\n",
                1000 + i,
                i * 7919 + v
            )),
            3 => s.push_str(&format!("x.y{i}.ent A 192.0.2.{}\n", i + 1)),
            _ => s.push_str(&format!("h{i} A 198.51.100.{}\n", (i + v) % 250 + 1)),
        }
    }
    s
}

#[test]
fn random_rounds_nsec() {
    random_rounds("", "ixfr-rounds-nsec");
}

#[test]
fn random_rounds_nsec3_opt_out() {
    random_rounds(
        "nsec3 = { iterations = 0, salt-length = 0, opt-out = true }",
        "ixfr-rounds-nsec3",
    );
}
