//! Proves the real-peer test harness (tests/common) works, without signet: keys and signatures
//! from BIND's dnssec-keygen/dnssec-signzone, served by named and Knot, pulled by named and NSD,
//! checked by the three zone validators and delv. Each checker is also shown to FAIL on a broken
//! zone, so a green signet test means something.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.test";
const WAIT: Duration = Duration::from_secs(20);

/// SOA, 2 NS, apex A/MX, A/AAAA/TXT, a wildcard, and a delegation `sub` with DS and glue.
fn unsigned_zone(serial: u32, extra: &str) -> String {
    format!(
        r#"$ORIGIN example.test.
$TTL 300
@        IN SOA   ns1 hostmaster {serial} 3600 600 86400 300
@        IN NS    ns1
@        IN NS    ns2
@        IN A     192.0.2.1
@        IN MX    10 mail
ns1      IN A     192.0.2.53
ns2      IN A     192.0.2.54
www      IN A     192.0.2.2
www      IN AAAA  2001:db8::2
mail     IN A     192.0.2.25
txt      IN TXT   "hello world"
*        IN A     192.0.2.100
sub      IN NS    ns1.sub
sub      IN DS    12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns1.sub  IN A     192.0.2.200
{extra}"#
    )
}

/// ECDSAP256SHA256 KSK + ZSK in `TMP/keys`; signs `unsigned` into `TMP/NAME.signed` (one record
/// per line, NSEC) and returns (path, contents of the dsset file).
fn sign(tmp: &TempDir, name: &str, unsigned: &str) -> (std::path::PathBuf, String) {
    let keys = tmp.join("keys");
    if !keys.exists() {
        mkdir(&keys);
        for ksk in [true, false] {
            let mut cmd = Command::new(bin("dnssec-keygen"));
            cmd.args(["-q", "-a", "ECDSAP256SHA256", "-K"]).arg(&keys);
            if ksk {
                cmd.args(["-f", "KSK"]);
            }
            run(cmd.arg(ZONE), TOOL_TIMEOUT).expect_ok();
        }
    }
    let input = tmp.write(format!("{name}.zone"), unsigned);
    let output = tmp.join(format!("{name}.signed"));
    run(
        Command::new(bin("dnssec-signzone"))
            .args(["-S", "-N", "keep", "-O", "full", "-o", ZONE, "-K"])
            .arg(&keys)
            .arg("-d")
            .arg(tmp.path())
            .arg("-f")
            .arg(&output)
            .arg(&input),
        TOOL_TIMEOUT,
    )
    .expect_ok();
    let dsset = read_file(&tmp.join(format!("dsset-{ZONE}.")));
    (output, dsset)
}

/// The signed zone with www's A record changed after signing.
fn tamper(signed: &str) -> String {
    let mut changed = false;
    let out: Vec<String> = signed
        .lines()
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if t.first() == Some(&"www.example.test.") && t.get(3) == Some(&"A") {
                changed = true;
                l.replace("192.0.2.2", "192.0.2.99")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(changed, "no www A record to tamper with in:\n{signed}");
    out.join("\n") + "\n"
}

#[test]
fn validators_accept_signed_zone_and_reject_tampered_one() {
    require!(
        "dnssec-keygen",
        "dnssec-signzone",
        "dnssec-verify",
        "ldns-verify-zone",
        "kzonecheck"
    );
    let tmp = TempDir::new("selftest-validators");
    let (signed, dsset) = sign(&tmp, "good", &unsigned_zone(2024010101, ""));
    verify_all(ZONE, &signed);

    let bad = tmp.write("tampered.signed", tamper(&read_file(&signed)));
    let ldns = ldns_verify_zone(&bad);
    let bind = dnssec_verify(ZONE, &bad);
    let knot = kzonecheck(ZONE, &bad);
    assert!(
        ldns.is_err(),
        "ldns-verify-zone accepted a tampered zone: {ldns:?}"
    );
    assert!(
        bind.is_err(),
        "dnssec-verify accepted a tampered zone: {bind:?}"
    );
    assert!(
        knot.is_err(),
        "kzonecheck accepted a tampered zone: {knot:?}"
    );
    let result = std::panic::catch_unwind(|| verify_all(ZONE, &bad));
    assert!(result.is_err(), "verify_all accepted a tampered zone");

    // The DS for the KSK, from the dsset file and recomputed from the signed zone, agree.
    let from_zone = ds_from_zone_file(ZONE, &signed);
    assert_eq!(delv_anchors(&dsset), delv_anchors(&from_zone));
}

#[test]
fn named_primary_to_named_secondary_with_tsig_then_delv() {
    require!(
        "dnssec-keygen",
        "dnssec-signzone",
        "named",
        "dig",
        "delv",
        "dnssec-verify"
    );
    require!("ldns-verify-zone", "kzonecheck", "named-compilezone");
    let tmp = TempDir::new("selftest-named");
    let key = TsigKey::generate("xfr-key");
    let (signed, dsset) = sign(&tmp, "good", &unsigned_zone(2024010101, ""));
    let signed_text = read_file(&signed);

    // The primary first (see NamedSecondary's doc); it NOTIFYs the secondary on reloads.
    let secondary_port = free_port();
    let primary = NamedPrimary::builder(&key)
        .zone(ZONE, &signed_text)
        .notify(secondary_port)
        .start(&tmp);
    let secondary = NamedSecondary::builder(primary.port(), &key)
        .zone(ZONE)
        .port(secondary_port)
        .start(&tmp);
    secondary.wait_serial(ZONE, 2024010101, WAIT).unwrap();
    assert!(
        secondary
            .proc()
            .log()
            .contains(&format!("TSIG '{}'", key.name)),
        "the transfer was not TSIG-signed:\n{}",
        secondary.proc().log()
    );

    // What the secondary serves validates, and equals what the primary serves.
    let from_secondary = tmp.join("axfr.secondary");
    axfr_to_file(&secondary.axfr(ZONE), &from_secondary);
    verify_all(ZONE, &from_secondary);
    let from_primary = tmp.join("axfr.primary");
    axfr_to_file(&primary.axfr(ZONE), &from_primary);
    assert_eq!(
        canonical_zone(ZONE, &from_primary).unwrap(),
        canonical_zone(ZONE, &from_secondary).unwrap()
    );

    // No TSIG, or the wrong key: refused.
    assert!(axfr_failed(&secondary.axfr_without_key(ZONE)));
    let wrong = TsigKey::generate("xfr-key");
    assert!(axfr_failed(&axfr(secondary.port(), ZONE, Some(&wrong))));

    // Live validation from a static-ds anchor: a positive answer, a wildcard, NODATA, NXDOMAIN
    // (no wildcard covers names below www).
    let anchors = write_delv_anchor(tmp.path(), &dsset);
    let port = secondary.port();
    assert_validated(&delv(port, &anchors, ZONE, "www.example.test", "A"));
    assert_validated(&delv(port, &anchors, ZONE, "anything.example.test", "A"));
    let nodata = delv(port, &anchors, ZONE, "www.example.test", "TXT");
    assert!(
        nodata.contains("; negative response, fully validated"),
        "{nodata}"
    );
    let nx = delv(port, &anchors, ZONE, "nope.www.example.test", "A");
    assert!(nx.contains("; negative response, fully validated"), "{nx}");
    assert_validated(&nx);
    let status = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "nope.www.example.test",
        "A",
    ]);
    assert!(status.contains("status: NXDOMAIN"), "{status}");

    // An update through SIGHUP reaches the secondary (IXFR) and still validates.
    let (signed2, _) = sign(
        &tmp,
        "v2",
        &unsigned_zone(2024010102, "new IN A 192.0.2.10\n"),
    );
    primary.update_zone(ZONE, &read_file(&signed2));
    secondary.wait_serial(ZONE, 2024010102, WAIT).unwrap();
    assert_validated(&delv(port, &anchors, ZONE, "new.example.test", "A"));

    // The same anchor against a server of a tampered copy: delv must NOT report validation.
    let bad = NamedPrimary::builder(&key)
        .zone(ZONE, &tamper(&signed_text))
        .start(&tmp);
    let out = delv(bad.port(), &anchors, ZONE, "www.example.test", "A");
    assert!(
        !is_validated(&out),
        "delv validated a tampered answer:\n{out}"
    );
    let with_wrong_anchor = delv(
        port,
        &write_delv_anchor(
            &tmp.subdir("wrong"),
            "example.test. IN DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000",
        ),
        ZONE,
        "www.example.test",
        "A",
    );
    assert!(!is_validated(&with_wrong_anchor), "{with_wrong_anchor}");
}

#[test]
fn knot_primary_notifies_nsd_and_named_secondaries() {
    require!("knotd", "knotc", "nsd", "named", "dig", "named-compilezone");
    let tmp = TempDir::new("selftest-knot");
    let key = TsigKey::generate("xfr-key");
    let (nsd_port, named_port) = (free_port(), free_port());
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &unsigned_zone(1, ""))
        .notify(nsd_port)
        .notify(named_port)
        .start(&tmp);
    let nsd = NsdSecondary::builder(knot.port(), &key)
        .zone(ZONE)
        .port(nsd_port)
        .start(&tmp);
    let named = NamedSecondary::builder(knot.port(), &key)
        .zone(ZONE)
        .port(named_port)
        .start(&tmp);
    nsd.wait_serial(ZONE, 1, WAIT).unwrap();
    named.wait_serial(ZONE, 1, WAIT).unwrap();

    knot.update_zone(ZONE, &unsigned_zone(2, "new IN A 192.0.2.10\n"))
        .unwrap();
    nsd.wait_serial(ZONE, 2, WAIT).unwrap();
    named.wait_serial(ZONE, 2, WAIT).unwrap();
    assert!(
        knot.proc().log().contains("IXFR, outgoing"),
        "knotd served no IXFR:\n{}",
        knot.proc().log()
    );

    let canon = |name: &str, text: String| {
        let p = tmp.join(name);
        axfr_to_file(&text, &p);
        canonical_zone(ZONE, &p).unwrap()
    };
    let reference = canon("axfr.knot", knot.axfr(ZONE));
    assert!(reference.contains("new.example.test."));
    assert_eq!(reference, canon("axfr.nsd", nsd.axfr(ZONE)));
    assert_eq!(reference, canon("axfr.named", named.axfr(ZONE)));
    assert!(axfr_failed(&knot.axfr_without_key(ZONE)));
    assert!(axfr_failed(&nsd.axfr_without_key(ZONE)));
}

#[test]
fn scaffolding_helpers() {
    require!("sh" => "dash", "sleep" => "coreutils");
    assert!(find_bin("named").is_some_and(|p| p.is_absolute()));
    assert!(find_bin("signet-no-such-binary").is_none());
    assert_eq!(package_of("kzonecheck"), "knot-dnssecutils");

    // free_port: distinct, and bindable for UDP and TCP.
    let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
    let mut uniq = ports.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), ports.len());
    let p = free_port();
    let _tcp = std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    let _udp = std::net::UdpSocket::bind(("127.0.0.1", p)).unwrap();

    // TempDir: unique, removed on drop.
    let (a, b) = (TempDir::new("x"), TempDir::new("x"));
    assert_ne!(a.path(), b.path());
    let path = a.write("sub/f", "x");
    assert!(path.exists());
    let dir = a.path().to_path_buf();
    drop(a);
    if std::env::var_os("SIGNET_KEEP_TEST_DIRS").is_none() {
        assert!(!dir.exists());
    }

    // Proc: log capture, wait_for_log, early-exit detection, stop on drop.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo ready; exec sleep 60"]);
    let proc = Proc::spawn("sleeper", cmd, b.path());
    proc.wait_for_log("ready", WAIT).unwrap();
    assert!(proc.is_running());
    let pid = proc.pid();
    drop(proc);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo oops; exit 3"]);
    let quitter = Proc::spawn("quitter", cmd, b.path());
    let err = quitter.wait_for_log("never", WAIT).unwrap_err();
    assert!(err.contains("exited") && err.contains("oops"), "{err}");

    // run(): timeout.
    let out = run(Command::new("sleep").arg("5"), Duration::from_millis(200));
    assert!(!out.ok() && out.stderr.contains("killed"));

    // TSIG keys.
    let k = TsigKey::generate("k1");
    assert_ne!(k.secret, TsigKey::generate("k1").secret);
    assert_eq!(
        data_encoding::BASE64
            .decode(k.secret.as_bytes())
            .unwrap()
            .len(),
        32
    );
    assert!(k.bind_conf().contains(&format!("secret \"{}\";", k.secret)));

    // AXFR text → zone file.
    let text = "; <<>> DiG\n;; global options\nexample.test. 300 IN SOA a. b. 1 2 3 4 5\n\
                www.example.test. 300 IN A 192.0.2.2\n\
                example.test. 0 ANY TSIG hmac-sha256. 1 300 32 AAAA 1 NOERROR 0\n\
                example.test. 300 IN SOA a. b. 1 2 3 4 5\n";
    let f = b.join("z");
    axfr_to_file(text, &f);
    assert_eq!(
        read_file(&f),
        "example.test. 300 IN SOA a. b. 1 2 3 4 5\nwww.example.test. 300 IN A 192.0.2.2\n"
    );
    assert!(axfr_failed("; Transfer failed.\n"));

    // delv anchors from DS lines (split digest, TTL, comments).
    let anchors = delv_anchors(
        "; comment\nexample.test. 3600 IN DS 41506 13 2 7CAF36BD 0011\n\nexample.test IN DS 1 8 2 AB\n",
    );
    assert_eq!(
        anchors,
        "trust-anchors {\n    example.test. static-ds 41506 13 2 \"7CAF36BD0011\";\n    \
         example.test. static-ds 1 8 2 \"AB\";\n};\n"
    );
    assert!(is_validated("x\n; fully validated\n"));
    assert!(is_validated("; negative response, fully validated\n"));
    assert!(!is_validated(
        ";; resolution failed: RRSIG failed to verify\n"
    ));
}
