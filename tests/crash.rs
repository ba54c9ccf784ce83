//! Crash safety (DESIGN properties 3-4, issue 4): kill -9 `signet serve` at random moments while
//! it signs and journals new versions, many times. Every restart serves a complete zone that
//! validates, with the same keys; the served serial never goes backwards; IXFR from every serial
//! that was ever announced still works (incremental) or falls back to AXFR-style correctly.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.org";

fn zone_text(serial: u32) -> String {
    let mut s = format!(
        "$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n"
    );
    for i in 0..10000u32 {
        s.push_str(&format!("h{i} A 198.51.100.{}\n", (i + serial) % 250 + 1));
    }
    s
}

#[test]
fn kill_dash_nine_at_random_moments() {
    require!("dig", "ldns-verify-zone");
    let dir = TempDir::new("crash");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let zf = dir.write("zone.db", zone_text(1));
    let conf = dir.write(
        "signet.toml",
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n{}\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[[zone]]\nname = \"{ZONE}\"\nfile = \"{}\"\nallow-transfer = [\"key:{}\"]\n",
            dir.join("state").display(),
            key.signet_toml(),
            dir.join("keys").display(),
            zf.display(),
            key.name
        ),
    );
    let mut announced: Vec<u32> = Vec::new();
    let mut last_served = 0u32;
    let mut dnskey: Option<String> = None;
    let mut x: u64 = 0x853c49e6748fea9b;
    for round in 1..=12u32 {
        let mut cmd = Command::new(signet_bin());
        cmd.arg("serve")
            .arg("-c")
            .arg(&conf)
            .env("SIGNET_LOG", "signet=info");
        let p = Proc::spawn(&format!("signet-{round}"), cmd, dir.path());
        assert!(
            wait_until(Duration::from_secs(30), || soa_serial(port, ZONE).is_some()),
            "round {round}: not serving after restart:\n{}",
            p.log_tail(20)
        );
        let s = soa_serial(port, ZONE).unwrap();
        assert!(
            s == last_served
                || signet::zone::service::serial_gt(s, last_served)
                || last_served == 0,
            "round {round}: serial went backwards: {s} after {last_served}"
        );
        // what is served is complete and valid, and signed by the same key
        let f = dir.join(format!("r{round}.zone"));
        axfr_to_file(&axfr(port, ZONE, Some(&key)), &f);
        ldns_verify_zone(&f).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let k = dig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            ZONE,
            "DNSKEY",
            "+short",
        ]);
        match &dnskey {
            None => dnskey = Some(k),
            Some(d) => assert_eq!(d, &k, "round {round}: the DNSKEY changed across a crash"),
        }
        // IXFR from every serial ever announced: incremental or AXFR-style, never an error
        for old in &announced {
            let out = dig(&[
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                "-y",
                &key.dig_arg(),
                ZONE,
                &format!("IXFR={old}"),
            ]);
            assert!(
                !out.contains("Transfer failed") && out.contains("SOA"),
                "round {round}: IXFR={old}:\n{out}"
            );
        }
        announced.push(s);
        last_served = s;
        // a new version, then kill -9 after a random delay (0-400 ms): during load, signing,
        // journal append or snapshot write
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        dir.write("zone.db", zone_text(1 + round));
        std::thread::sleep(Duration::from_millis(x % 400 + FILE_DEBOUNCE_MS));
        p.signal("KILL");
        drop(p);
    }
}

/// The zone task waits this long after a file event before reloading.
const FILE_DEBOUNCE_MS: u64 = 400;
