//! `signet serve` end to end: a file-sourced zone is signed and served; delv (with the zone's DS
//! as trust anchor) fully validates positive, NXDOMAIN, NODATA, wildcard and referral answers; a
//! real BIND named secondary transfers it with TSIG and its copy passes ldns-verify-zone,
//! dnssec-verify and kzonecheck; AXFR without the key is refused; a file change reaches named by
//! NOTIFY; a broken file changes nothing; a restart serves the stored signed copy at once.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const ZONE: &str = "example.org";

fn zone_text(serial: u32, extra: &str) -> String {
    format!(
        r#"$TTL 300
$ORIGIN example.org.
@        SOA  ns1 hostmaster {serial} 3600 900 604800 300
         NS   ns1
         NS   ns2.Example.NET.
         MX   10 mail
ns1      A    192.0.2.1
mail     A    192.0.2.2
www      A    192.0.2.3
         AAAA 2001:db8::3
a.b.ent  TXT  "empty non-terminals above"
*.wild   TXT  "wildcard"
alias    CNAME www
secure   NS   ns.secure
secure   DS   12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
ns.secure A   192.0.2.5
insecure NS   ns.insecure
ns.insecure A 192.0.2.6
{extra}
"#
    )
}

struct Signet {
    proc: Proc,
    port: u16,
}

fn start_signet(dir: &TempDir, conf: &std::path::Path, port: u16, name: &str) -> Signet {
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(conf)
        .env("SIGNET_LOG", "signet=debug");
    let proc = Proc::spawn(name, cmd, dir.path());
    Signet { proc, port }
}

fn config(dir: &TempDir, port: u16, key: &TsigKey, secondary: u16, nsec3: bool) -> String {
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
{nsec3}

[[zone]]
name = "{ZONE}"
policy = "p"
file = "{zone}"
notify = ["127.0.0.1:{secondary}"]
allow-transfer = ["key:{keyname}"]
"#,
        state = dir.join("state").display(),
        keys = dir.join("keys").display(),
        zone = dir.join("zone.db").display(),
        tsig = key.signet_toml(),
        keyname = key.name,
        nsec3 = if nsec3 {
            "nsec3 = { iterations = 0, salt-length = 0, opt-out = false }"
        } else {
            ""
        },
    )
}

fn run_e2e(nsec3: bool) {
    require!(
        "named",
        "dig",
        "delv",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let dir = TempDir::new(if nsec3 { "e2e-nsec3" } else { "e2e-nsec" });
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let sec_port = free_port();
    dir.write("zone.db", zone_text(2024010101, ""));
    let conf = dir.write("signet.toml", config(&dir, port, &key, sec_port, nsec3));
    let signet = start_signet(&dir, &conf, port, "signet");
    wait_serial(port, ZONE, 2024010101, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", signet.proc.log_tail(40)));

    // the DS the parent would hold, from signet itself
    let ds = run(
        Command::new(signet_bin()).args(["ds", "-c", &conf.to_string_lossy(), ZONE]),
        Duration::from_secs(30),
    )
    .expect_ok();
    let anchors = write_delv_anchor(dir.path(), &ds);
    for (q, t) in [
        ("www.example.org", "A"),
        ("www.example.org", "AAAA"),
        ("nope.example.org", "A"),     // NXDOMAIN
        ("www.example.org", "TXT"),    // NODATA
        ("b.ent.example.org", "A"),    // NODATA at an empty non-terminal
        ("x.wild.example.org", "TXT"), // wildcard
        ("x.wild.example.org", "A"),   // wildcard NODATA
        ("alias.example.org", "A"),    // CNAME
        ("example.org", "DNSKEY"),
        ("secure.example.org", "DS"),   // signed delegation
        ("insecure.example.org", "DS"), // proof of no DS
    ] {
        let out = delv(signet.port, &anchors, ZONE, q, t);
        assert!(is_validated(&out), "{q} {t} not validated:\n{out}");
    }
    // a referral: authority NS, not authoritative, glue in additional
    let r = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "host.insecure.example.org",
        "A",
        "+dnssec",
        "+norec",
    ]);
    assert!(
        r.contains("insecure.example.org.\t300\tIN\tNS\tns.insecure.example.org."),
        "{r}"
    );
    assert!(
        !r.contains(" aa"),
        "referral must not be authoritative: {r}"
    );

    // AXFR without the key: refused
    assert!(
        axfr_failed(&axfr(port, ZONE, None)),
        "AXFR without TSIG was not refused"
    );

    // a real BIND secondary transfers it with TSIG; its copy validates
    let named = NamedSecondary::builder(port, &key)
        .zone(ZONE)
        .port(sec_port)
        .start(&dir);
    named
        .wait_serial(ZONE, 2024010101, Duration::from_secs(30))
        .unwrap();
    let copy = dir.join("named-copy.zone");
    axfr_to_file(&named.axfr(ZONE), &copy);
    verify_all(ZONE, &copy);
    let ours = dir.join("signet-copy.zone");
    axfr_to_file(&axfr(port, ZONE, Some(&key)), &ours);
    assert_eq!(
        canonical_zone(ZONE, &ours).unwrap(),
        canonical_zone(ZONE, &copy).unwrap(),
        "named's copy differs from signet's"
    );

    // a change of the file is signed and reaches named through NOTIFY
    dir.write("zone.db", zone_text(2024010102, "new A 192.0.2.77"));
    named
        .wait_serial(ZONE, 2024010102, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nsignet:\n{}", signet.proc.log_tail(30)));
    // a file edit is signed by the diff-driven path (the names it touched), not a full walk
    assert!(
        signet.proc.log().contains("signed the change"),
        "the file edit was not signed by the diff-driven path:\n{}",
        signet.proc.log_tail(30)
    );
    let copy2 = dir.join("named-copy2.zone");
    let text = named.axfr(ZONE);
    assert!(text.contains("192.0.2.77"), "new record missing at named");
    axfr_to_file(&text, &copy2);
    verify_all(ZONE, &copy2);

    // a broken file is refused: the old version stays
    dir.write(
        "zone.db",
        "$TTL 300\n@ SOA ns1 hostmaster 2024010199 1 1 1 1\nwww A (\n",
    );
    signet
        .proc
        .wait_for_log("zone file rejected", Duration::from_secs(20))
        .unwrap();
    assert_eq!(soa_serial(port, ZONE), Some(2024010102));

    // restart: the stored signed copy is served at once
    drop(signet);
    let t0 = Instant::now();
    let again = start_signet(&dir, &conf, port, "signet-restart");
    wait_serial(port, ZONE, 2024010102, Duration::from_secs(10)).unwrap();
    let took = t0.elapsed();
    again
        .proc
        .wait_for_log("serving the stored signed copy", Duration::from_secs(5))
        .unwrap();
    eprintln!("restart to serving: {took:?}");
    let out = delv(again.port, &anchors, ZONE, "new.example.org", "A");
    assert!(is_validated(&out), "{out}");
}

#[test]
fn serve_nsec_with_bind_secondary() {
    run_e2e(false);
}

#[test]
fn serve_nsec3_with_bind_secondary() {
    run_e2e(true);
}
