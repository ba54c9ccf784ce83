//! Bump in the wire (issue 3): signet follows a real hidden primary (knotd, BIND named) by
//! NOTIFY, SOA refresh, IXFR and AXFR with TSIG, and never lets the zone expire.
//!
//! Real-time tests run signet itself; the expire tests drive a zone task on a simulated clock
//! (months of schedule in seconds) against a real knotd, and check what is served with our
//! verifier and with kzonecheck at the simulated time.

mod common;

use common::*;
use signet::clock::{Clock, SimClock};
use signet::dns::name::Name;
use signet::publisher::Publisher;
use signet::zone::service::ZoneTask;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

const ZONE: &str = "example.net";

/// A zone with `n` hosts, some of them varying by `round`, and SOA timers `timers`
/// (refresh retry expire minimum).
fn zone_text(serial: u32, round: u32, timers: &str) -> String {
    let mut s = format!(
        "$TTL 300\n$ORIGIN example.net.\n@ SOA ns1 hostmaster {serial} {timers}\n@ NS ns1\n@ NS ns2\nns1 A 192.0.2.1\nns2 A 192.0.2.2\n*.wild TXT \"w\"\nsub NS ns.sub\nns.sub A 192.0.2.9\n"
    );
    // deterministic pseudo-random edits per round: some hosts come and go, some change address
    let mut x: u64 = 0x2545F4914F6CDD1D ^ round as u64;
    for i in 0..40u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(5) && round > 0 {
            continue; // removed this round
        }
        let last = if x.is_multiple_of(3) {
            round % 250 + 1
        } else {
            i % 250 + 1
        };
        s.push_str(&format!("h{i} A 198.51.100.{last}\n"));
        if x.is_multiple_of(7) {
            s.push_str(&format!("h{i} TXT \"round {round}\"\n"));
        }
    }
    s
}

fn signet_conf(
    dir: &TempDir,
    port: u16,
    key: &TsigKey,
    primary: u16,
    extra: &str,
) -> std::path::PathBuf {
    dir.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

{tsig}
[keystore.files]
backend = "files"
directory = "{keys}"

[[zone]]
name = "{ZONE}"
primaries = ["127.0.0.1:{primary}"]
transfer-tsig = "{kn}"
allow-transfer = ["key:{kn}"]
{extra}
"#,
            state = dir.join("state").display(),
            keys = dir.join("keys").display(),
            tsig = key.signet_toml(),
            kn = key.name,
        ),
    )
}

/// Non-DNSSEC content of an AXFR, canonical, sorted, SOA excluded (its serial is signet's).
fn content(zone_text: &str, dir: &TempDir, name: &str) -> Vec<String> {
    let f = dir.join(name);
    axfr_to_file(zone_text, &f);
    let text = canonical_zone(ZONE, &f).unwrap();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3
                && !matches!(
                    f[3],
                    "RRSIG" | "NSEC" | "NSEC3" | "NSEC3PARAM" | "DNSKEY" | "SOA"
                )
        })
        .map(String::from)
        .collect();
    v.sort();
    v
}

fn start_signet(dir: &TempDir, conf: &std::path::Path, name: &str) -> Proc {
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(conf)
        .env("SIGNET_LOG", "signet=debug");
    Proc::spawn(name, cmd, dir.path())
}

fn signed_serial_changes(port: u16, from: Option<u32>, timeout: Duration) -> u32 {
    let mut got = None;
    wait_until(timeout, || {
        got = soa_serial(port, ZONE);
        got.is_some() && got != from
    });
    got.unwrap_or_else(|| panic!("signet never served {ZONE}"))
}

#[test]
fn follows_knot_by_notify_and_ixfr() {
    require!(
        "knotd",
        "knotc",
        "named-compilezone",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck",
        "dig"
    );
    let dir = TempDir::new("up-knot");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let timers = "3600 600 604800 300";
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(1, 0, timers))
        .port(kport)
        .notify(port)
        .start(&dir);
    let conf = signet_conf(&dir, port, &key, kport, "");
    let signet = start_signet(&dir, &conf, "signet");
    let mut serial = signed_serial_changes(port, None, Duration::from_secs(30));
    for round in 1..=4u32 {
        let text = zone_text(1 + round, round, timers);
        knot.update_zone(ZONE, &text).unwrap();
        serial = signed_serial_changes(port, Some(serial), Duration::from_secs(30));
        let ours = axfr(port, ZONE, Some(&key));
        let theirs = axfr(kport, ZONE, Some(&key));
        assert_eq!(
            content(&ours, &dir, &format!("ours{round}")),
            content(&theirs, &dir, &format!("theirs{round}")),
            "round {round}: signed content differs from upstream"
        );
        let f = dir.join(format!("signed{round}.zone"));
        axfr_to_file(&ours, &f);
        ldns_verify_zone(&f).unwrap();
        kzonecheck(ZONE, &f).unwrap();
        let v = run_tool("dnssec-verify", &["-z", "-o", ZONE, &f.to_string_lossy()]);
        assert!(v.ok(), "{v}");
    }
    // the upstream served IXFR to us
    assert!(
        knot.proc().log().contains("IXFR, outgoing"),
        "knotd never served IXFR:\n{}",
        knot.proc().log_tail(30)
    );
    let log = signet.log();
    assert!(
        log.lines()
            .any(|l| l.contains("transferred from upstream") && l.contains("\"IXFR\"")),
        "signet log shows no incremental IXFR:\n{log}"
    );
}

#[test]
fn follows_named_upstream() {
    require!("named", "named-compilezone", "ldns-verify-zone", "dig");
    let dir = TempDir::new("up-named");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let nport = free_port();
    let timers = "3600 600 604800 300";
    let named = NamedPrimary::builder(&key)
        .zone(ZONE, &zone_text(10, 0, timers))
        .port(nport)
        .notify(port)
        .start(&dir);
    let conf = signet_conf(&dir, port, &key, nport, "");
    let _signet = start_signet(&dir, &conf, "signet");
    let mut serial = signed_serial_changes(port, None, Duration::from_secs(30));
    for round in 1..=2u32 {
        named.update_zone(ZONE, &zone_text(10 + round, round, timers));
        serial = signed_serial_changes(port, Some(serial), Duration::from_secs(30));
        let ours = axfr(port, ZONE, Some(&key));
        let theirs = axfr(nport, ZONE, Some(&key));
        assert_eq!(
            content(&ours, &dir, &format!("ours{round}")),
            content(&theirs, &dir, &format!("theirs{round}")),
        );
        let f = dir.join(format!("signed{round}.zone"));
        axfr_to_file(&ours, &f);
        ldns_verify_zone(&f).unwrap();
    }
}

/// No NOTIFY at all: the change arrives by SOA refresh (REFRESH = 2 s), in real time.
#[test]
fn refresh_without_notify_real_time() {
    require!("knotd", "knotc", "dig");
    let dir = TempDir::new("up-refresh");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let timers = "2 2 3600 300";
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(1, 0, timers))
        .port(kport)
        .start(&dir);
    let conf = signet_conf(&dir, port, &key, kport, "");
    let signet = start_signet(&dir, &conf, "signet");
    let serial = signed_serial_changes(port, None, Duration::from_secs(30));
    knot.update_zone(ZONE, &zone_text(2, 1, timers)).unwrap();
    signed_serial_changes(port, Some(serial), Duration::from_secs(20));
    assert!(!signet.log().contains("NOTIFY received"));
}

/// Restart with upstream down: the signed zone is served within a second of start, and the
/// zone keeps trying upstream.
#[test]
fn restart_with_upstream_down_serves_at_once() {
    require!("knotd", "knotc", "dig");
    let dir = TempDir::new("up-restart");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(5, 0, "3600 600 604800 300"))
        .port(kport)
        .start(&dir);
    let conf = signet_conf(&dir, port, &key, kport, "");
    let signet = start_signet(&dir, &conf, "signet");
    let serial = signed_serial_changes(port, None, Duration::from_secs(30));
    drop(signet);
    drop(knot);
    let t0 = std::time::Instant::now();
    let again = start_signet(&dir, &conf, "signet-restart");
    wait_serial(port, ZONE, serial, Duration::from_secs(10)).unwrap();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "restart took {took:?} to serve (the check is generous: the goal is under a second)"
    );
    again
        .wait_for_log("refresh from upstream failed", Duration::from_secs(20))
        .unwrap();
}

// ------------------------------------------------------------------------------------------
// simulated clock

struct Sim {
    task: ZoneTask,
    clock: SimClock,
    publisher: Arc<Publisher>,
    origin: Name,
}

fn sim(dir: &TempDir, kport: u16, key: &TsigKey, expire_mode: &str) -> Sim {
    let conf = signet_conf(
        dir,
        0,
        key,
        kport,
        &format!("on-upstream-expire = \"{expire_mode}\""),
    );
    let cfg = signet::config::load(&conf).unwrap();
    let clock = SimClock::new(signet::clock::SystemClock.now());
    let publisher = Arc::new(Publisher::new(Arc::new(clock.clone())));
    publisher.set_keys(signet::auth::Keyring::from_config(cfg.tsig.values()).unwrap());
    let zcfg = cfg.zones[0].clone();
    let (mut task, _status) = ZoneTask::new(
        Arc::new(cfg),
        zcfg,
        publisher.clone(),
        Arc::new(clock.clone()),
    )
    .unwrap();
    task.limits.connect_timeout = Duration::from_millis(500);
    task.start();
    Sim {
        task,
        clock,
        publisher,
        origin: Name::parse(&format!("{ZONE}."), None).unwrap(),
    }
}

impl Sim {
    /// Steps the clock event by event up to `until`, ticking the task at each.
    async fn run_until(&mut self, until: u64) -> usize {
        let mut ticks = 0;
        loop {
            let next = self.task.next_due().unwrap_or(until).max(self.clock.now());
            if next > until {
                self.clock.set(until);
                self.task.tick().await;
                return ticks;
            }
            self.clock.set(next);
            self.task.tick().await;
            ticks += 1;
            assert!(ticks < 100_000, "runaway schedule");
        }
    }

    /// The served zone validates now (our verifier and kzonecheck at the simulated time).
    fn assert_served_valid(&self, dir: &TempDir) {
        let served = self
            .publisher
            .get(&self.origin)
            .unwrap_or_else(|| panic!("zone not served at {}", self.clock.now()));
        let now = self.clock.now();
        let problems = signet::signer::verify::check_zone(&served.zone, now, true);
        assert!(problems.is_empty(), "at {now}: {problems:?}");
        let f = dir.join("served.zone");
        let mut out = Vec::new();
        signet::zonefile::write_zone(&mut out, &served.zone).unwrap();
        std::fs::write(&f, out).unwrap();
        let r = kzonecheck_at(ZONE, &f, now);
        assert!(r.ok(), "kzonecheck at {now}: {r}");
    }
}

const DAY: u64 = 86_400;

fn expire_scenario(mode: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = TempDir::new(&format!("up-expire-{mode}"));
        let key = TsigKey::generate("xfr-key");
        let kport = free_port();
        // REFRESH 1h, RETRY 10m, EXPIRE 2 days
        let timers = "3600 600 172800 300";
        let knot = KnotPrimary::builder(&key)
            .zone(ZONE, &zone_text(1, 0, timers))
            .port(kport)
            .start(&dir);
        let mut s = sim(&dir, kport, &key, mode);
        s.task.tick().await;
        assert!(
            s.publisher.get(&s.origin).is_some(),
            "first transfer failed: {:?}",
            s.task.status()
        );
        s.assert_served_valid(&dir);
        drop(knot); // upstream gone
        let t0 = s.clock.now();
        // past EXPIRE
        s.run_until(t0 + 3 * DAY).await;
        let st = s.task.status();
        assert!(st.stale, "not stale after EXPIRE: {st:?}");
        if mode == "withdraw" {
            assert!(
                s.publisher.get(&s.origin).is_none(),
                "withdraw: still served after EXPIRE"
            );
        } else {
            s.assert_served_valid(&dir);
            // many times the signature validity (14 days): still re-signed and valid
            for k in 1..=6u64 {
                s.run_until(t0 + 3 * DAY + k * 10 * DAY).await;
                s.assert_served_valid(&dir);
            }
            assert!(s.task.status().stale);
        }
        // upstream back: recovery without operator action
        let _knot2 = KnotPrimary::builder(&key)
            .zone(ZONE, &zone_text(2, 1, timers))
            .port(kport)
            .start(&dir);
        let now = s.clock.now();
        s.run_until(now + 2 * 3600).await;
        let st = s.task.status();
        assert!(!st.stale, "still stale after upstream came back: {st:?}");
        assert_eq!(st.upstream_serial, Some(2), "{st:?}");
        s.assert_served_valid(&dir);
    });
}

#[test]
fn expire_keep_serving_sim_clock() {
    require!("knotd", "knotc", "kzonecheck");
    expire_scenario("keep-serving");
}

#[test]
fn expire_withdraw_sim_clock() {
    require!("knotd", "knotc", "kzonecheck");
    expire_scenario("withdraw");
}

/// Withdrawn past EXPIRE for longer than the signatures live, then upstream answers again with
/// the same serial ("up to date"): the version kept while withdrawn has expired signatures and
/// must not be served again as it is; the re-sign due at once serves a valid one.
#[test]
fn a_withdrawn_version_whose_signatures_expired_is_not_served_again() {
    require!("knotd", "knotc", "kzonecheck");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = TempDir::new("up-withdraw-expired");
        let key = TsigKey::generate("xfr-key");
        let kport = free_port();
        let timers = "3600 600 172800 300";
        let knot = KnotPrimary::builder(&key)
            .zone(ZONE, &zone_text(1, 0, timers))
            .port(kport)
            .start(&dir);
        let mut s = sim(&dir, kport, &key, "withdraw");
        s.task.tick().await;
        s.assert_served_valid(&dir);
        drop(knot);
        let t0 = s.clock.now();
        // withdrawn after 2 days; the 14-day signatures are expired by day 20
        s.run_until(t0 + 20 * DAY).await;
        assert!(s.publisher.get(&s.origin).is_none(), "not withdrawn");
        let _knot2 = KnotPrimary::builder(&key)
            .zone(ZONE, &zone_text(1, 0, timers))
            .port(kport)
            .start(&dir);
        let msg = s
            .task
            .handle(signet::zone::status::ZoneCmdKind::Reload)
            .await
            .unwrap();
        assert!(msg.starts_with("up to date"), "{msg}");
        if let Some(served) = s.publisher.get(&s.origin) {
            let problems = signet::signer::verify::check_zone(&served.zone, s.clock.now(), true);
            assert!(
                problems.is_empty(),
                "served again with expired signatures: {problems:?}"
            );
        }
        s.task.tick().await;
        s.assert_served_valid(&dir);
    });
}

/// The wiring of EXPIRE in real time (EXPIRE = 4 s): upstream stops, `signet status --json`
/// reports the zone stale and still served, and it still answers; the upstream comes back and
/// the zone is fresh again without operator action.
#[test]
fn expire_real_time_reported_by_status() {
    require!("knotd", "knotc", "dig");
    let dir = TempDir::new("up-expire-rt");
    let key = TsigKey::generate("xfr-key");
    let port = free_port();
    let kport = free_port();
    let timers = "2 2 4 300";
    let knot = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(1, 0, timers))
        .port(kport)
        .start(&dir);
    let conf = signet_conf(&dir, port, &key, kport, "");
    let _signet = start_signet(&dir, &conf, "signet");
    let serial = signed_serial_changes(port, None, Duration::from_secs(30));
    let status = || -> serde_json::Value {
        let out = run(
            Command::new(signet_bin()).args([
                "status",
                "-c",
                &conf.to_string_lossy(),
                ZONE,
                "--json",
            ]),
            Duration::from_secs(10),
        );
        assert!(out.ok(), "{out}");
        let v: serde_json::Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
        v["zones"][0].clone()
    };
    assert_eq!(status()["stale"], false);
    drop(knot);
    assert!(
        wait_until(Duration::from_secs(20), || status()["stale"] == true),
        "never reported stale: {}",
        status()
    );
    let st = status();
    assert_eq!(st["served"], true, "{st}");
    assert_eq!(soa_serial(port, ZONE), Some(serial));
    let _knot2 = KnotPrimary::builder(&key)
        .zone(ZONE, &zone_text(2, 1, timers))
        .port(kport)
        .start(&dir);
    assert!(
        wait_until(Duration::from_secs(20), || status()["stale"] == false),
        "still stale after upstream came back: {}",
        status()
    );
    assert_eq!(status()["upstream_serial"], 2);
}
