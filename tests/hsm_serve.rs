//! `signet serve` with its keys on a SoftHSM2 token, and the token failing while it runs
//! (issue 6): the token directory is moved away (as root, chmod 000 would not stop SoftHSM), a
//! zone file change cannot be signed — the last good version stays served, the error is logged
//! and raised as the zone's alarm in `signet status` — and once the directory is back, the next
//! change is signed again by the same process, with signatures delv validates.

mod common;
mod hsm_support;

use common::*;
use hsm_support::*;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.com";

fn status_json(hsm: &SoftHsm, conf: &std::path::Path) -> serde_json::Value {
    let o = hsm.signet(&[
        "status".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        "--json".as_ref(),
        ZONE.as_ref(),
    ]);
    assert!(o.ok(), "{o}");
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {o}"))
}

fn alarm(v: &serde_json::Value) -> Option<String> {
    // `status ZONE --json` answers with the zone's status, possibly inside a list
    let z = match v {
        serde_json::Value::Array(a) => a.first().cloned().unwrap_or_default(),
        serde_json::Value::Object(o) if o.contains_key("zones") => o["zones"][0].clone(),
        other => other.clone(),
    };
    z.get("alarm").and_then(|a| a.as_str()).map(str::to_string)
}

#[test]
fn token_failure_while_serving_keeps_serving_and_recovers() {
    if !have_softhsm() {
        return;
    }
    require!("dig", "delv");
    let tmp = TempDir::new("hsm-serve");
    let hsm = SoftHsm::new(&tmp);
    let port = free_port();
    let zone_file = tmp.write("zone.db", zone_text(ZONE, 1));
    let keys = r#"[{ role = "ksk", algorithm = 13, lifetime = "unlimited", keystore = "hsm" },
                   { role = "zsk", algorithm = 13, lifetime = "unlimited", keystore = "hsm" }]"#;
    let text = config(tmp.path(), keys, &[(ZONE, &zone_file)], "").replacen(
        "[server]\n",
        &format!("[server]\nlisten = [\"127.0.0.1:{port}\"]\n"),
        1,
    );
    let conf = tmp.write("signet.toml", text);
    let mut cmd = hsm.cmd("signet");
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=debug");
    let signet = Proc::spawn("signet", cmd, tmp.path());
    assert!(
        wait_until(Duration::from_secs(30), || soa_serial(port, ZONE).is_some()),
        "not serving: {}",
        signet.proc_log()
    );
    let served = soa_serial(port, ZONE).unwrap();

    // the parent's DS, from the running server
    let ds = run(
        Command::new(signet_bin()).args(["ds", "-c", &conf.to_string_lossy(), ZONE]),
        Duration::from_secs(30),
    )
    .expect_ok();
    let anchors = write_delv_anchor(tmp.path(), &ds);
    assert_validated(&delv(port, &anchors, ZONE, "www.example.com", "A"));

    // --- the token goes away ------------------------------------------------------------------
    let moved = tmp.join("softhsm/tokens.moved");
    std::fs::rename(&hsm.tokens, &moved).unwrap();
    write_file(
        &zone_file,
        format!("{}during IN TXT \"outage\"\n", zone_text(ZONE, 2)),
    );
    signet
        .wait_for_log("signing failed", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let log = signet.log();
    let line = log
        .lines()
        .find(|l| l.contains("signing failed"))
        .unwrap_or_default();
    assert!(line.contains("keystore hsm"), "{line}");
    assert!(!log.contains(PIN), "the PIN is in the log");
    // still serving the last good version, which still validates
    assert_eq!(soa_serial(port, ZONE), Some(served));
    assert!(dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "during.example.com",
        "TXT"
    ])
    .contains("NXDOMAIN"));
    assert_validated(&delv(port, &anchors, ZONE, "www.example.com", "A"));
    let a = alarm(&status_json(&hsm, &conf));
    assert!(
        a.as_deref().is_some_and(|a| a.contains("signing failing")),
        "no alarm in status: {a:?}"
    );

    // --- the token comes back: the next change is signed by the same process ------------------
    std::fs::rename(&moved, &hsm.tokens).unwrap();
    // past the keystore's reconnection backoff
    std::thread::sleep(Duration::from_secs(3));
    write_file(
        &zone_file,
        format!("{}after IN TXT \"recovered\"\n", zone_text(ZONE, 3)),
    );
    assert!(
        wait_until(Duration::from_secs(30), || soa_serial(port, ZONE)
            .is_some_and(|s| s != served)),
        "no new version after the token came back:\n{}",
        signet.proc_log()
    );
    assert!(signet.log().contains("reconnected to the PKCS#11 token"));
    assert_validated(&delv(port, &anchors, ZONE, "after.example.com", "TXT"));
    assert_validated(&delv(port, &anchors, ZONE, "during.example.com", "TXT"));
    assert!(
        wait_until(Duration::from_secs(10), || alarm(&status_json(&hsm, &conf))
            .is_none()),
        "alarm not cleared"
    );
}

trait ProcLog {
    fn proc_log(&self) -> String;
}

impl ProcLog for Proc {
    fn proc_log(&self) -> String {
        self.log_tail(40)
    }
}
