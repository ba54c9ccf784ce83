//! Issue 6: "a validating resolver holding the old DS validates before, during and after the
//! switch from BIND to signet as the server behind the same secondary", with a CACHING
//! resolver. A zone signed by BIND (dnssec-keygen + dnssec-signzone) is served by a named
//! primary → named secondary; a validating unbound (trust anchor: BIND's dsset, stub-zone to
//! the secondary) answers with AD. The keys move to signet (`signet keys import`), BIND's
//! primary goes away and `signet serve` takes its address; the secondary transfers from it and
//! later a change signed by signet. All the while a poller asks unbound (whose cache holds
//! BIND's DNSKEY set and signatures) and never sees SERVFAIL or an answer without AD.

mod common;
mod hsm_support;

use common::*;
use hsm_support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ZONE: &str = "example.com";

/// `dnssec-keygen -K DIR ARGS example.com` → the path of the `.private` file.
fn keygen(dir: &Path, args: &[&str]) -> PathBuf {
    let mut full = vec!["-q", "-K", dir.to_str().unwrap_or(".")];
    full.extend_from_slice(args);
    full.push(ZONE);
    let name = run_tool("dnssec-keygen", &full).expect_ok();
    dir.join(format!("{}.private", name.trim()))
}

/// A caching validating unbound on 127.0.0.1:`port`, anchored at `dsset`, with a stub-zone for
/// the zone pointing at 127.0.0.1@`stub_port`.
fn start_unbound(tmp: &TempDir, port: u16, stub_port: u16, dsset: &Path) -> Proc {
    let dir = tmp.subdir("unbound");
    let conf = tmp.write(
        "unbound/unbound.conf",
        format!(
            r#"server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    do-ip4: yes
    do-udp: yes
    do-tcp: yes
    num-threads: 1
    username: ""
    chroot: ""
    directory: "{dir}"
    pidfile: "{dir}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    ede: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "validator iterator"
    root-hints: ""
    qname-minimisation: no
    # else the cached NSEC records of BIND's version deny the name added later (RFC 8198)
    aggressive-nsec: no
    trust-anchor-file: "{dsset}"
stub-zone:
    name: "{ZONE}"
    stub-addr: 127.0.0.1@{stub_port}
remote-control:
    control-enable: no
"#,
            dir = dir.display(),
            dsset = dsset.display(),
        ),
    );
    if find_bin("unbound-checkconf").is_some() {
        run_tool("unbound-checkconf", &[conf.as_os_str()]).expect_ok();
    }
    let mut cmd = Command::new(bin("unbound"));
    cmd.arg("-d").arg("-c").arg(&conf);
    let p = Proc::spawn("unbound", cmd, tmp.path());
    assert!(
        wait_until(START_TIMEOUT, || {
            let o = dig(&[
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                "+time=1",
                "+tries=1",
                ZONE,
                "SOA",
            ]);
            o.contains("status:")
        }),
        "unbound did not answer:\n{}",
        p.log_tail(40)
    );
    p
}

/// `dig @127.0.0.1 -p PORT QNAME QTYPE +dnssec` through unbound: Ok(status) if the answer
/// carries AD and is not SERVFAIL, else Err(the whole output).
fn ask(port: u16, qname: &str, qtype: &str) -> Result<String, String> {
    let o = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+dnssec",
        "+time=3",
        "+tries=2",
        qname,
        qtype,
    ]);
    let status = o
        .lines()
        .find_map(|l| l.split("status: ").nth(1))
        .map(|s| s.split(',').next().unwrap_or("").to_string());
    let flags: Vec<&str> = o
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect()
        })
        .unwrap_or_default();
    match status {
        Some(s) if s != "SERVFAIL" && flags.contains(&"ad") => Ok(s),
        _ => Err(o),
    }
}

fn assert_ad(port: u16, qname: &str, qtype: &str, want: &str) {
    match ask(port, qname, qtype) {
        Ok(s) => assert_eq!(s, want, "{qname} {qtype}"),
        Err(o) => panic!("{qname} {qtype}: no validated answer from unbound:\n{o}"),
    }
}

const QUERIES: &[(&str, &str, &str)] = &[
    ("www.example.com", "A", "NOERROR"),
    ("txt.example.com", "TXT", "NOERROR"),
    ("example.com", "DNSKEY", "NOERROR"),
    ("example.com", "SOA", "NOERROR"),
    ("nope.example.com", "A", "NXDOMAIN"),
];

#[test]
fn caching_unbound_validates_across_the_switch_to_signet() {
    require!(
        "dnssec-keygen",
        "dnssec-signzone",
        "named",
        "dig",
        "unbound"
    );
    let tmp = TempDir::new("import-unbound");
    let kdir = tmp.subdir("bind-keys");
    let ksk = keygen(&kdir, &["-a", "ECDSAP256SHA256", "-f", "KSK"]);
    let zsk = keygen(&kdir, &["-a", "ECDSAP256SHA256"]);

    // BIND signs the zone; dsset-example.com. is what the parent (and unbound) holds
    let unsigned = tmp.write("unsigned.zone", zone_text(ZONE, 2024010101));
    let bind_signed = tmp.join("bind.signed");
    run(
        Command::new(bin("dnssec-signzone"))
            .args(["-S", "-K"])
            .arg(&kdir)
            .arg("-d")
            .arg(tmp.path())
            .args(["-o", ZONE, "-f"])
            .arg(&bind_signed)
            .arg(&unsigned),
        VERIFY_TIMEOUT,
    )
    .expect_ok();
    let dsset = tmp.join("dsset-example.com.");
    assert!(read_file(&dsset).contains(" DS "), "{}", read_file(&dsset));

    // before: BIND's primary, a BIND secondary, unbound in front of the secondary
    let key = TsigKey::generate("xfr-key");
    let primary_port = free_port();
    let primary = NamedPrimary::builder(&key)
        .port(primary_port)
        .zone(ZONE, &read_file(&bind_signed))
        .start(&tmp);
    let secondary = NamedSecondary::builder(primary_port, &key)
        .zone(ZONE)
        .start(&tmp);
    secondary
        .wait_serial(ZONE, 2024010101, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let uport = free_port();
    let unbound = start_unbound(&tmp, uport, secondary.port(), &dsset);
    for (q, t, want) in QUERIES {
        assert_ad(uport, q, t, want);
    }

    // a poller asks unbound all along from here on
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let asked = Arc::new(Mutex::new(0usize));
    let poller = {
        let (stop, failures, asked) = (stop.clone(), failures.clone(), asked.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for (q, t, want) in QUERIES {
                    match ask(uport, q, t) {
                        Ok(s) if s == *want => {}
                        Ok(s) => failures.lock().unwrap().push(format!("{q} {t}: {s}")),
                        Err(o) => failures.lock().unwrap().push(format!("{q} {t}:\n{o}")),
                    }
                    *asked.lock().unwrap() += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // the keys move to signet
    let conf = tmp.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{primary_port}"]
state-dir = "{state}"

{tsig}
[keystore.files]
backend = "files"
directory = "{keys}"

[policy.p]
keys = [{{ role = "ksk", algorithm = 13, lifetime = "unlimited", keystore = "files" }},
        {{ role = "zsk", algorithm = 13, lifetime = "unlimited", keystore = "files" }}]

[[zone]]
name = "{ZONE}"
policy = "p"
file = "{zone}"
notify = ["127.0.0.1:{sec}"]
allow-transfer = ["key:{kname}"]
"#,
            state = tmp.join("state").display(),
            keys = tmp.join("keys").display(),
            tsig = key.signet_toml(),
            zone = tmp.join("signet.zone").display(),
            sec = secondary.port(),
            kname = key.name,
        ),
    );
    for k in [&ksk, &zsk] {
        let o = run(
            Command::new(signet_bin())
                .args(["keys", "import", "-c"])
                .arg(&conf)
                .arg(ZONE)
                .arg(k)
                .env("SIGNET_LOG", "warn"),
            Duration::from_secs(120),
        );
        assert!(o.ok(), "{o}");
    }
    write_file(&tmp.join("signet.zone"), zone_text(ZONE, 2024010102));

    // during: BIND's primary is gone, the secondary keeps serving BIND's version
    drop(primary);
    std::thread::sleep(Duration::from_secs(1));
    for (q, t, want) in QUERIES {
        assert_ad(uport, q, t, want);
    }
    assert_ad(uport, "mail.example.com", "A", "NOERROR");

    // after: signet serves on the primary's address; the secondary transfers from it
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=info");
    let server = Proc::spawn("signet", cmd, tmp.path());
    assert!(
        wait_until(Duration::from_secs(60), || secondary.serial(ZONE)
            == Some(2024010102)),
        "the secondary did not transfer from signet:\n{}",
        server.log_tail(40)
    );
    for (q, t, want) in QUERIES {
        assert_ad(uport, q, t, want);
    }
    // names unbound has not cached: validated with the cached DNSKEY set
    assert_ad(uport, "www.example.com", "AAAA", "NOERROR");
    assert_ad(uport, "ns1.example.com", "A", "NOERROR");
    assert_ad(uport, "other.example.com", "TXT", "NXDOMAIN");

    // a change of the zone file (signet watches it), signed by signet; the file sits beside
    // the logs of signet, unbound and named, which must not hold the reload back
    write_file(
        &tmp.join("signet.zone"),
        format!("{}new IN A 192.0.2.99\n", zone_text(ZONE, 2024010103)),
    );
    assert!(
        wait_until(Duration::from_secs(60), || secondary.serial(ZONE)
            == Some(2024010103)),
        "the secondary did not get signet's change:\n{}",
        server.log_tail(40)
    );
    assert_ad(uport, "new.example.com", "A", "NOERROR");
    for (q, t, want) in QUERIES {
        assert_ad(uport, q, t, want);
    }
    std::thread::sleep(Duration::from_secs(2));

    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} answers from unbound were not validated:\n{}\nunbound:\n{}",
        failures.len(),
        asked.lock().unwrap(),
        failures.join("\n"),
        unbound.log_tail(40)
    );
    let asked = *asked.lock().unwrap();
    assert!(asked > QUERIES.len());
    eprintln!("{asked} answers from unbound during the switch, all validated");
    drop(server);
    drop(unbound);
}
