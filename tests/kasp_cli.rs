//! The key commands against a real `signet serve` (issue 5): `signet rollover` publishes a new
//! key at once and `keys`/`status` show it with its record states and what the rollover waits
//! for; in manual mode the new key's DNSKEY waits for `signet step`; `ds-seen` for an unknown
//! key, a rollover of a role the policy does not have, and a missing zone exit 1.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn signet(conf: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(signet_bin());
    cmd.arg(args[0])
        .arg("-c")
        .arg(conf)
        .args(&args[1..])
        .env("SIGNET_LOG", "off");
    run(&mut cmd, Duration::from_secs(60))
}

fn dnskey_tags(port: u16, zone: &str) -> BTreeSet<u16> {
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        zone,
        "DNSKEY",
        "+norec",
        "+multiline",
        "+noall",
        "+answer",
        "+time=2",
        "+tries=1",
    ]);
    out.lines()
        .filter_map(|l| {
            let i = l.find("key id = ")?;
            l[i + 9..].trim().parse().ok()
        })
        .collect()
}

fn key_tags(conf: &Path, zone: &str) -> (BTreeSet<u16>, Value) {
    let k: Value =
        serde_json::from_str(signet(conf, &["keys", zone, "--json"]).expect_ok().trim()).unwrap();
    let tags = k["keys"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter_map(|k| k["tag"].as_u64().map(|t| t as u16))
        .collect();
    (tags, k)
}

#[test]
fn rollover_ds_seen_and_step_through_the_cli() {
    require!("dig");
    let dir = TempDir::new("kasp-cli");
    let port = free_port();
    let zone = "$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n  NS ns1\nns1 A 192.0.2.1\n";
    dir.write("org.db", zone);
    dir.write("net.db", zone);
    let conf = dir.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

[keystore.files]
backend = "files"
directory = "{keys}"

[policy.auto]
keys = [{{ role = "ksk", algorithm = "ed25519" }}, {{ role = "zsk", algorithm = "ed25519" }}]

[policy.manual]
keys = [{{ role = "ksk", algorithm = "ed25519" }}, {{ role = "zsk", algorithm = "ed25519" }}]
manual-mode = true

[[zone]]
name = "example.org"
policy = "auto"
file = "{org}"

[[zone]]
name = "example.net"
policy = "manual"
file = "{net}"
"#,
            state = dir.join("state").display(),
            keys = dir.join("keys").display(),
            org = dir.join("org.db").display(),
            net = dir.join("net.db").display(),
        ),
    );
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=debug");
    let server = Proc::spawn("signet", cmd, dir.path());
    for z in ["example.org", "example.net"] {
        assert!(
            wait_until(START_TIMEOUT, || soa_serial(port, z).is_some()),
            "{z} not served\n{}",
            server.log_tail(40)
        );
    }
    assert!(wait_until(START_TIMEOUT, || signet(
        &conf,
        &["status", "--json"]
    )
    .ok()));

    // automatic: the new ZSK is published at once, beside the old one
    let (before, _) = key_tags(&conf, "example.org");
    assert_eq!(before.len(), 2);
    assert_eq!(dnskey_tags(port, "example.org"), before);
    let o = signet(&conf, &["rollover", "example.org", "--role", "zsk"]);
    assert!(o.ok(), "{o}");
    assert!(o.stdout.contains("rollover"), "{o}");
    let (after, k) = key_tags(&conf, "example.org");
    assert_eq!(after.len(), 3, "{k}");
    assert!(before.is_subset(&after));
    let new: Vec<u16> = after.difference(&before).copied().collect();
    assert!(
        wait_until(Duration::from_secs(10), || dnskey_tags(port, "example.org")
            == after),
        "the new ZSK is not served: {:?}",
        dnskey_tags(port, "example.org")
    );
    assert!(!k["waiting_for"].as_array().unwrap().is_empty(), "{k}");
    let text = signet(&conf, &["keys", "example.org"]).expect_ok();
    assert!(
        text.contains(&new[0].to_string()) && text.contains("DNSKEY rumoured"),
        "{text}"
    );
    assert!(text.contains("key transitions waiting for"), "{text}");
    let st = signet(&conf, &["status", "example.org"]).expect_ok();
    assert!(
        st.contains("key transitions waiting for") && st.contains("key-event"),
        "{st}"
    );

    // the parent side: ds prints the KSK's DS; ds-seen for it is accepted, unknown keys are not
    let ds = signet(&conf, &["ds", "example.org"]).expect_ok();
    assert_eq!(ds.lines().count(), 1, "{ds}");
    let ksk: u16 = ds.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(before.contains(&ksk));
    let o = signet(
        &conf,
        &["ds-seen", "example.org", "--key", &ksk.to_string()],
    );
    assert!(o.ok(), "{o}");
    let unknown = (1..=u16::MAX).find(|t| !after.contains(t)).unwrap();
    let o = signet(
        &conf,
        &["ds-seen", "example.org", "--key", &unknown.to_string()],
    );
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains(&unknown.to_string()), "{o}");
    let o = signet(
        &conf,
        &["ds-gone", "example.org", "--key", &unknown.to_string()],
    );
    assert_eq!(o.code, Some(1), "{o}");
    let o = signet(&conf, &["rollover", "example.org", "--role", "csk"]);
    assert_eq!(o.code, Some(1), "{o}");
    let o = signet(&conf, &["rollover", "nope.example", "--role", "zsk"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("not configured"), "{o}");
    let o = signet(&conf, &["step", "nope.example"]);
    assert_eq!(o.code, Some(1), "{o}");

    // manual mode: the rollover registers the key, its DNSKEY waits for `signet step`
    let (before, _) = key_tags(&conf, "example.net");
    assert_eq!(dnskey_tags(port, "example.net"), before);
    let o = signet(&conf, &["rollover", "example.net", "--role", "zsk"]);
    assert!(o.ok(), "{o}");
    let (after, k) = key_tags(&conf, "example.net");
    assert_eq!(after.len(), 3, "{k}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        dnskey_tags(port, "example.net"),
        before,
        "manual mode publishes nothing before `step`"
    );
    let st = signet(&conf, &["status", "example.net"]).expect_ok();
    assert!(st.contains("key transitions waiting for"), "{st}");
    let o = signet(&conf, &["step", "example.net"]);
    assert!(o.ok(), "{o}");
    assert!(
        wait_until(Duration::from_secs(10), || dnskey_tags(port, "example.net")
            == after),
        "after `step` the new ZSK is served: {:?}\n{o}",
        dnskey_tags(port, "example.net")
    );
    drop(server);
}
