//! The operator commands against a real `signet serve` with a file-sourced zone: `status`
//! (text and `--json`) reports the zone served with the file's serial, and agrees with what dig
//! sees; `resign` makes the signed serial go up, in status and on the wire; `ds` equals what
//! BIND's dnssec-dsfromkey computes from the DNSKEY RRset signet serves (SHA-256 and SHA-384),
//! and `ds --offline` agrees; `keys` lists the keys behind those DS records; an unknown zone and
//! a stopped server exit 1 with a clear message.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.org";
const SERIAL: u32 = 2024030401;

fn zone_text(serial: u32) -> String {
    format!(
        "$TTL 300\n$ORIGIN example.org.\n@ SOA ns1 hostmaster {serial} 3600 900 604800 300\n  NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.3\n"
    )
}

fn config(dir: &TempDir, port: u16) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

[keystore.files]
backend = "files"
directory = "{keys}"

[policy.p]
keys = [{{ role = "ksk", algorithm = "ecdsap256sha256" }}, {{ role = "zsk", algorithm = "ecdsap256sha256" }}]
cds-digest-types = ["sha256", "sha384"]

[[zone]]
name = "{ZONE}"
policy = "p"
file = "{zone}"
"#,
        state = dir.join("state").display(),
        keys = dir.join("keys").display(),
        zone = dir.join("zone.db").display(),
    )
}

fn signet(conf: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(signet_bin());
    cmd.arg(args[0])
        .arg("-c")
        .arg(conf)
        .args(&args[1..])
        .env("SIGNET_LOG", "off");
    run(&mut cmd, Duration::from_secs(60))
}

fn status_json(conf: &Path) -> Value {
    let out = signet(conf, &["status", ZONE, "--json"]).expect_ok();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// (tag, algorithm, digest type, uppercase hex digest) of every DS line in `text`.
fn ds_set(text: &str) -> BTreeSet<(u16, u8, u8, String)> {
    let mut set = BTreeSet::new();
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        let Some(i) = toks.iter().position(|t| *t == "DS") else {
            continue;
        };
        assert!(toks.len() >= i + 5, "short DS line: {line:?}");
        set.insert((
            toks[i + 1].parse().unwrap(),
            toks[i + 2].parse().unwrap(),
            toks[i + 3].parse().unwrap(),
            toks[i + 4..].concat().to_ascii_uppercase(),
        ));
    }
    set
}

#[test]
fn operator_commands_against_signet_serve() {
    require!("dig", "dnssec-dsfromkey");
    let dir = TempDir::new("ctl-e2e");
    let port = free_port();
    dir.write("zone.db", zone_text(SERIAL));
    let conf = dir.write("signet.toml", config(&dir, port));
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=debug");
    let server = Proc::spawn("signet", cmd, dir.path());
    wait_serial(port, ZONE, SERIAL, START_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail(40)));
    // the control socket is up (it may come a moment after the first answer)
    let mut last = None;
    assert!(
        wait_until(START_TIMEOUT, || {
            let o = signet(&conf, &["status", "--json"]);
            let up = o.ok();
            last = Some(o);
            up
        }),
        "status never answered: {}\n{}",
        last.map(|o| o.to_string()).unwrap_or_default(),
        server.log_tail(40)
    );
    assert!(dir.join("state/control.sock").exists());

    // status: served, with the file's serial, as the wire shows it
    let s = status_json(&conf);
    let z = &s["zones"][0];
    assert_eq!(s["zones"].as_array().map(Vec::len), Some(1), "{s}");
    assert_eq!(z["zone"], "example.org.", "{s}");
    assert_eq!(z["served"], true, "{s}");
    assert_eq!(z["upstream_serial"], SERIAL, "{s}");
    assert_eq!(z["signed_serial"], SERIAL, "{s}");
    assert_eq!(z["stale"], false, "{s}");
    assert!(z["alarm"].is_null(), "{s}");
    assert!(s["now"].as_u64().is_some(), "{s}");
    let text = signet(&conf, &["status"]).expect_ok();
    assert!(text.starts_with("example.org.\n"), "{text}");
    assert!(
        text.contains(&format!("signed serial             {SERIAL}")),
        "{text}"
    );
    assert!(text.contains("served                    yes"), "{text}");

    // resign: a new signed serial, reported by the command, by status and on the wire
    let r = signet(&conf, &["resign", ZONE, "--json"]).expect_ok();
    let r: Value = serde_json::from_str(r.trim()).unwrap();
    let after = r["status"]["signed_serial"].as_u64().unwrap_or(0) as u32;
    assert!(after > SERIAL, "resign did not move the serial: {r}");
    let s = status_json(&conf);
    assert_eq!(s["zones"][0]["signed_serial"], after, "{s}");
    assert_eq!(s["zones"][0]["upstream_serial"], SERIAL, "{s}");
    assert_eq!(soa_serial(port, ZONE), Some(after));
    let text = signet(&conf, &["resign", ZONE]).expect_ok();
    assert!(text.starts_with("example.org. resign: "), "{text}");
    let s = status_json(&conf);
    let again = s["zones"][0]["signed_serial"].as_u64().unwrap_or(0) as u32;
    assert!(again > after, "{s}");
    assert_eq!(soa_serial(port, ZONE), Some(again));

    // ds: from the served DNSKEY RRset, as dnssec-dsfromkey computes it
    let ours = signet(&conf, &["ds", ZONE]).expect_ok();
    let served = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "example.org.",
        "DNSKEY",
        "+noall",
        "+answer",
        "+norec",
    ]);
    let dnskeys = dir.write("dnskey.db", &served);
    let mut theirs = String::new();
    for alg in ["SHA-256", "SHA-384"] {
        theirs.push_str(
            &run_tool(
                "dnssec-dsfromkey",
                &["-a", alg, "-f", &dnskeys.to_string_lossy(), "example.org."],
            )
            .expect_ok(),
        );
    }
    let ours_set = ds_set(&ours);
    assert_eq!(ours_set.len(), 2, "one KSK x two digest types:\n{ours}");
    assert_eq!(
        ours_set,
        ds_set(&theirs),
        "ours:\n{ours}\ndnssec-dsfromkey:\n{theirs}"
    );
    for line in ours.lines() {
        assert!(line.starts_with("example.org.\t3600\tIN\tDS\t"), "{line}");
    }
    // --offline reads the keystore: the same keys
    let offline = signet(&conf, &["ds", ZONE, "--offline"]).expect_ok();
    assert_eq!(ds_set(&offline), ours_set, "offline:\n{offline}");
    // --json: the same records
    let j: Value =
        serde_json::from_str(signet(&conf, &["ds", ZONE, "--json"]).expect_ok().trim()).unwrap();
    let recs: Vec<&str> = j["ds"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["record"].as_str())
        .collect();
    assert_eq!(recs.join("\n"), ours.trim_end());

    // keys: the KSK behind the DS and the ZSK
    let k: Value =
        serde_json::from_str(signet(&conf, &["keys", ZONE, "--json"]).expect_ok().trim()).unwrap();
    let tags: BTreeSet<u16> = k["keys"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|k| k["tag"].as_u64().map(|t| t as u16))
        .collect();
    assert_eq!(tags.len(), 2, "{k}");
    for (tag, ..) in &ours_set {
        assert!(tags.contains(tag), "DS tag {tag} not among the keys: {k}");
    }
    signet(&conf, &["keys", ZONE]).expect_ok();

    // errors: exit 1 with the reason
    let o = signet(&conf, &["status", "nope.example"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(
        o.stderr.contains("zone nope.example. is not configured"),
        "{o}"
    );
    let o = signet(&conf, &["resign", "nope.example"]);
    assert_eq!(o.code, Some(1), "{o}");

    // server stopped: the commands say so (a socket file left behind answers nobody)
    drop(server);
    let o = signet(&conf, &["status"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(
        o.stderr.contains("cannot reach signet at")
            && o.stderr
                .contains(&format!("is `signet serve -c {}` running?", conf.display())),
        "{o}"
    );
    // ds --offline still works without a server
    let offline = signet(&conf, &["ds", ZONE, "--offline"]).expect_ok();
    assert_eq!(ds_set(&offline), ours_set);
}
