//! The control socket on its own: a [`ControlServer`] over a [`Registry`] of fake zone tasks
//! (tokio tasks that own a `watch::Sender<ZoneStatus>` and answer `ZoneCmd`s the way the real
//! ones do), a [`Publisher`] serving a zone with a hand-made DNSKEY RRset, and a reload task.
//! Checked: every command answers from the tasks' real state (a status change shows, a command's
//! answer is the task's own, errors included); DS from the served SEP keys only; malformed,
//! unknown, over-long and incomplete requests; the connection limit and the timeouts; socket
//! file handling (mode 0600, stale socket replaced, live one and non-socket refused, removed at
//! shutdown); the blocking client; and the `signet` CLI against this server (text, `--json`,
//! exit codes).

mod common;

use common::*;
use serde_json::{json, Value};
use signet::clock::SimClock;
use signet::config::{self, Config};
use signet::control::client::{Client, ClientError};
use signet::control::{
    ds_records, ControlContext, ControlServer, Limits, ReloadRequest, Request, MAX_REQUEST_LINE,
};
use signet::dns::name::Name;
use signet::dns::rtype::t;
use signet::keystore;
use signet::publisher::{Publisher, Served};
use signet::zone::data::{Node, RRset, Zone};
use signet::zone::status::{
    normalise, KeyStatus, Registry, ScheduledEvent, ZoneCmd, ZoneCmdKind, ZoneHandle, ZoneStatus,
};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, watch};

/// The server's clock: 2024-01-01T00:00:00Z.
const NOW: u64 = 1_704_067_200;

const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:5353"]
state-dir = "state"

[policy.two]
cds-digest-types = ["sha256", "sha384"]

[[zone]]
name = "example.org"
policy = "two"
file = "example.org.zone"

[[zone]]
name = "example.net"
file = "example.net.zone"
"#;

fn status_of(zone: &str, serial: u32) -> ZoneStatus {
    ZoneStatus {
        zone: zone.to_string(),
        source: format!("file /zones/{zone}zone"),
        upstream_serial: Some(serial),
        signed_serial: Some(serial),
        served: true,
        last_refresh: Some(NOW - 120),
        last_refresh_result: Some("ok".into()),
        last_success: Some(NOW - 120),
        next_refresh: Some(NOW + 2700),
        upstream_expires: None,
        stale: false,
        alarm: None,
        earliest_signature_expiry: Some(NOW + 13 * 86400),
        next_resign: Some(NOW + 8 * 86400),
        keys: vec![KeyStatus {
            tag: 4711,
            role: "csk".into(),
            algorithm: 13,
            keystore: "files".into(),
            state: "active".into(),
            created: NOW - 86400,
            published: Some(NOW - 86400),
            active: Some(NOW - 86400),
            retired: None,
            removed: None,
            ..Default::default()
        }],
        events: vec![
            ScheduledEvent {
                event: "refresh".into(),
                at: NOW + 2700,
            },
            ScheduledEvent {
                event: "resign".into(),
                at: NOW + 8 * 86400,
            },
        ],
        waiting_for: Vec::new(),
        want_ds: None,
        parent_ds: None,
    }
}

/// A fake zone task: `resign` bumps the signed serial and publishes the new status before
/// answering; `retransfer` fails like an unreachable upstream; `notify` answers; every command
/// is logged in `seen`.
fn fake_zone(
    registry: &Registry,
    zone: &str,
    serial: u32,
    seen: Arc<Mutex<Vec<ZoneCmdKind>>>,
) -> watch::Sender<ZoneStatus> {
    let (stx, srx) = watch::channel(status_of(&normalise(zone), serial));
    let (ctx, mut crx) = mpsc::channel::<ZoneCmd>(8);
    registry.insert(
        zone,
        ZoneHandle {
            status: srx,
            cmd: ctx,
        },
    );
    let tx = stx.clone();
    tokio::spawn(async move {
        while let Some(cmd) = crx.recv().await {
            if let Ok(mut s) = seen.lock() {
                s.push(cmd.kind);
            }
            let answer = match cmd.kind {
                ZoneCmdKind::Resign => {
                    let mut n = 0;
                    tx.send_modify(|s| {
                        n = s.signed_serial.unwrap_or(0) + 1;
                        s.signed_serial = Some(n);
                    });
                    Ok(format!("re-signed, serial {n}"))
                }
                ZoneCmdKind::Retransfer => {
                    Err("upstream 192.0.2.1:53: connection refused".to_string())
                }
                ZoneCmdKind::Notify => Ok("NOTIFY sent to 1 secondary".to_string()),
                ZoneCmdKind::Reload => Ok("up to date".to_string()),
                _ => Ok("done".to_string()),
            };
            if let Some(r) = cmd.reply {
                let _ = r.send(answer);
            }
        }
    });
    stx
}

fn dnskey(flags: u16, seed: u8) -> Vec<u8> {
    keystore::dnskey_rdata(flags, 13, &[seed; 64])
}

/// The DNSKEY RRset the publisher serves for example.org: a KSK, a ZSK, a revoked KSK and a
/// second KSK.
fn served_dnskeys() -> Vec<Vec<u8>> {
    vec![
        dnskey(257, 1),
        dnskey(256, 2),
        dnskey(257 | 0x80, 3),
        dnskey(257, 4),
    ]
}

fn served_zone(origin: &str, keys: Vec<Vec<u8>>) -> Arc<Served> {
    let origin = Name::parse(origin, None).unwrap();
    let mut zone = Zone::new(origin.clone());
    let mut apex = Node::default();
    apex.put(RRset {
        rtype: t::DNSKEY,
        ttl: 3600,
        rdatas: keys,
    });
    zone.nodes.insert(origin, apex);
    Arc::new(Served::new(zone, Vec::new()))
}

struct Harness {
    dir: TempDir,
    sock: PathBuf,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    seen: Arc<Mutex<Vec<ZoneCmdKind>>>,
    org: watch::Sender<ZoneStatus>,
    registry: Arc<Registry>,
}

impl Harness {
    async fn start(label: &str, limits: Limits) -> Harness {
        Harness::start_with(label, limits, true).await
    }

    /// `reload_works`: a reload task answers (first ok, then a refusal), or there is none.
    async fn start_with(label: &str, limits: Limits, reload_works: bool) -> Harness {
        let dir = TempDir::new(label);
        let sock = dir.join("run/control.sock");
        let cfg: Config = config::parse_str(CONFIG, Path::new("test.toml")).unwrap();
        let registry = Arc::new(Registry::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let org = fake_zone(&registry, "example.org", 2024010101, seen.clone());
        let _net = fake_zone(&registry, "example.net.", 7, seen.clone());
        let publisher = Arc::new(Publisher::new(Arc::new(SimClock::new(NOW))));
        publisher.publish(served_zone("example.org.", served_dnskeys()));
        let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(2);
        if reload_works {
            tokio::spawn(async move {
                let mut n = 0;
                while let Some(reply) = reload_rx.recv().await {
                    n += 1;
                    let _ = reply.send(if n == 1 {
                        Ok("configuration reloaded: 2 zones (0 added, 0 removed)".into())
                    } else {
                        Err(
                            "test.toml:3: unknown key \"lisen\"; keeping the running configuration"
                                .into(),
                        )
                    });
                }
            });
        } else {
            drop(reload_rx);
        }
        let ctx = Arc::new(ControlContext {
            registry: registry.clone(),
            publisher,
            config: watch::channel(Arc::new(cfg)).1,
            reload: reload_tx,
        });
        let server = ControlServer::bind(&sock).unwrap().with_limits(limits);
        let (stop, stop_rx) = watch::channel(false);
        let server = tokio::spawn(server.run(ctx, stop_rx));
        Harness {
            dir,
            sock,
            stop,
            server,
            seen,
            org,
            registry,
        }
    }

    async fn connect(&self) -> Conn {
        let s = UnixStream::connect(&self.sock).await.unwrap();
        let (r, w) = s.into_split();
        Conn {
            r: BufReader::new(r),
            w,
        }
    }

    /// One request on a fresh connection; the parsed response.
    async fn ask(&self, line: &str) -> Value {
        let mut c = self.connect().await;
        c.send(line).await;
        c.recv().await.expect("no response")
    }

    async fn cmd(&self, cmd: &str, zone: Option<&str>) -> Value {
        self.ask(&serde_json::to_string(&Request::new(cmd, zone)).unwrap())
            .await
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(5), self.server)
            .await
            .expect("server did not stop")
            .unwrap();
    }
}

struct Conn {
    r: BufReader<tokio::net::unix::OwnedReadHalf>,
    w: tokio::net::unix::OwnedWriteHalf,
}

impl Conn {
    async fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).await.unwrap();
        self.w.write_all(b"\n").await.unwrap();
    }

    /// The next response line, or None at EOF.
    async fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.r.read_line(&mut line))
            .await
            .expect("no response within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        assert!(
            line.ends_with('\n'),
            "response not newline-terminated: {line:?}"
        );
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad response {line:?}: {e}")))
    }
}

fn error_of(v: &Value) -> &str {
    assert_eq!(v["ok"], json!(false), "expected an error: {v}");
    assert!(v.get("data").is_none(), "{v}");
    v["error"].as_str().expect("error message")
}

fn data_of(v: &Value) -> &Value {
    assert_eq!(v["ok"], json!(true), "expected success: {v}");
    &v["data"]
}

#[tokio::test]
async fn status_is_the_zone_tasks_state() {
    let h = Harness::start("ctl-status", Limits::default()).await;
    let all = h.cmd("status", None).await;
    let d = data_of(&all);
    assert_eq!(d["now"], json!(NOW));
    let zones = d["zones"].as_array().unwrap();
    let names: Vec<&str> = zones.iter().map(|z| z["zone"].as_str().unwrap()).collect();
    assert_eq!(names, ["example.net.", "example.org."]);
    // every field of ZoneStatus, as the task published it
    let org = serde_json::to_value(status_of("example.org.", 2024010101)).unwrap();
    assert_eq!(zones[1], org);

    // one zone, any case, with or without the final dot
    for q in ["example.org", "EXAMPLE.org.", " example.org "] {
        let one = h.cmd("status", Some(q)).await;
        assert_eq!(data_of(&one)["zones"], json!([org]), "{q}");
    }

    // a change of state in the task shows at once: read, never cached or echoed
    h.org.send_modify(|s| {
        s.stale = true;
        s.last_refresh_result = Some("SOA query timed out".into());
        s.upstream_serial = Some(2024010199);
    });
    let one = h.cmd("status", Some("example.org")).await;
    let z = &data_of(&one)["zones"][0];
    assert_eq!(z["stale"], json!(true));
    assert_eq!(z["upstream_serial"], json!(2024010199));
    assert_eq!(z["last_refresh_result"], json!("SOA query timed out"));

    // unknown zone
    let e = h.cmd("status", Some("nope.example")).await;
    assert_eq!(error_of(&e), "zone nope.example. is not configured");
    // a removed zone disappears
    h.registry.remove("example.net");
    let all = h.cmd("status", None).await;
    assert_eq!(data_of(&all)["zones"].as_array().unwrap().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn keys_are_the_zone_status_keys() {
    let h = Harness::start("ctl-keys", Limits::default()).await;
    let r = h.cmd("keys", Some("example.org")).await;
    let d = data_of(&r);
    assert_eq!(d["zone"], json!("example.org."));
    assert_eq!(d["now"], json!(NOW));
    assert_eq!(
        d["keys"],
        serde_json::to_value(&status_of("x.", 1).keys).unwrap()
    );
    assert_eq!(error_of(&h.cmd("keys", None).await), "`keys` needs a zone");
    assert_eq!(
        error_of(&h.cmd("keys", Some("nope.")).await),
        "zone nope. is not configured"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn ds_from_the_served_sep_keys() {
    let h = Harness::start("ctl-ds", Limits::default()).await;
    let r = h.cmd("ds", Some("Example.ORG")).await;
    let d = data_of(&r);
    assert_eq!(d["zone"], json!("example.org."));
    let ds = d["ds"].as_array().unwrap();
    // two KSKs (the ZSK and the revoked KSK have none) x sha256 and sha384 from the policy
    let keys = served_dnskeys();
    let ksk_tags = [keystore::key_tag(&keys[0]), keystore::key_tag(&keys[3])];
    let mut want: Vec<(u64, u64)> = ksk_tags
        .iter()
        .flat_map(|&t| [(t as u64, 2), (t as u64, 4)])
        .collect();
    want.sort();
    let got: Vec<(u64, u64)> = ds
        .iter()
        .map(|x| {
            (
                x["tag"].as_u64().unwrap(),
                x["digest_type"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // each is exactly the DS of that DNSKEY
    let origin = Name::parse("example.org.", None).unwrap();
    let expect = ds_records(&origin, 3600, &[keys[0].clone(), keys[3].clone()], &[2, 4]).unwrap();
    assert_eq!(serde_json::to_value(&expect).unwrap(), json!(ds));
    for x in ds {
        let rec = x["record"].as_str().unwrap();
        assert!(rec.starts_with("example.org.\t3600\tIN\tDS\t"), "{rec}");
        let hex = x["digest"].as_str().unwrap();
        assert_eq!(hex.len(), if x["digest_type"] == 2 { 64 } else { 96 });
        assert!(rec.ends_with(hex), "{rec} / {hex}");
        assert_eq!(x["algorithm"], json!(13));
    }
    let sha256 = ds.iter().find(|x| x["digest_type"] == 2).unwrap();
    let direct = keystore::ds_rdata(&origin.canonical_wire(), &keys[0], 2).unwrap();
    let direct_hex: String = direct[4..].iter().map(|b| format!("{b:02X}")).collect();
    assert!(
        ds.iter().any(|x| x["digest"] == json!(direct_hex)),
        "{sha256}"
    );

    // configured but not served: a clear error, not an empty list
    let e = h.cmd("ds", Some("example.net")).await;
    assert!(error_of(&e).contains("example.net. is not served"), "{e}");
    let e = h.cmd("ds", Some("nope.example")).await;
    assert_eq!(error_of(&e), "zone nope.example. is not configured");
    assert_eq!(error_of(&h.cmd("ds", None).await), "`ds` needs a zone");
    h.shutdown().await;
}

#[tokio::test]
async fn zone_commands_answer_with_the_tasks_outcome() {
    let h = Harness::start("ctl-cmds", Limits::default()).await;
    let r = h.cmd("resign", Some("example.org")).await;
    let d = data_of(&r);
    assert_eq!(d["zone"], json!("example.org."));
    assert_eq!(d["result"], json!("re-signed, serial 2024010102"));
    // the status after the command is the task's, with the new serial
    assert_eq!(d["status"]["signed_serial"], json!(2024010102));
    let s = h.cmd("status", Some("example.org")).await;
    assert_eq!(data_of(&s)["zones"][0]["signed_serial"], json!(2024010102));

    // the task's failure is the answer
    let r = h.cmd("retransfer", Some("example.org")).await;
    assert_eq!(error_of(&r), "upstream 192.0.2.1:53: connection refused");

    let r = h.cmd("notify", Some("example.net")).await;
    assert_eq!(data_of(&r)["result"], json!("NOTIFY sent to 1 secondary"));

    assert_eq!(
        *h.seen.lock().unwrap(),
        [
            ZoneCmdKind::Resign,
            ZoneCmdKind::Retransfer,
            ZoneCmdKind::Notify
        ]
    );
    for c in ["retransfer", "resign", "notify"] {
        assert_eq!(
            error_of(&h.cmd(c, None).await),
            format!("`{c}` needs a zone")
        );
        assert_eq!(
            error_of(&h.cmd(c, Some("nope.example")).await),
            "zone nope.example. is not configured"
        );
    }
    assert_eq!(h.seen.lock().unwrap().len(), 3, "no command reached a task");
    h.shutdown().await;
}

#[tokio::test]
async fn stopped_and_silent_zone_tasks() {
    let limits = Limits {
        command_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let h = Harness::start("ctl-stopped", limits).await;
    // a task that has stopped (its command receiver is gone)
    let (_stx, srx) = watch::channel(status_of("gone.example.", 1));
    let (ctx, crx) = mpsc::channel::<ZoneCmd>(1);
    drop(crx);
    h.registry.insert(
        "gone.example",
        ZoneHandle {
            status: srx,
            cmd: ctx,
        },
    );
    let e = h.cmd("resign", Some("gone.example")).await;
    assert!(error_of(&e).contains("its task has stopped"), "{e}");
    // a task that takes the command and never answers: the command timeout, then an error
    let (_stx2, srx2) = watch::channel(status_of("slow.example.", 1));
    let (ctx2, mut crx2) = mpsc::channel::<ZoneCmd>(1);
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(c) = crx2.recv().await {
            held.push(c);
        }
    });
    h.registry.insert(
        "slow.example",
        ZoneHandle {
            status: srx2,
            cmd: ctx2,
        },
    );
    let t0 = std::time::Instant::now();
    let e = h.cmd("resign", Some("slow.example")).await;
    assert!(error_of(&e).contains("no answer to resign within"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    // the status still answers
    let s = h.cmd("status", Some("slow.example")).await;
    assert_eq!(data_of(&s)["zones"][0]["zone"], json!("slow.example."));
    hold.abort();
    h.shutdown().await;
}

#[tokio::test]
async fn reload_answers_with_the_reload_tasks_outcome() {
    let h = Harness::start("ctl-reload", Limits::default()).await;
    let r = h.cmd("reload", None).await;
    assert_eq!(
        data_of(&r)["result"],
        json!("configuration reloaded: 2 zones (0 added, 0 removed)")
    );
    let r = h.cmd("reload", None).await;
    assert!(
        error_of(&r).contains("keeping the running configuration"),
        "{r}"
    );
    h.shutdown().await;

    let h = Harness::start_with("ctl-noreload", Limits::default(), false).await;
    let r = h.cmd("reload", None).await;
    assert!(error_of(&r).contains("reload is not available"), "{r}");
    h.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_an_error_and_the_connection_goes_on() {
    let h = Harness::start("ctl-malformed", Limits::default()).await;
    let mut c = h.connect().await;
    for (line, needle) in [
        ("", "empty request"),
        ("   ", "empty request"),
        ("{", "malformed request"),
        ("not json", "malformed request"),
        ("[1,2,3]", "malformed request"),
        ("42", "malformed request"),
        ("null", "malformed request"),
        (r#"{"zone":"example.org"}"#, "malformed request"),
        (r#"{"cmd":5}"#, "malformed request"),
        (r#"{"cmd":"status","zone":17}"#, "malformed request"),
        (r#"{"cmd":"frobnicate"}"#, "unknown command \"frobnicate\""),
        (r#"{"cmd":"STATUS"}"#, "unknown command"),
        (r#"{"cmd":"keys","zone":""}"#, "`keys` needs a zone"),
        (r#"{"cmd":"keys","zone":null}"#, "`keys` needs a zone"),
        (r#"{"cmd":"ds","zone":"a..b"}"#, "is not configured"),
    ] {
        c.send(line).await;
        let v = c.recv().await.expect("connection closed");
        let e = error_of(&v);
        assert!(e.contains(needle), "{line:?} → {e:?}");
    }
    // not UTF-8
    c.w.write_all(b"{\"cmd\":\"st\xffatus\"}\n").await.unwrap();
    assert_eq!(error_of(&c.recv().await.unwrap()), "request is not UTF-8");
    // a huge unknown command name is not echoed back whole
    let long = "x".repeat(10_000);
    c.send(&format!(r#"{{"cmd":"{long}"}}"#)).await;
    let v = c.recv().await.unwrap();
    assert!(error_of(&v).len() < 400, "{v}");
    // unknown extra fields are ignored; the connection is still good
    c.send(r#"{"cmd":"status","zone":null,"extra":[1]}"#).await;
    let v = c.recv().await.unwrap();
    assert_eq!(data_of(&v)["zones"].as_array().unwrap().len(), 2);
    // several requests in one write, answered in order
    c.w.write_all(b"{\"cmd\":\"keys\",\"zone\":\"example.org\"}\n{\"cmd\":\"nope\"}\n{\"cmd\":\"status\",\"zone\":\"example.net\"}\n")
        .await
        .unwrap();
    assert_eq!(
        data_of(&c.recv().await.unwrap())["zone"],
        json!("example.org.")
    );
    assert!(error_of(&c.recv().await.unwrap()).contains("unknown command"));
    assert_eq!(
        data_of(&c.recv().await.unwrap())["zones"][0]["zone"],
        json!("example.net.")
    );
    // a last request without newline, then EOF: answered, then closed
    c.w.write_all(br#"{"cmd":"status","zone":"example.org"}"#)
        .await
        .unwrap();
    c.w.shutdown().await.unwrap();
    assert_eq!(
        data_of(&c.recv().await.unwrap())["zones"][0]["zone"],
        json!("example.org.")
    );
    assert!(c.recv().await.is_none());
    h.shutdown().await;
}

#[tokio::test]
async fn over_long_lines_are_refused_and_the_connection_closed() {
    let h = Harness::start("ctl-long", Limits::default()).await;
    // exactly at the limit (newline included): accepted
    let pad = MAX_REQUEST_LINE - r#"{"cmd":"status","zone":null,"p":""}"#.len() - 1;
    let line = format!(
        r#"{{"cmd":"status","zone":null,"p":"{}"}}"#,
        "a".repeat(pad)
    );
    assert_eq!(line.len() + 1, MAX_REQUEST_LINE);
    let v = h.ask(&line).await;
    assert!(data_of(&v)["zones"].is_array());
    // one byte more: refused, closed, and the server keeps serving
    let line = format!(
        r#"{{"cmd":"status","zone":null,"p":"{}"}}"#,
        "a".repeat(pad + 1)
    );
    let mut c = h.connect().await;
    let big = tokio::spawn(async move {
        // the server may close before reading everything: ignore write errors
        let _ = c.w.write_all(line.as_bytes()).await;
        let _ = c.w.write_all(b"\n").await;
        c
    });
    let mut c = big.await.unwrap();
    let v = c.recv().await.expect("an error line before closing");
    assert!(
        error_of(&v).contains(&format!("longer than {MAX_REQUEST_LINE} bytes")),
        "{v}"
    );
    assert!(c.recv().await.is_none(), "connection not closed");
    // megabytes without a newline: the same, without the server buffering them
    let mut c = h.connect().await;
    let flood = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..64 {
            if c.w.write_all(&chunk).await.is_err() {
                break;
            }
        }
        c
    });
    let mut c = flood.await.unwrap();
    let v = c.recv().await.expect("an error line before closing");
    assert!(error_of(&v).contains("longer than"), "{v}");
    let v = h.cmd("status", Some("example.org")).await;
    assert!(data_of(&v)["zones"].is_array());
    h.shutdown().await;
}

#[tokio::test]
async fn idle_connections_time_out_and_the_connection_limit_holds() {
    let limits = Limits {
        read_timeout: Duration::from_millis(500),
        max_connections: 3,
        ..Limits::default()
    };
    let h = Harness::start("ctl-limits", limits).await;
    // three idle connections take every slot
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(h.connect().await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v = h.cmd("status", None).await;
    assert!(
        error_of(&v).contains("too many control connections (at most 3)"),
        "{v}"
    );
    // each idle one is told and closed after the read timeout, freeing its slot
    for c in &mut idle {
        let v = c.recv().await.expect("a timeout line");
        assert!(error_of(&v).contains("no request within"), "{v}");
        assert!(c.recv().await.is_none());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let v = h.cmd("status", None).await;
    assert_eq!(data_of(&v)["zones"].as_array().unwrap().len(), 2);
    h.shutdown().await;
}

#[tokio::test]
async fn connection_lifetime_is_bounded() {
    let limits = Limits {
        read_timeout: Duration::from_millis(400),
        connection_timeout: Duration::from_millis(1000),
        ..Limits::default()
    };
    let h = Harness::start("ctl-lifetime", limits).await;
    let mut c = h.connect().await;
    let t0 = std::time::Instant::now();
    // a client that keeps asking within the read timeout is still cut off
    loop {
        // the server may have closed already
        let _ = c.w.write_all(b"{\"cmd\":\"status\"}\n").await;
        match c.recv().await {
            Some(v) => assert!(data_of(&v)["zones"].is_array()),
            None => break,
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "never cut off");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(t0.elapsed() >= Duration::from_millis(900));
    h.shutdown().await;
}

#[tokio::test]
async fn socket_file_handling() {
    let h = Harness::start("ctl-socket", Limits::default()).await;
    let meta = std::fs::metadata(&h.sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // no temporary name left behind
    let names: Vec<String> = std::fs::read_dir(h.sock.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["control.sock"]);
    // a second server on the same path: refused, the first keeps its socket
    let e = ControlServer::bind(&h.sock)
        .err()
        .expect("second bind refused");
    assert!(e.contains("another signet is already listening"), "{e}");
    assert!(data_of(&h.cmd("status", None).await)["zones"].is_array());
    // shutdown removes it
    let sock = h.sock.clone();
    h.shutdown().await;
    assert!(!sock.exists(), "socket left at {}", sock.display());

    // a stale socket (nobody listening) is replaced
    let dir = TempDir::new("ctl-stale");
    let p = dir.join("control.sock");
    drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
    assert!(p.exists());
    let s = ControlServer::bind(&p).expect("stale socket replaced");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    drop(s);
    // a regular file is never removed
    let f = dir.write("not-a-socket", "precious");
    let e = ControlServer::bind(&f).err().expect("refused");
    assert!(e.contains("exists and is not a socket"), "{e}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "precious");
    // missing parent directories are created
    let deep = dir.join("a/b/c.sock");
    assert!(ControlServer::bind(&deep).is_ok());
    // a path too long for sun_path: a clear error
    let long = dir.join("x".repeat(120));
    let e = ControlServer::bind(&long).err().expect("refused");
    assert!(e.contains("path too long"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client() {
    let h = Harness::start("ctl-client", Limits::default()).await;
    let sock = h.sock.clone();
    let r = tokio::task::spawn_blocking(move || {
        let c = Client::new(&sock).with_config_hint("/etc/signet.toml");
        let ok = c.call(
            &Request::new("status", Some("example.org")),
            Duration::from_secs(10),
        );
        let err = c.call(
            &Request::new("keys", Some("nope.")),
            Duration::from_secs(10),
        );
        (ok, err)
    })
    .await
    .unwrap();
    let ok = r.0.unwrap();
    assert_eq!(ok["zones"][0]["zone"], json!("example.org."));
    assert_eq!(
        r.1.unwrap_err(),
        ClientError::Server("zone nope. is not configured".into())
    );
    let gone = h.dir.join("nobody.sock");
    let e = Client::new(&gone)
        .with_config_hint("/etc/signet.toml")
        .call(&Request::new("status", None), Duration::from_secs(5))
        .unwrap_err();
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("cannot reach signet at {}: ", gone.display())),
        "{msg}"
    );
    assert!(
        msg.ends_with("— is `signet serve -c /etc/signet.toml` running?"),
        "{msg}"
    );
    h.shutdown().await;

    // a server that accepts and never answers: the client's deadline
    let dir = TempDir::new("ctl-mute");
    let p = dir.join("mute.sock");
    let l = std::os::unix::net::UnixListener::bind(&p).unwrap();
    let e = tokio::task::spawn_blocking(move || {
        Client::new(&p).call(&Request::new("status", None), Duration::from_millis(300))
    })
    .await
    .unwrap()
    .unwrap_err();
    assert!(e.to_string().contains("no answer within 0.3s"), "{e}");
    drop(l);
}

/// The `signet` binary against the in-process server, with `--socket`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_text_json_and_exit_codes() {
    let h = Harness::start("ctl-cli", Limits::default()).await;
    h.org.send_modify(|s| {
        s.source = "primaries 192.0.2.1:53".into();
        s.last_success = Some(NOW - 8 * 86400);
        s.last_refresh_result = Some("SOA query: timed out".into());
        s.upstream_expires = Some(NOW - 86400);
        s.stale = true;
        s.alarm = Some("upstream silent past SOA EXPIRE".into());
    });
    let sock = h.sock.to_string_lossy().into_owned();
    let cli = move |args: &[&str]| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.push("--socket".into());
        a.push(sock.clone());
        run(
            Command::new(signet_bin()).args(&a).env("SIGNET_LOG", "off"),
            Duration::from_secs(30),
        )
    };
    let outs = tokio::task::spawn_blocking(move || {
        vec![
            cli(&["status"]),
            cli(&["status", "example.org", "--json"]),
            cli(&["status", "nope.example"]),
            cli(&["keys", "example.org"]),
            cli(&["ds", "example.org"]),
            cli(&["ds", "example.org", "--json"]),
            cli(&["resign", "example.org"]),
            cli(&["retransfer", "example.org"]),
            cli(&["notify", "example.net", "--json"]),
            cli(&["reload"]),
            cli(&["reload"]),
        ]
    })
    .await
    .unwrap();
    let [status, status_json, unknown, keys, ds, ds_json, resign, retransfer, notify, reload, reload_bad] =
        <[common::Output; 11]>::try_from(outs).unwrap();

    let text = status.clone().expect_ok();
    assert!(text.contains("example.net.\n  source"), "{text}");
    assert!(
        text.contains("example.org.\n  ALARM: upstream silent past SOA EXPIRE\n  source"),
        "{text}"
    );
    assert!(
        text.contains("  source                    primaries 192.0.2.1:53\n"),
        "{text}"
    );
    assert!(text.contains("served                    yes"), "{text}");
    assert!(
        text.contains("signed serial             2024010101"),
        "{text}"
    );
    assert!(
        text.contains(
            "last refresh              2023-12-31T23:58:00Z (2m ago): SOA query: timed out"
        ),
        "{text}"
    );
    assert!(
        text.contains("next refresh              2024-01-01T00:45:00Z (in 45m)"),
        "{text}"
    );
    assert!(
        text.contains("STALE: upstream silent for 8d (expired 2023-12-31T00:00:00Z (1d ago))"),
        "{text}"
    );
    assert!(
        text.contains("earliest signature expiry 2024-01-14T00:00:00Z (in 13d)"),
        "{text}"
    );
    assert!(
        text.contains("next re-sign              2024-01-09T00:00:00Z (in 8d)"),
        "{text}"
    );
    assert!(
        text.contains("4711   csk  ECDSAP256SHA256  files      active"),
        "{text}"
    );
    assert!(
        text.contains("refresh      2024-01-01T00:45:00Z (in 45m)"),
        "{text}"
    );
    assert_eq!(
        text.matches("STALE").count(),
        1,
        "only example.org is stale: {text}"
    );

    let j: Value = serde_json::from_str(status_json.clone().expect_ok().trim()).unwrap();
    assert_eq!(j["now"], json!(NOW));
    assert_eq!(j["zones"][0]["stale"], json!(true));
    assert_eq!(j["zones"][0]["upstream_expires"], json!(NOW - 86400));

    assert_eq!(unknown.code, Some(1), "{unknown}");
    assert!(unknown.stdout.is_empty(), "{unknown}");
    assert_eq!(
        unknown.stderr.trim(),
        "signet status: zone nope.example. is not configured"
    );

    let k = keys.expect_ok();
    assert!(k.starts_with("example.org.\n  4711   csk"), "{k}");
    assert!(
        k.contains("created    2023-12-31T00:00:00Z (1d ago)"),
        "{k}"
    );
    assert!(k.contains("retired    -"), "{k}");

    let lines: Vec<String> = ds.expect_ok().lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let j: Value = serde_json::from_str(ds_json.expect_ok().trim()).unwrap();
    let recs: Vec<String> = j["ds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["record"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(lines, recs);

    let r = resign.expect_ok();
    assert!(
        r.starts_with("example.org. resign: re-signed, serial 2024010102\n  signed serial 2024010102, upstream serial 2024010101, served, STALE"),
        "{r}"
    );
    assert_eq!(retransfer.code, Some(1), "{retransfer}");
    assert_eq!(
        retransfer.stderr.trim(),
        "signet retransfer: upstream 192.0.2.1:53: connection refused"
    );
    let n: Value = serde_json::from_str(notify.expect_ok().trim()).unwrap();
    assert_eq!(n["result"], json!("NOTIFY sent to 1 secondary"));
    assert_eq!(n["status"]["zone"], json!("example.net."));
    assert_eq!(
        reload.expect_ok(),
        "reload: configuration reloaded: 2 zones (0 added, 0 removed)\n"
    );
    assert_eq!(reload_bad.code, Some(1), "{reload_bad}");
    assert!(reload_bad
        .stderr
        .contains("keeping the running configuration"));

    // the server gone: exit 1 with the hint
    let sock = h.sock.clone();
    h.shutdown().await;
    let out = tokio::task::spawn_blocking(move || {
        run(
            Command::new(signet_bin())
                .args(["status", "-c", "/etc/x.toml", "--socket"])
                .arg(&sock),
            Duration::from_secs(30),
        )
    })
    .await
    .unwrap();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("cannot reach signet at")
            && out
                .stderr
                .contains("is `signet serve -c /etc/x.toml` running?"),
        "{out}"
    );
}
