//! Deferred snapshots under kill -9 (issue 4): `signet serve` follows a real knotd upstream by
//! NOTIFY + IXFR; each upstream change is journaled twice (unsigned.journal before signing,
//! ixfr.journal before serving) while signed.zone / unsigned.zone are only rewritten in the
//! background every SNAPSHOT_AFTER_ENTRIES changesets (or at a clean stop). signet is killed with
//! SIGKILL at random moments while upstream changes stream in — during transfers, unsigned
//! journal appends, signing, signed journal appends and, once enough changesets piled up,
//! background snapshot writes — many times. After every kill: the restart serves a complete zone
//! that validates, its serial is never older than any serial seen served before the kill, IXFR
//! from every serial seen served works (incremental or AXFR-style), and following upstream
//! goes on by IXFR. At the end a clean stop (SIGTERM) leaves snapshots that hold exactly the
//! last served version.

mod common;

use common::*;
use signet::zone::service::serial_gt;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.org";

/// Version `serial`: 8000 hosts, a few of them changing per version.
fn zone_text(serial: u32) -> String {
    let mut s = format!(
        "$TTL 300\n@ SOA ns1 hostmaster {serial} 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\nver TXT \"v{serial}\"\n"
    );
    for i in 0..8000u32 {
        let last = if i % 997 == serial % 997 {
            200 + serial % 50
        } else {
            i % 200 + 1
        };
        s.push_str(&format!("h{i} A 198.51.100.{last}\n"));
    }
    if serial.is_multiple_of(3) {
        s.push_str(&format!("x{serial} TXT \"only in {serial}\"\n"));
    }
    s
}

fn file_serial(dir: &TempDir, file: &str) -> Option<u32> {
    let origin = signet::dns::name::Name::parse(&format!("{ZONE}."), None).ok()?;
    let p = dir.join("state").join("zones").join(ZONE).join(file);
    signet::zonefile::load_zone(&p, &origin)
        .ok()
        .and_then(|(z, _)| z.serial())
}

/// The upstream serial signet's zone task holds now (`signet status --json`).
fn upstream_serial(dir: &TempDir) -> Option<u32> {
    let sock = dir.join("state").join("control.sock");
    let st = run(
        Command::new(signet_bin()).args(["status", "--socket", &sock.to_string_lossy(), "--json"]),
        Duration::from_secs(10),
    );
    let out = st.stdout;
    let i = out.find("\"upstream_serial\"")?;
    let rest = out[i + "\"upstream_serial\"".len()..].trim_start_matches([':', ' ']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

#[test]
fn kill_9_while_snapshots_are_deferred() {
    require!("knotd", "knotc", "dig", "ldns-verify-zone");
    let dir = TempDir::new("persist-crash");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(1))
        .port(kport)
        .notify(port)
        .start(&dir);
    let conf = dir.write(
        "signet.toml",
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nstate-dir = \"{}\"\n{}\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n[[zone]]\nname = \"{ZONE}\"\nprimaries = [\"127.0.0.1:{kport}\"]\ntransfer-tsig = \"{kn}\"\nallow-transfer = [\"key:{kn}\"]\n",
            dir.join("state").display(),
            key.signet_toml(),
            dir.join("keys").display(),
            kn = key.name
        ),
    );
    let start = |round: u32| {
        let mut cmd = Command::new(signet_bin());
        cmd.arg("serve")
            .arg("-c")
            .arg(&conf)
            .env("SIGNET_LOG", "signet=debug");
        Proc::spawn(&format!("signet-{round}"), cmd, dir.path())
    };
    let mut seen: Vec<u32> = Vec::new();
    let mut newest_seen = 0u32;
    let mut upstream = 1u32;
    let mut ixfr_in = 0;
    let mut background = 0;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
    let rounds = 14u32;
    for round in 1..=rounds {
        let p = start(round);
        assert!(
            wait_until(Duration::from_secs(60), || soa_serial(port, ZONE).is_some()),
            "round {round}: not serving after restart:\n{}",
            p.log_tail(30)
        );
        let s = soa_serial(port, ZONE).unwrap();
        assert!(
            newest_seen == 0 || s == newest_seen || serial_gt(s, newest_seen),
            "round {round}: serial went backwards: {s} after {newest_seen} was served"
        );
        // complete and valid
        let f = dir.join(format!("r{round}.zone"));
        axfr_to_file(&axfr(port, ZONE, Some(&key)), &f);
        ldns_verify_zone(&f).unwrap_or_else(|e| panic!("round {round}: {e}"));
        // IXFR from every serial seen served: incremental or AXFR-style, never an error
        for old in &seen {
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
        if !seen.contains(&s) {
            seen.push(s);
        }
        newest_seen = if serial_gt(s, newest_seen) || newest_seen == 0 {
            s
        } else {
            newest_seen
        };
        // wait until signet caught up with upstream (the refresh at start), then a burst of
        // upstream changes and a kill at a random moment within it
        let caught_up = wait_until(Duration::from_secs(60), || {
            upstream_serial(&dir) == Some(upstream)
        });
        assert!(
            caught_up,
            "round {round}: never caught up:\n{}",
            p.log_tail(30)
        );
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let burst = 2 + (x % 4) as u32;
        for _ in 0..burst {
            upstream += 1;
            knot.update_zone(ZONE, &zone_text(upstream)).unwrap();
            // remember what was served meanwhile: the restart must not go back before it
            if let Some(v) = soa_serial(port, ZONE) {
                if serial_gt(v, newest_seen) {
                    newest_seen = v;
                }
                if !seen.contains(&v) {
                    seen.push(v);
                }
            }
            std::thread::sleep(Duration::from_millis(x % 120));
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(x % 250));
        if let Some(v) = soa_serial(port, ZONE) {
            if serial_gt(v, newest_seen) {
                newest_seen = v;
            }
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        let log = p.log();
        ixfr_in += log
            .lines()
            .filter(|l| l.contains("transferred from upstream") && l.contains("IXFR"))
            .count();
        background += log.matches("snapshot written in the background").count();
        p.signal("KILL");
        drop(p);
    }
    eprintln!(
        "{rounds} kills, {} serials seen, {ixfr_in} IXFR in, {background} background snapshots completed before a kill",
        seen.len()
    );
    assert!(
        ixfr_in >= rounds as usize,
        "upstream changes must come by IXFR"
    );
    assert!(
        background >= 1,
        "the burst never piled up enough changesets for a background snapshot"
    );

    // a clean stop flushes the snapshots: they then hold exactly the last served version
    let p = start(rounds + 1);
    assert!(wait_until(Duration::from_secs(60), || soa_serial(
        port, ZONE
    )
    .is_some_and(|s| s == newest_seen || serial_gt(s, newest_seen))));
    assert!(wait_until(Duration::from_secs(60), || upstream_serial(
        &dir
    ) == Some(upstream)));
    // the served version is the one signed from it (signing follows the transfer)
    std::thread::sleep(Duration::from_millis(500));
    let last = soa_serial(port, ZONE).unwrap();
    p.signal("TERM");
    assert!(
        wait_until(Duration::from_secs(20), || !p.is_running()),
        "signet did not stop on SIGTERM:\n{}",
        p.log_tail(20)
    );
    assert_eq!(file_serial(&dir, "signed.zone"), Some(last));
    assert_eq!(file_serial(&dir, "unsigned.zone"), Some(upstream));
    drop(p);
}
