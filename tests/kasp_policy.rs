//! Issue 5 from the command line: `signet check` refuses unsafe policies with `FILE:LINE` and a
//! reason; `signet keys ZONE --plan` prints the policy's future schedule, with dates that
//! follow from the policy's lifetimes, TTLs and delays, from scratch or from the zone's key
//! state; `signet ds --offline` prints what the running server's `signet ds` prints, also in
//! the middle of a KSK rollover.

mod common;

use common::*;
use serde_json::Value;
use signet::kasp::sim::{SimOptions, Simulation};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const DAY: u64 = 86_400;
/// 2027-01-15T08:00:00Z
const T: u64 = 1_800_000_000;

fn signet(conf: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(signet_bin());
    cmd.arg(args[0])
        .arg("-c")
        .arg(conf)
        .args(&args[1..])
        .env("SIGNET_LOG", "off");
    run(&mut cmd, Duration::from_secs(60))
}

#[test]
fn check_refuses_unsafe_policies_with_file_and_line() {
    let dir = TempDir::new("policy-check");
    let conf = dir.write(
        "signet.toml",
        format!(
            r#"[server]
state-dir = "{state}"

[policy.short-refresh]
max-zone-ttl = "6d"

[policy.iterations]
nsec3 = {{ iterations = 10 }}

[policy.short-life]
keys = [
  {{ role = "ksk", algorithm = "ed25519" }},
  {{ role = "zsk", algorithm = "ed25519", lifetime = "3d" }},
]

[policy.no-zsk]
keys = [{{ role = "ksk", algorithm = "ecdsap256sha256" }}]

[policy.mismatch]
keys = [{{ role = "ksk", algorithm = 13 }}, {{ role = "zsk", algorithm = 15 }}]

[policy.empty]
keys = []

[policy.insecure]
keys = [{{ role = "csk", algorithm = 13 }}]

[policy.jitter]
signatures-validity = "7d"
signatures-refresh = "5d"
signatures-validity-dnskey = "7d"
signatures-jitter = "3d"
"#,
            state = dir.join("state").display()
        ),
    );
    let o = signet(&conf, &["check"]);
    assert_eq!(o.code, Some(1), "{o}");
    let file = conf.display().to_string();
    for (line, needle) in [
        (5, "[policy.short-refresh]: `signatures-refresh` (5d) must be at least `max-zone-ttl` + `zone-propagation-delay` (6d + 5m = 6d5m)"),
        (8, "[policy.iterations]: nsec3 iterations 10 is not allowed: must be 0"),
        (13, "[policy.short-life]: zsk lifetime 3d is shorter than a rollover takes under this policy"),
        (17, "[policy.no-zsk]: algorithm ecdsap256sha256 (13) has no zsk or csk"),
        (20, "[policy.mismatch]: algorithm ecdsap256sha256 (13) has no zsk or csk"),
        (20, "[policy.mismatch]: algorithm ed25519 (15) has no ksk or csk"),
        (23, "[policy.empty]: `keys` is empty"),
        (26, "[policy.insecure]: the `insecure` policy takes zones insecure and has no keys"),
        (32, "[policy.jitter]: `signatures-jitter` (3d) must be shorter than"),
    ] {
        let want = format!("{file}:{line}: {needle}");
        assert!(
            o.stdout.lines().any(|l| l.starts_with(&want)),
            "missing {want:?} in\n{}",
            o.stdout
        );
    }
    assert_eq!(o.stdout.lines().count(), 9, "{}", o.stdout);

    // accepted with warnings: exit 0, each warning with its line
    let conf = dir.write(
        "warn.toml",
        format!(
            r#"[server]
state-dir = "{state}"

[policy.p]
keys = [
  {{ role = "ksk", algorithm = "ed25519" }},
  {{ role = "zsk", algorithm = "ed25519", lifetime = "20d" }},
]
nsec3 = {{ salt-length = 8 }}
"#,
            state = dir.join("state").display()
        ),
    );
    let o = signet(&conf, &["check"]);
    assert_eq!(o.code, Some(0), "{o}");
    let file = conf.display().to_string();
    assert!(
        o.stdout.contains(&format!(
            "{file}:7: warning: [policy.p]: zsk lifetime 2w6d is shorter than 30 days"
        )),
        "{o}"
    );
    assert!(
        o.stdout.contains(&format!(
            "{file}:9: warning: [policy.p]: nsec3 salt-length 8"
        )),
        "{o}"
    );
}

/// The policy of the plan tests, with every timing chosen so that each wait is distinct.
const POLICY: &str = r#"[policy.p]
keys = [{ role = "ksk", algorithm = "ed25519", lifetime = "120d" }, { role = "zsk", algorithm = "ed25519", lifetime = "45d" }]
dnskey-ttl = "1h"
max-zone-ttl = "6h"
publish-safety = "30m"
retire-safety = "20m"
zone-propagation-delay = "10m"
parent-ds-ttl = "2h"
parent-propagation-delay = "15m"
purge-keys = "30d"
"#;
const DNSKEY_TTL: u64 = 3600;
const MAX_ZONE_TTL: u64 = 6 * 3600;
const PUBLISH_SAFETY: u64 = 1800;
const RETIRE_SAFETY: u64 = 1200;
const ZONE_PROP: u64 = 600;
const PARENT_DS_TTL: u64 = 7200;
const PARENT_PROP: u64 = 900;
/// The dry run's checkds sees a parent change within this (its poll interval).
const CHECKDS_POLL: u64 = 3600;

fn plan_setup(label: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new(label);
    let zf = dir.write(
        "zone.db",
        "$TTL 300\n@ SOA ns1 hostmaster 1 3600 600 604800 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    let conf = dir.write(
        "signet.toml",
        format!(
            "[server]\nstate-dir = \"{}\"\n{POLICY}\n[[zone]]\nname = \"example.org\"\npolicy = \"p\"\nfile = \"{}\"\n",
            dir.join("state").display(),
            zf.display()
        ),
    );
    (dir, conf)
}

fn plan_json(conf: &Path, from: u64, until: &str) -> Value {
    let o = signet(
        conf,
        &[
            "keys",
            "example.org",
            "--plan",
            "--json",
            "--time",
            &from.to_string(),
            "--until",
            until,
        ],
    );
    serde_json::from_str(o.expect_ok().trim()).expect("JSON")
}

fn keys_of(v: &Value, role: &str) -> Vec<Value> {
    v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["role"] == role)
        .cloned()
        .collect()
}

fn at(k: &Value, field: &str) -> Option<u64> {
    k[field].as_u64()
}

#[test]
fn plan_from_scratch_follows_the_policy_timings() {
    let (_dir, conf) = plan_setup("plan-scratch");
    let v = plan_json(&conf, T, "200d");
    assert_eq!(v["from"], T);
    assert_eq!(v["until"], T + 200 * DAY);
    assert!(v["state"].as_str().unwrap().starts_with("none"), "{v}");
    // the waits of RFC 7583 from the policy
    let ipub = DNSKEY_TTL + ZONE_PROP + PUBLISH_SAFETY;
    let zone_publish = MAX_ZONE_TTL + ZONE_PROP + PUBLISH_SAFETY;
    let zone_retire = MAX_ZONE_TTL + ZONE_PROP + RETIRE_SAFETY;
    let dnskey_retire = DNSKEY_TTL + ZONE_PROP + RETIRE_SAFETY;
    let ds_publish = PARENT_DS_TTL + PARENT_PROP + PUBLISH_SAFETY;
    let ds_retire = PARENT_DS_TTL + PARENT_PROP + RETIRE_SAFETY;

    let ksks = keys_of(&v, "ksk");
    let zsks = keys_of(&v, "zsk");
    assert_eq!(ksks.len(), 2, "one KSK rollover in 200 days: {v}");
    // 45-day ZSKs: successors at 45, 90, 135, 180 days
    assert_eq!(zsks.len(), 5, "{v}");
    let k0 = &ksks[0];
    assert_eq!(at(k0, "created"), Some(T));
    assert_eq!(at(k0, "published"), Some(T));
    assert_eq!(at(k0, "active"), Some(T));
    // the first DS is asked for once the zone's signatures are in every cache
    assert_eq!(at(k0, "ds_submit"), Some(T + zone_publish));
    assert_eq!(
        at(k0, "ds_omnipresent"),
        Some(T + zone_publish + CHECKDS_POLL + ds_publish)
    );
    for (i, z) in zsks.iter().enumerate() {
        let i = i as u64;
        let takeover = T + 45 * DAY * i;
        let created = if i == 0 { T } else { takeover - ipub };
        assert_eq!(at(z, "created"), Some(created), "ZSK {i}: {z}");
        assert_eq!(at(z, "published"), Some(created), "ZSK {i}: {z}");
        // pre-publication: it signs once its DNSKEY is in every cache
        assert_eq!(at(z, "active"), Some(takeover), "ZSK {i}: {z}");
        if i < 4 {
            let end = takeover + 45 * DAY;
            assert_eq!(at(z, "retired"), Some(end - ipub), "ZSK {i}: {z}");
            // the DNSKEY goes once the old signatures left the caches and the new ones are
            // in every cache, and then leaves the caches
            assert_eq!(
                at(z, "removed"),
                Some(end + zone_retire.max(zone_publish) + dnskey_retire),
                "ZSK {i}: {z}"
            );
        } else {
            assert_eq!(at(z, "retired"), None);
        }
        assert_eq!(at(z, "ds_submit"), None, "a ZSK has no DS");
    }
    // removed ZSKs are purged 30 days later
    assert_eq!(
        at(&zsks[0], "purged"),
        Some(T + 45 * DAY + zone_retire.max(zone_publish) + dnskey_retire + 30 * DAY)
    );
    // the KSK rollover: double-KSK; the DS swaps at the end of the old KSK's lifetime
    let k1 = &ksks[1];
    let end = T + 120 * DAY;
    assert_eq!(at(k0, "retired"), Some(end - ipub));
    assert_eq!(at(k1, "created"), Some(end - ipub));
    assert_eq!(at(k1, "published"), Some(end - ipub));
    assert_eq!(
        at(k1, "active"),
        Some(end - ipub),
        "a new KSK signs the DNSKEY set at once"
    );
    assert_eq!(at(k1, "ds_submit"), Some(end));
    assert_eq!(at(k0, "ds_withdraw"), Some(end));
    assert_eq!(
        at(k1, "ds_omnipresent"),
        Some(end + CHECKDS_POLL + ds_publish)
    );
    // the old DNSKEY goes once the old DS left the caches (any DS still cached is the new one,
    // whose DNSKEY is in every cache), and then leaves the caches
    assert_eq!(
        at(k0, "removed"),
        Some(end + CHECKDS_POLL + ds_retire + dnskey_retire)
    );
    // events are in time order, all within the horizon, with their key and role
    let ev = v["events"].as_array().unwrap();
    let times: Vec<u64> = ev.iter().map(|e| e["at"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(times.iter().all(|t| (T..=T + 200 * DAY).contains(t)));
    assert!(ev.iter().any(|e| e["event"] == "ds-rumoured"
        && e["key"] == k1["tag"]
        && e["at"] == end
        && e["role"] == "ksk"));

    // the human form shows the same dates
    let o = signet(
        &conf,
        &[
            "keys",
            "example.org",
            "--plan",
            "--time",
            &T.to_string(),
            "--until",
            "200d",
        ],
    );
    let text = o.expect_ok();
    let fmt = signet::kasp::fmt_time;
    let k1tag = k1["tag"].as_u64().unwrap();
    assert!(
        text.contains(&format!(
            "{}  key {k1tag} (ed25519) ksk: DS requested from the parent (CDS)",
            fmt(end)
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("    ds_submit       {}", fmt(end))),
        "{text}"
    );

    // --rollovers 2: until the second retired key (the second ZSK) is gone from every cache
    let o = signet(
        &conf,
        &[
            "keys",
            "example.org",
            "--plan",
            "--json",
            "--time",
            &T.to_string(),
            "--rollovers",
            "2",
        ],
    );
    let r: Value = serde_json::from_str(o.expect_ok().trim()).unwrap();
    let second_gone = T + 90 * DAY + zone_retire.max(zone_publish) + dnskey_retire;
    assert_eq!(r["until"], second_gone, "{r}");
    let last = r["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["at"], second_gone);
    assert_eq!(last["event"], "dnskey-hidden");
    assert_eq!(last["key"], zsks[1]["tag"]);
    assert!(r["note"].is_null());
    let o = signet(
        &conf,
        &[
            "keys",
            "example.org",
            "--plan",
            "--json",
            "--until",
            "30d",
            "--rollovers",
            "1",
        ],
    );
    let r: Value = serde_json::from_str(o.expect_ok().trim()).unwrap();
    assert_eq!(r["note"], "only 0 key(s) retire within the horizon", "{r}");

    // bad input
    let o = signet(
        &conf,
        &["keys", "example.org", "--plan", "--rollovers", "0"],
    );
    assert_eq!(o.code, Some(1), "{o}");
    let o = signet(&conf, &["keys", "example.org", "--plan", "--until", "soon"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("--until"), "{o}");
    let o = signet(&conf, &["keys", "nope.example", "--plan"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("not in the configuration"), "{o}");
    let o = signet(&conf, &["keys", "example.org", "--plan", "--until", "100y"]);
    assert_eq!(o.code, Some(1), "{o}");
}

#[test]
fn plan_continues_from_the_zone_key_state() {
    let (dir, conf) = plan_setup("plan-state");
    let cfg = signet::config::load(&conf).unwrap();
    let policy = cfg.policy_for(&cfg.zones[0]).clone();
    // a zone that has run for 50 days (one ZSK rollover behind it)
    let mut s = Simulation::new(policy, T, SimOptions::default());
    s.run_until(T + 50 * DAY);
    let state_dir = dir.join("state/zones/example.org");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(state_dir.join("keys.json"), s.state.to_json()).unwrap();
    let ipub = DNSKEY_TTL + ZONE_PROP + PUBLISH_SAFETY;

    let v = plan_json(&conf, T + 50 * DAY, "60d");
    assert!(v["state"].as_str().unwrap().ends_with("keys.json"), "{v}");
    let zsk_now = s
        .state
        .keys
        .iter()
        .find(|k| {
            k.role == signet::keystore::KeyRole::Zsk && k.goal == signet::kasp::Goal::Omnipresent
        })
        .unwrap()
        .key
        .tag;
    let ev = v["events"].as_array().unwrap();
    // the next ZSK rollover: the current ZSK took over at 45 days, so it ends at 90
    let created: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "created" && e["role"] == "zsk")
        .collect();
    assert_eq!(created.len(), 1, "{v}");
    assert_eq!(created[0]["at"], T + 90 * DAY - ipub);
    let retired = ev
        .iter()
        .find(|e| e["event"] == "retired" && e["key"] == zsk_now)
        .expect("the current ZSK retires");
    assert_eq!(retired["at"], T + 90 * DAY - ipub);
    // nothing happens to the keys before that, and no new KSK within 110 days
    assert!(ev.iter().all(|e| e["at"].as_u64().unwrap() >= T + 50 * DAY));
    assert!(!ev
        .iter()
        .any(|e| e["event"] == "created" && e["role"] == "ksk"));
    // a broken state file is an error, not a plan from scratch
    std::fs::write(state_dir.join("keys.json"), "{").unwrap();
    let o = signet(&conf, &["keys", "example.org", "--plan"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("keys.json"), "{o}");
}

#[test]
fn ds_offline_prints_what_the_server_prints_during_a_ksk_rollover() {
    require!("dig");
    let dir = TempDir::new("ds-offline");
    let port = free_port();
    let zf = dir.write(
        "org.db",
        "$TTL 2\n@ SOA ns1 hostmaster 1 3600 900 604800 2\n  NS ns1\nns1 A 192.0.2.1\n",
    );
    let conf = dir.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

[keystore.files]
backend = "files"
directory = "{keys}"

[policy.p]
keys = [{{ role = "ksk", algorithm = "ed25519" }}, {{ role = "zsk", algorithm = "ed25519" }}]
cds-digest-types = ["sha256", "sha384"]
dnskey-ttl = "2s"
max-zone-ttl = "2s"
publish-safety = "1s"
retire-safety = "1s"
zone-propagation-delay = "1s"

[[zone]]
name = "example.org"
policy = "p"
file = "{zf}"
"#,
            state = dir.join("state").display(),
            keys = dir.join("keys").display(),
            zf = zf.display(),
        ),
    );
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=debug");
    let server = Proc::spawn("signet", cmd, dir.path());
    assert!(
        wait_until(START_TIMEOUT, || soa_serial(port, "example.org").is_some()),
        "not served\n{}",
        server.log_tail(40)
    );
    // the first DS is asked for (CDS) once the zone's signatures are in every cache: 4s
    let cds_served = || {
        dig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "example.org",
            "CDS",
            "+short",
            "+time=2",
            "+tries=1",
        ])
        .lines()
        .count()
            == 2
    };
    assert!(
        wait_until(Duration::from_secs(20), cds_served),
        "no CDS\n{}",
        server.log_tail(40)
    );
    let online = signet(&conf, &["ds", "example.org"]).expect_ok();
    assert_eq!(
        online.lines().count(),
        2,
        "one KSK, two digest types: {online}"
    );
    let offline = signet(&conf, &["ds", "example.org", "--offline"]).expect_ok();
    assert_eq!(offline, online);
    // the registrar installed it
    let old_tag: String = online.split_whitespace().nth(4).unwrap().to_string();
    let o = signet(&conf, &["ds-seen", "example.org", "--key", &old_tag]);
    assert!(o.ok(), "{o}");
    // a KSK rollover starts: a newer KSK exists, but the parent must keep the old DS for now
    let o = signet(&conf, &["rollover", "example.org", "--role", "ksk"]);
    assert!(o.ok(), "{o}");
    let keys: Value = serde_json::from_str(
        signet(&conf, &["keys", "example.org", "--json"])
            .expect_ok()
            .trim(),
    )
    .unwrap();
    let ksks: Vec<&Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["role"] == "ksk")
        .collect();
    assert_eq!(ksks.len(), 2, "{keys}");
    let online2 = signet(&conf, &["ds", "example.org"]).expect_ok();
    assert_eq!(
        online2, online,
        "the server still asks for the old DS: {keys:#}"
    );
    let offline2 = signet(&conf, &["ds", "example.org", "--offline"]).expect_ok();
    assert_eq!(
        offline2, online2,
        "--offline follows the key state, not the newest key"
    );
    let json: Value = serde_json::from_str(
        signet(&conf, &["ds", "example.org", "--offline", "--json"])
            .expect_ok()
            .trim(),
    )
    .unwrap();
    assert_eq!(json["ds"].as_array().unwrap().len(), 2);
    // every key of `keys --json` carries its record states and its next transition
    for k in keys["keys"].as_array().unwrap() {
        assert!(k["goal"].is_string(), "{k}");
        let records: Vec<&str> = k["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["record"].as_str().unwrap())
            .collect();
        match k["role"].as_str().unwrap() {
            "ksk" => assert_eq!(records, ["DNSKEY", "KRRSIG", "DS"], "{k}"),
            _ => assert_eq!(records, ["DNSKEY", "ZRRSIG"], "{k}"),
        }
        for f in ["created", "tag", "algorithm", "keystore"] {
            assert!(!k[f].is_null(), "{f} in {k}");
        }
    }
    let new = ksks
        .iter()
        .find(|k| k["goal"] == "omnipresent")
        .expect("the new KSK");
    let next = &new["next"];
    assert_eq!(next["record"], "DNSKEY", "{new}");
    assert_eq!(next["to"], "omnipresent", "{new}");
    assert!(next["at"].as_u64().is_some(), "a timer has a date: {new}");
    assert!(
        next["waits_for"]
            .as_str()
            .unwrap()
            .contains("dnskey-ttl + zone-propagation-delay + publish-safety"),
        "{new}"
    );
    let old = ksks
        .iter()
        .find(|k| k["goal"] == "hidden")
        .expect("the old KSK");
    assert_eq!(old["successor"], new["tag"]);

    // sign-zone signs with the key state's keys too: the same DNSKEY set as served
    let served = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "example.org",
        "DNSKEY",
        "+short",
        "+time=2",
        "+tries=1",
    ]);
    let served: std::collections::BTreeSet<String> =
        served.lines().map(|l| l.replace(' ', "")).collect();
    assert_eq!(served.len(), 3, "two KSKs and the ZSK: {served:?}");
    let out = dir.join("signed.zone");
    let o = signet(
        &conf,
        &[
            "sign-zone",
            "--zone",
            "example.org",
            "--in",
            &zf.to_string_lossy(),
            "--out",
            &out.to_string_lossy(),
        ],
    );
    assert!(o.ok(), "{o}");
    let signed: std::collections::BTreeSet<String> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 4 && f[3] == "DNSKEY").then(|| f[4..].concat())
        })
        .collect();
    assert_eq!(
        signed, served,
        "sign-zone publishes the server's DNSKEY set"
    );
    drop(server);
}

/// The real-time counterpart of `kasp_reload::going_insecure_and_coming_back_on_reload`:
/// `signet serve`, the policy changed to `insecure` and `signet reload`; CDS/CDNSKEY DELETE
/// are served, the zone stays signed until `ds-gone` plus the DS cache window, then it is
/// served unsigned; back to the keyed policy, it is signed again with new keys.
#[test]
fn insecure_by_reload_in_real_time() {
    require!("dig");
    let dir = TempDir::new("insecure-rt");
    let port = free_port();
    let zf = dir.write(
        "org.db",
        "$TTL 1\n@ SOA ns1 hostmaster 1 3600 900 604800 1\n  NS ns1\nns1 A 192.0.2.1\n",
    );
    let write_conf = |policy: &str| {
        dir.write(
            "signet.toml",
            format!(
                r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

[keystore.files]
backend = "files"
directory = "{keys}"

[policy.p]
keys = [{{ role = "ksk", algorithm = "ed25519" }}, {{ role = "zsk", algorithm = "ed25519" }}]
dnskey-ttl = "1s"
max-zone-ttl = "1s"
publish-safety = "1s"
retire-safety = "1s"
zone-propagation-delay = "1s"
parent-ds-ttl = "1s"
parent-propagation-delay = "1s"

[policy.insecure]
dnskey-ttl = "1s"
max-zone-ttl = "1s"
publish-safety = "1s"
retire-safety = "1s"
zone-propagation-delay = "1s"
parent-ds-ttl = "1s"
parent-propagation-delay = "1s"

[[zone]]
name = "example.org"
policy = "{policy}"
file = "{zf}"
"#,
                state = dir.join("state").display(),
                keys = dir.join("keys").display(),
                zf = zf.display(),
            ),
        )
    };
    let conf = write_conf("p");
    let q = |qtype: &str| -> Vec<String> {
        dig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "example.org",
            qtype,
            "+short",
            "+time=2",
            "+tries=1",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    };
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=debug");
    let server = Proc::spawn("signet", cmd, dir.path());
    assert!(
        wait_until(Duration::from_secs(20), || q("CDS").len() == 1),
        "no CDS\n{}",
        server.log_tail(40)
    );
    let ksk: String = q("CDS")[0].split_whitespace().next().unwrap().to_string();
    signet(&conf, &["ds-seen", "example.org", "--key", &ksk]).expect_ok();
    let old_keys = q("DNSKEY");
    assert_eq!(old_keys.len(), 2);

    // an unsafe policy is refused by reload with FILE:LINE, and nothing changes
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(
        &conf,
        good.replace(
            "[policy.insecure]",
            "nsec3 = { iterations = 5 }\n\n[policy.insecure]",
        ),
    )
    .unwrap();
    let o = signet(&conf, &["reload"]);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(
        o.stderr.contains(&format!(
            "{}:19: [policy.p]: nsec3 iterations 5 is not allowed",
            conf.display()
        )),
        "{o}"
    );
    assert_eq!(q("DNSKEY"), old_keys);

    write_conf("insecure");
    signet(&conf, &["reload"]).expect_ok();
    assert!(
        wait_until(Duration::from_secs(10), || q("CDS") == ["0 0 0 00"]),
        "no CDS DELETE: {:?}\n{}",
        q("CDS"),
        server.log_tail(40)
    );
    assert_eq!(q("CDNSKEY"), ["0 3 0 AA=="]);
    // the DS is at the parent: the zone stays signed, and says what it waits for
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(q("DNSKEY").len(), 2, "still signed before ds-gone");
    let st: Value = serde_json::from_str(
        signet(&conf, &["status", "example.org", "--json"])
            .expect_ok()
            .trim(),
    )
    .unwrap();
    let waiting = st["zones"][0]["waiting_for"].to_string();
    assert!(
        waiting.contains("removed from the parent") && waiting.contains(&ksk),
        "{st}"
    );
    signet(&conf, &["ds-gone", "example.org", "--key", &ksk]).expect_ok();
    let gone = std::time::Instant::now();
    assert!(
        wait_until(Duration::from_secs(20), || q("DNSKEY").is_empty()),
        "not unsigned\n{}",
        server.log_tail(40)
    );
    // parent-ds-ttl + parent-propagation-delay + retire-safety after ds-gone
    assert!(
        gone.elapsed() >= Duration::from_secs(3),
        "{:?}",
        gone.elapsed()
    );
    let soa = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "example.org",
        "SOA",
        "+dnssec",
        "+norec",
        "+time=2",
        "+tries=1",
    ]);
    assert!(!soa.contains("RRSIG"), "{soa}");
    assert!(q("CDS").is_empty());

    // back to the keyed policy: new keys, signed again
    write_conf("p");
    signet(&conf, &["reload"]).expect_ok();
    assert!(
        wait_until(Duration::from_secs(10), || q("DNSKEY").len() == 2),
        "not signed again\n{}",
        server.log_tail(40)
    );
    let new_keys = q("DNSKEY");
    assert!(
        new_keys.iter().all(|k| !old_keys.contains(k)),
        "new keys: {new_keys:?} {old_keys:?}"
    );
    drop(server);
}
