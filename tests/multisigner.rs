//! Multi-signer (issue 7): RFC 2136 UPDATE of the apex overlay with the real `nsupdate`, behind
//! a real knotd hidden primary.
//!
//! * Refused UPDATEs get the exact RCODE and change nothing (same serial, same DNSKEY set):
//!   no TSIG, a known key not in `update.keys`, an unknown key, a non-apex name, a type not in
//!   `update.types`, each unmet prerequisite kind, above the foreign-key cap, a key-tag
//!   collision with an own key, a foreign algorithm.
//! * An injected foreign ZSK (made by dnssec-keygen) and the CDS/CDNSKEY of a foreign KSK
//!   appear in the served apex, the DNSKEY RRset is signed by signet's KSK only, and the AXFR
//!   passes ldns-verify-zone, kzonecheck and dnssec-verify; `signet keys` lists the foreign key
//!   with who injected it.
//! * They survive an upstream change (IXFR from knotd), a ZSK rollover, kill -9 + restart, and
//!   a later upstream change after the restart (so they come from overlay.json, not only from
//!   the stored signed copy); deletion per record and per RRset removes them again.

mod common;
mod multisigner_support;

use common::*;
use multisigner_support::*;

const ZONE: &str = "example.test";

fn zone_text(serial: u32, extra: &str) -> String {
    format!(
        "$TTL 300\n$ORIGIN {ZONE}.\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.2\n{extra}\n"
    )
}

fn add(rtype: &str, rdata: &str) -> String {
    format!("update add {ZONE}. 60 IN {rtype} {rdata}")
}

#[test]
fn update_refusals_injection_and_survival() {
    require!(
        "knotd",
        "knotc",
        "nsupdate",
        "dig",
        "dnssec-keygen",
        "dnssec-dsfromkey",
        "ldns-verify-zone",
        "kzonecheck",
        "dnssec-verify"
    );
    let tmp = TempDir::new("ms-update");
    let xfr = TsigKey::generate("xfr-key");
    let ctl = TsigKey::generate("ctl");
    let stranger = TsigKey::generate("stranger");
    let sport = free_port();
    let knot = KnotPrimary::builder(&xfr)
        .zone(ZONE, &zone_text(1, ""))
        .notify(sport)
        .start(&tmp);
    let mut s = Signet::start(
        &tmp,
        "signet",
        sport,
        ZONE,
        &[&xfr, &ctl],
        &format!(
            "primaries = [\"127.0.0.1:{}\"]\ntransfer-tsig = \"xfr-key\"\nallow-transfer = [\"key:xfr-key\"]\n\
             update = {{ keys = [\"ctl\"], types = [\"DNSKEY\", \"CDS\", \"CDNSKEY\", \"CSYNC\"] }}\n",
            knot.port()
        ),
    );
    let s0 = s.serial_change(ZONE, None);
    let d0 = rrset(s.port, ZONE, "DNSKEY");
    assert_eq!(d0.len(), 2, "KSK + ZSK: {d0:?}");
    let own_ksk = d0.iter().find(|k| k.starts_with("257 ")).unwrap().clone();
    let own_zsk = d0.iter().find(|k| k.starts_with("256 ")).unwrap().clone();
    let ksk_tag = tag_of(&own_ksk);

    // ---- refusals: exact RCODE, nothing changed
    let fz = foreign_key(&tmp.join("foreign"), ZONE, false);
    let fk = foreign_key(&tmp.join("foreign"), ZONE, true);
    let good = vec![add("DNSKEY", &fz.dnskey)];
    nsupdate(s.port, ZONE, None, &good).assert_failed("REFUSED", "no TSIG");
    nsupdate(s.port, ZONE, Some(&xfr), &good).assert_failed("REFUSED", "key not in update.keys");
    let r = nsupdate(s.port, ZONE, Some(&stranger), &good);
    assert!(
        !r.ok && r.text.contains("NOTAUTH"),
        "unknown key: expected NOTAUTH (BADKEY):\n{}",
        r.text
    );
    nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[format!("update add www.{ZONE}. 60 IN DNSKEY {}", fz.dnskey)],
    )
    .assert_failed("REFUSED", "non-apex name");
    nsupdate(s.port, ZONE, Some(&ctl), &[add("A", "192.0.2.9")]).assert_failed("REFUSED", "type A");
    nsupdate(s.port, ZONE, Some(&ctl), &[add("NS", "ns9.example.net.")])
        .assert_failed("REFUSED", "NS not enabled");
    let with_prereq = |p: &str| {
        let mut v = vec![p.to_string()];
        v.extend(good.iter().cloned());
        v
    };
    for (p, rc) in [
        (format!("prereq yxdomain nope.{ZONE}."), "NXDOMAIN"),
        (format!("prereq nxdomain www.{ZONE}."), "YXDOMAIN"),
        (format!("prereq yxrrset {ZONE}. CSYNC"), "NXRRSET"),
        (format!("prereq nxrrset {ZONE}. DNSKEY"), "YXRRSET"),
        (
            format!("prereq yxrrset www.{ZONE}. A 192.0.2.99"),
            "NXRRSET",
        ),
    ] {
        nsupdate(s.port, ZONE, Some(&ctl), &with_prereq(&p)).assert_failed(rc, &p);
    }
    let nine: Vec<String> = (0..9).map(|_| add("DNSKEY", &random_zsk())).collect();
    nsupdate(s.port, ZONE, Some(&ctl), &nine).assert_failed("REFUSED", "above MAX_FOREIGN_KEYS");
    nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[add("DNSKEY", &colliding_key(&own_zsk))],
    )
    .assert_failed("REFUSED", "tag collision with the own ZSK");
    // all or nothing: a good record beside a bad one
    nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[
            add("DNSKEY", &fz.dnskey),
            add("DNSKEY", &colliding_key(&own_ksk)),
        ],
    )
    .assert_failed("REFUSED", "collision with the own KSK after a good record");
    let ed = format!("256 3 15 {}", data_encoding::BASE64.encode(&[7u8; 32]));
    nsupdate(s.port, ZONE, Some(&ctl), &[add("DNSKEY", &ed)])
        .assert_failed("REFUSED", "other algorithm");
    let other = foreign_key(&tmp.join("foreign"), ZONE, true);
    nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[add("CDS", &fk.ds), add("CDNSKEY", &other.dnskey)],
    )
    .assert_failed("REFUSED", "CDS and CDNSKEY disagree");
    assert_eq!(
        soa_serial(s.port, ZONE),
        Some(s0),
        "a refused UPDATE changed the serial"
    );
    assert_eq!(rrset(s.port, ZONE, "DNSKEY"), d0);
    assert!(!s.dir.join("state/zones").read_dir().unwrap().any(|e| {
        let p = e.unwrap().path().join("overlay.json");
        p.exists()
    }));

    // ---- injection: foreign ZSK, CDS + CDNSKEY of the foreign KSK, with a met prerequisite
    let inject = vec![
        format!("prereq yxrrset {ZONE}. DNSKEY"),
        format!("prereq nxrrset {ZONE}. CSYNC"),
        add("DNSKEY", &fz.dnskey),
        add("CDS", &fk.ds),
        add("CDNSKEY", &fk.dnskey),
    ];
    nsupdate(s.port, ZONE, Some(&ctl), &inject).assert_ok("injection");
    // answered after publication: the new version is already served
    let s1 = soa_serial(s.port, ZONE).unwrap();
    assert_ne!(s1, s0);
    let mut want = d0.clone();
    want.push(fz.dnskey.clone());
    want.sort();
    assert_eq!(rrset(s.port, ZONE, "DNSKEY"), want);
    assert_eq!(signer_tags(s.port, ZONE, "DNSKEY"), vec![ksk_tag]);
    assert!(rrset(s.port, ZONE, "CDS").contains(&fk.ds));
    assert!(rrset(s.port, ZONE, "CDNSKEY").contains(&fk.dnskey));
    verify_axfr(s.port, ZONE, &xfr, &tmp.join("after-inject.zone"), true);
    // the same UPDATE again changes nothing (no new serial)
    let again = nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[add("DNSKEY", &fz.dnskey), add("DNSKEY", &own_zsk)],
    );
    again.assert_ok("repeat");
    assert_eq!(soa_serial(s.port, ZONE), Some(s1));
    // the controller's reads: TSIG-signed queries over TCP, answered signed
    for rtype in ["DNSKEY", "CDS", "CDNSKEY", "NS", "CSYNC"] {
        let out = dig(&[
            "@127.0.0.1",
            "-p",
            &s.port.to_string(),
            "+tcp",
            "+norec",
            "-y",
            &ctl.dig_arg(),
            ZONE,
            rtype,
        ]);
        assert!(
            out.contains("status: NOERROR")
                && out.contains("ctl.\t\t\t0\tANY\tTSIG")
                && !out.contains("tsig verify failure")
                && !out.contains("Couldn't verify"),
            "{rtype} over TCP with TSIG:\n{out}"
        );
        if rtype == "DNSKEY" {
            assert!(
                out.replace(' ', "").contains(&fz.dnskey.replace(' ', "")),
                "{out}"
            );
        }
    }
    let keys = s.ctl(&["keys", ZONE, "--json"]);
    assert!(keys.ok(), "{keys}");
    assert!(
        keys.stdout.contains("\"foreign\"") && keys.stdout.contains("ctl."),
        "signet keys does not list the foreign key:\n{}",
        keys.stdout
    );
    assert!(
        keys.stdout.contains(&fz.tag.to_string()),
        "foreign tag {} missing:\n{}",
        fz.tag,
        keys.stdout
    );

    // ---- survives an upstream change
    knot.update_zone(ZONE, &zone_text(2, "new A 192.0.2.7"))
        .unwrap();
    s.wait_rrset(&format!("new.{ZONE}"), "A", |v| v == ["192.0.2.7"]);
    assert!(rrset(s.port, ZONE, "DNSKEY").contains(&fz.dnskey));
    assert!(rrset(s.port, ZONE, "CDS").contains(&fk.ds));
    // ... and never leaks into the unsigned copy
    let unsigned = read_file(&s.dir.join(format!("state/zones/{ZONE}/unsigned.zone")));
    assert!(
        !unsigned.contains("DNSKEY") && !unsigned.contains("CDS"),
        "{unsigned}"
    );

    // ---- survives an upstream AXFR (`retransfer` forces one; the zone is signed again)
    let r = s.ctl(&["retransfer", ZONE]);
    assert!(r.ok() && r.stdout.contains("AXFR"), "retransfer: {r}");
    let s2 = soa_serial(s.port, ZONE).unwrap();
    assert!(rrset(s.port, ZONE, "DNSKEY").contains(&fz.dnskey));
    assert!(rrset(s.port, ZONE, "CDS").contains(&fk.ds));

    // ---- survives a ZSK rollover
    let r = s.ctl(&["rollover", ZONE, "--role", "zsk"]);
    assert!(r.ok(), "rollover: {r}");
    s.serial_change(ZONE, Some(s2));
    let d3 = rrset(s.port, ZONE, "DNSKEY");
    assert_eq!(d3.len(), 4, "old ZSK, new ZSK, KSK, foreign ZSK: {d3:?}");
    assert!(d3.contains(&fz.dnskey));
    verify_axfr(s.port, ZONE, &xfr, &tmp.join("after-rollover.zone"), true);

    // ---- survives kill -9 and restart, and the next upstream version
    assert!(s.proc.signal("KILL"));
    s.restart("signet-restarted");
    let _ = s.serial_change(ZONE, None);
    assert!(rrset(s.port, ZONE, "DNSKEY").contains(&fz.dnskey));
    knot.update_zone(ZONE, &zone_text(3, "newer A 192.0.2.8"))
        .unwrap();
    s.wait_rrset(&format!("newer.{ZONE}"), "A", |v| v == ["192.0.2.8"]);
    assert!(rrset(s.port, ZONE, "DNSKEY").contains(&fz.dnskey));
    assert!(rrset(s.port, ZONE, "CDNSKEY").contains(&fk.dnskey));
    verify_axfr(s.port, ZONE, &xfr, &tmp.join("after-restart.zone"), true);

    // ---- deletion: one record, then the RRsets
    nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[format!("update delete {ZONE}. DNSKEY {}", fz.dnskey)],
    )
    .assert_ok("delete one DNSKEY");
    let d5 = rrset(s.port, ZONE, "DNSKEY");
    assert!(!d5.contains(&fz.dnskey), "{d5:?}");
    assert_eq!(d5.len(), 3, "own keys stay: {d5:?}");
    nsupdate(
        s.port,
        ZONE,
        Some(&ctl),
        &[
            format!("update delete {ZONE}. CDS"),
            format!("update delete {ZONE}. CDNSKEY"),
        ],
    )
    .assert_ok("delete the CDS/CDNSKEY RRsets");
    assert!(!rrset(s.port, ZONE, "CDS").contains(&fk.ds));
    assert!(!rrset(s.port, ZONE, "CDNSKEY").contains(&fk.dnskey));
    verify_axfr(s.port, ZONE, &xfr, &tmp.join("after-delete.zone"), false);
    let keys = s.ctl(&["keys", ZONE, "--json"]);
    assert!(!keys.stdout.contains("\"foreign\""), "{}", keys.stdout);
}

/// A burst of UPDATEs (sent at once over UDP, more than `UPDATE_QUEUE`) while a client keeps
/// querying: every UPDATE gets an answer (NOERROR, or SERVFAIL when the zone's queue is full),
/// queries keep being answered quickly, and the served CSYNC RRset holds exactly the records of
/// the UPDATEs answered NOERROR (all or nothing, none lost, none applied behind a SERVFAIL).
#[test]
fn update_burst_does_not_starve_queries() {
    use signet::dns::message::{opcode, Header, MessageWriter, Section};
    use signet::dns::name::Name;
    use std::net::UdpSocket;
    use std::time::{Duration, Instant};
    require!("dig");
    const N: u16 = 48;
    let tmp = TempDir::new("ms-burst");
    let ctl = TsigKey::generate("ctl");
    let zf = tmp.write("zone.db", zone_text(1, ""));
    let port = free_port();
    let s = Signet::start(
        &tmp,
        "signet",
        port,
        ZONE,
        &[&ctl],
        &format!(
            "file = \"{}\"\nupdate = {{ keys = [\"ctl\"], types = [\"CSYNC\"] }}\n",
            zf.display()
        ),
    );
    s.serial_change(ZONE, None);
    let key = signet::auth::Key::new(
        Name::parse("ctl.", None).unwrap(),
        signet::config::TsigAlgorithm::HmacSha256,
        &data_encoding::BASE64.decode(ctl.secret.as_bytes()).unwrap(),
    );
    let origin = Name::parse(&format!("{ZONE}."), None).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let msgs: Vec<Vec<u8>> = (1..=N)
        .map(|i| {
            let mut h = Header { id: i, flags: 0 };
            h.set_opcode(opcode::UPDATE);
            let mut w = MessageWriter::new(h, 65535);
            w.question(&origin, 6, 1).unwrap();
            // CSYNC serial i, flags 0, type bitmap {A}
            let mut rd = u32::from(i).to_be_bytes().to_vec();
            rd.extend_from_slice(&[0, 0, 0, 1, 0x40]);
            w.record(Section::Authority, &origin, 62, 1, 60, &rd)
                .unwrap();
            let mut m = w.finish();
            signet::auth::tsig::sign_request(&mut m, &key, now);
            m
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let querier = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let origin = Name::parse(&format!("{ZONE}."), None).unwrap();
            let (mut asked, mut worst, mut lost) = (0u32, Duration::ZERO, 0u32);
            let mut buf = [0u8; 4096];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let q = signet::dns::message::build_query(asked as u16, 0, &origin, 6, None);
                let t = Instant::now();
                sock.send_to(&q, ("127.0.0.1", port)).unwrap();
                match sock.recv(&mut buf) {
                    Ok(_) => worst = worst.max(t.elapsed()),
                    Err(_) => lost += 1,
                }
                asked += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (asked, worst, lost)
        })
    };
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for m in &msgs {
        sock.send_to(m, ("127.0.0.1", port)).unwrap();
    }
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answers = std::collections::BTreeMap::new();
    let mut buf = [0u8; 4096];
    while answers.len() < N as usize {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{} of {N} UPDATEs answered: {e}", answers.len()));
        let m = signet::dns::message::Message::parse(&buf[..n]).unwrap();
        assert!(m.tsig.is_some(), "answer not TSIG-signed");
        answers.insert(m.header.id, m.rcode());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (asked, worst, lost) = querier.join().unwrap();
    let ok: Vec<u16> = answers
        .iter()
        .filter(|(_, rc)| **rc == 0)
        .map(|(id, _)| *id)
        .collect();
    let busy = answers.values().filter(|rc| **rc == 2).count();
    assert!(
        answers.values().all(|rc| *rc == 0 || *rc == 2),
        "{answers:?}"
    );
    assert!(ok.len() >= 8, "too few UPDATEs applied: {answers:?}");
    let mut served: Vec<u16> = rrset(port, ZONE, "CSYNC")
        .iter()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    served.sort();
    assert_eq!(
        served, ok,
        "served CSYNC serials vs UPDATEs answered NOERROR"
    );
    assert_eq!(lost, 0, "queries lost during the burst");
    assert!(
        worst < Duration::from_millis(500),
        "slowest query during the burst: {worst:?}"
    );
    eprintln!(
        "{N} UPDATEs: {} applied, {busy} SERVFAIL (queue full); {asked} queries meanwhile, slowest {worst:?}",
        ok.len()
    );
}
