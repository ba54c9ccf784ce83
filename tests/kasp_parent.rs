//! checkds against a real parent (issue 5): the parent zone `test.` is served and signed by a
//! real `knotd` with its own keys; the child `child.test.` is signed by `signet serve` under a
//! policy of TTLs and delays of one or two seconds, with `parental-agents` pointing at the
//! knotd. A test "registrar" (below) watches signet's CDS with dig and rewrites the parent's DS
//! set by TSIG-signed UPDATE (nsupdate), late, or wrongly when told to. A validating `unbound`
//! (trust anchor: the parent's DNSKEY; stub-zones to knotd and to signet) is asked names of the
//! child zone all through a real-time KSK rollover started with `signet rollover`: it never
//! answers SERVFAIL or without AD, and the rollover completes through checkds alone (nobody
//! runs `ds-seen`/`ds-gone`). A second test keeps a stale DS and publishes a wrong one at the
//! parent during a CSK rollover: the step waits, `signet status --json` / `keys` say what the
//! parent has and what is awaited, and once the registrar fixes the parent the rollover
//! completes.
//!
//! The same machinery on the simulated clock (module `sim`): a zone task asks the real knotd
//! at every `checkds` event — hourly (the policy's `parent-propagation-delay`) — through a KSK
//! rollover with a registrar 6 hours late and a restart in the middle; and an agent that does
//! not answer is reported in `waiting_for`/`parent_ds` and keeps the DS from counting as seen
//! although the other agent has it.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PARENT: &str = "test.";
const CHILD: &str = "child.test.";
/// The TTL of the DS records the registrar writes (the child policy's `parent-ds-ttl`).
const DS_TTL: u32 = 2;

fn signet(conf: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(signet_bin());
    cmd.arg(args[0])
        .arg("-c")
        .arg(conf)
        .args(&args[1..])
        .env("SIGNET_LOG", "off");
    run(&mut cmd, Duration::from_secs(30))
}

fn json(conf: &Path, args: &[&str]) -> Value {
    let o = signet(conf, args);
    assert!(o.ok(), "{o}");
    serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {o}"))
}

/// `dig +short +norec` at 127.0.0.1:`port`; the DS/CDS records as normalised strings
/// `TAG ALG DT HEX` (dig splits long digests with spaces).
fn ds_set(port: u16, qname: &str, qtype: &str) -> Option<BTreeSet<String>> {
    let o = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+norec",
        "+time=1",
        "+tries=2",
        qname,
        qtype,
    ]);
    if !o.contains("status: NOERROR") {
        return None;
    }
    let mut out = BTreeSet::new();
    let mut in_answer = false;
    for l in o.lines() {
        if l.starts_with(";; ANSWER SECTION") {
            in_answer = true;
            continue;
        }
        if in_answer && (l.is_empty() || l.starts_with(";;")) {
            break;
        }
        if !in_answer {
            continue;
        }
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 8 && f[3] == qtype {
            out.insert(format!(
                "{} {} {} {}",
                f[4],
                f[5],
                f[6],
                f[7..].concat().to_ascii_uppercase()
            ));
        }
    }
    Some(out)
}

fn tag_of(ds: &str) -> u16 {
    ds.split_whitespace().next().unwrap().parse().unwrap()
}

/// The key tags of the DNSKEY RRset served at 127.0.0.1:`port`.
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
        "+time=1",
        "+tries=2",
    ]);
    out.lines()
        .filter_map(|l| {
            let i = l.find("key id = ")?;
            l[i + 9..].trim().parse().ok()
        })
        .collect()
}

/// The parent: knotd serving and signing `test.` (its own KSK+ZSK, Knot's default policy),
/// accepting TSIG-signed UPDATE for the child's DS.
struct Parent {
    port: u16,
    key: TsigKey,
    dir: PathBuf,
    proc: Proc,
}

impl Parent {
    fn start(tmp: &TempDir) -> Parent {
        let port = free_port();
        let key = TsigKey::generate("registrar");
        let dir = tmp.subdir("parent");
        mkdir(&dir.join("db"));
        mkdir(&dir.join("zones"));
        write_file(
            &dir.join("zones").join("test.zone"),
            "$TTL 2\n@ SOA ns hostmaster 1 3600 900 604800 2\n  NS ns\nns A 127.0.0.1\n\
             child NS ns1.child\nns1.child A 127.0.0.1\n",
        );
        let d = dir.display();
        let conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    background-workers: 1
    udp-workers: 1
    tcp-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
control:
    listen: "{d}/knot.sock"
key:
  - id: {name}
    algorithm: {alg}
    secret: {secret}
acl:
  - id: registrar
    address: 127.0.0.0/8
    key: {name}
    action: update
template:
  - id: default
    storage: "{d}/zones"
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: on
zone:
  - domain: test.
    file: test.zone
    dnssec-signing: on
    acl: registrar
"#,
            name = key.name,
            alg = key.algorithm,
            secret = key.secret
        );
        let conf_path = dir.join("knot.conf");
        write_file(&conf_path, &conf);
        let check = run(
            Command::new(bin("knotc"))
                .arg("-c")
                .arg(&conf_path)
                .arg("conf-check"),
            TOOL_TIMEOUT,
        );
        assert!(check.ok(), "knot.conf rejected:\n{check}\n{conf}");
        let mut cmd = Command::new(bin("knotd"));
        cmd.arg("-c").arg(&conf_path);
        let proc = Proc::spawn("knotd-parent", cmd, &dir);
        let p = Parent {
            port,
            key,
            dir,
            proc,
        };
        assert!(
            wait_until(START_TIMEOUT, || !dnskey_tags(port, PARENT).is_empty()),
            "knotd does not serve a signed {PARENT}:\n{}",
            p.proc.log_tail(40)
        );
        p
    }

    /// The parent's DS set for the child as knotd serves it.
    fn ds(&self) -> Option<BTreeSet<String>> {
        ds_set(self.port, CHILD, "DS")
    }

    /// Replaces the child's DS RRset by `ds` (UPDATE with TSIG, through nsupdate).
    fn set_ds(&self, ds: &BTreeSet<String>) -> Result<(), String> {
        let mut script = format!(
            "server 127.0.0.1 {}\nzone {PARENT}\nupdate delete {CHILD} DS\n",
            self.port
        );
        for d in ds {
            script.push_str(&format!("update add {CHILD} {DS_TTL} IN DS {d}\n"));
        }
        script.push_str("send\n");
        let path = self.dir.join(format!(
            "update-{}.txt",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        write_file(&path, &script);
        let o = run(
            Command::new(bin("nsupdate"))
                .arg("-y")
                .arg(self.key.dig_arg())
                .arg(&path),
            TOOL_TIMEOUT,
        );
        if !o.ok() {
            return Err(format!("nsupdate failed:\n{o}\n{script}"));
        }
        // knotd applies and re-signs before answering the UPDATE; confirm anyway
        if wait_until(Duration::from_secs(5), || self.ds().as_ref() == Some(ds)) {
            Ok(())
        } else {
            Err(format!(
                "the parent does not serve the new DS set {ds:?}: {:?}\n{}",
                self.ds(),
                self.proc.log_tail(20)
            ))
        }
    }

    /// The parent's DNSKEY RRset as trust-anchor lines.
    fn trust_anchor(&self) -> String {
        let o = dig(&[
            "@127.0.0.1",
            "-p",
            &self.port.to_string(),
            "+norec",
            "+noall",
            "+answer",
            PARENT,
            "DNSKEY",
        ]);
        let lines: Vec<&str> = o
            .lines()
            .filter(|l| l.split_whitespace().nth(3) == Some("DNSKEY"))
            .collect();
        assert!(!lines.is_empty(), "no DNSKEY for {PARENT}:\n{o}");
        lines.join("\n") + "\n"
    }
}

/// How the registrar behaves; changed by the test while it runs.
#[derive(Debug, Clone, Default)]
struct Mode {
    /// Act only once the CDS set has differed from the parent's DS set this long.
    delay: Duration,
    /// Keep the DS records the CDS no longer names (a stale DS).
    keep_stale: bool,
    /// Publish the DS of a newly requested key with a wrong digest.
    corrupt_new: bool,
}

/// The test registrar: every 300 ms compares signet's CDS with the parent's DS set and, per
/// [`Mode`], rewrites the parent's DS set.
struct Registrar {
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    updates: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn corrupt(ds: &str) -> String {
    let mut s = ds.to_string();
    let last = s.pop().unwrap();
    s.push(if last == '0' { '1' } else { '0' });
    s
}

impl Registrar {
    fn start(parent: Arc<Parent>, child_port: u16, mode: Mode) -> Registrar {
        let mode = Arc::new(Mutex::new(mode));
        let stop = Arc::new(AtomicBool::new(false));
        let updates = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (m, s, u, e) = (mode.clone(), stop.clone(), updates.clone(), errors.clone());
        let thread = std::thread::spawn(move || {
            let mut differs_since: Option<Instant> = None;
            while !s.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(300));
                let mode = m.lock().unwrap().clone();
                let (Some(cds), Some(have)) = (ds_set(child_port, CHILD, "CDS"), parent.ds())
                else {
                    continue;
                };
                // a registrar never removes every DS because the CDS is not there (yet)
                if cds.is_empty() {
                    continue;
                }
                let mut want: BTreeSet<String> = BTreeSet::new();
                for c in &cds {
                    if mode.corrupt_new && !have.contains(c) {
                        want.insert(corrupt(c));
                    } else {
                        want.insert(c.clone());
                    }
                }
                if mode.keep_stale {
                    for h in &have {
                        // stale: a DS for a key tag the CDS no longer names
                        if !cds.iter().any(|c| tag_of(c) == tag_of(h)) {
                            want.insert(h.clone());
                        }
                    }
                }
                if want == have {
                    differs_since = None;
                    continue;
                }
                let since = *differs_since.get_or_insert_with(Instant::now);
                if since.elapsed() < mode.delay {
                    continue;
                }
                differs_since = None;
                match parent.set_ds(&want) {
                    Ok(()) => {
                        u.fetch_add(1, Ordering::SeqCst);
                        eprintln!("registrar: parent DS set now {want:?}");
                    }
                    Err(err) => e.lock().unwrap().push(err),
                }
            }
        });
        Registrar {
            mode,
            stop,
            updates,
            errors,
            thread: Some(thread),
        }
    }

    fn set(&self, f: impl FnOnce(&mut Mode)) {
        f(&mut self.mode.lock().unwrap());
    }

    fn check(&self) {
        let e = self.errors.lock().unwrap();
        assert!(e.is_empty(), "registrar errors: {e:?}");
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// signet serving `child.test.` on its own port, with the parent as parental agent.
struct Child {
    port: u16,
    conf: PathBuf,
    proc: Proc,
}

/// signet on 127.0.0.1:`port` signing `child.test.` under the policy `fast` with `keys`, the
/// given parental agents (ports on 127.0.0.1).
fn start_child(tmp: &TempDir, port: u16, agents: &[u16], keys: &str) -> Child {
    let agents: Vec<String> = agents
        .iter()
        .map(|p| format!("\"127.0.0.1:{p}\""))
        .collect();
    tmp.write(
        "child.zone",
        "$TTL 2\n@ SOA ns1 hostmaster 1 3600 900 604800 2\n  NS ns1\nns1 A 127.0.0.1\n\
         www A 192.0.2.80\ntxt TXT \"hello\"\n",
    );
    let conf = tmp.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

[keystore.files]
backend = "files"
directory = "{keys_dir}"

[policy.fast]
keys = {keys}
dnskey-ttl = "2s"
max-zone-ttl = "2s"
publish-safety = "1s"
retire-safety = "1s"
zone-propagation-delay = "1s"
parent-ds-ttl = "{DS_TTL}s"
parent-propagation-delay = "1s"
cds-digest-types = ["sha256"]
publish-cdnskey = true

[[zone]]
name = "{CHILD}"
policy = "fast"
file = "{file}"
parental-agents = [{agents}]
"#,
            state = tmp.join("state").display(),
            keys_dir = tmp.join("keys").display(),
            file = tmp.join("child.zone").display(),
            agents = agents.join(", "),
        ),
    );
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=debug");
    let proc = Proc::spawn("signet", cmd, tmp.path());
    assert!(
        wait_until(START_TIMEOUT, || soa_serial(port, CHILD).is_some()),
        "{CHILD} not served\n{}",
        proc.log_tail(40)
    );
    Child { port, conf, proc }
}

impl Child {
    fn keys(&self) -> Value {
        json(&self.conf, &["keys", CHILD, "--json"])
    }

    fn zone_status(&self) -> Value {
        json(&self.conf, &["status", CHILD, "--json"])["zones"][0].clone()
    }

    /// Whether every key of the zone is at rest (nothing awaited).
    fn at_rest(&self) -> bool {
        self.keys()["waiting_for"]
            .as_array()
            .is_some_and(|w| w.is_empty())
    }

    /// The state line of key `tag`.
    fn key_state(&self, tag: u16) -> String {
        let k = self.keys();
        k["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["tag"].as_u64() == Some(u64::from(tag)))
            .map(|k| k["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// Tags of the keys of `role`.
    fn tags(&self, role: &str) -> BTreeSet<u16> {
        self.keys()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["role"].as_str() == Some(role))
            .filter_map(|k| k["tag"].as_u64().map(|t| t as u16))
            .collect()
    }
}

/// Waits up to `secs` for `cond`, printing the zone status on failure.
fn wait_for(child: &Child, secs: u64, what: &str, cond: impl FnMut() -> bool) {
    if !wait_until(Duration::from_secs(secs), cond) {
        panic!(
            "timed out waiting for {what}\nstatus: {:#}\nsignet log:\n{}",
            child.zone_status(),
            child.proc.log_tail(60)
        );
    }
}

/// A validating unbound anchored at the parent's DNSKEY, with stub-zones to the parent and to
/// signet, and no minimum cache time: it refetches DS and DNSKEY every couple of seconds.
fn start_unbound(tmp: &TempDir, parent: &Parent, child_port: u16) -> (Proc, u16) {
    let port = free_port();
    let dir = tmp.subdir("unbound");
    let anchor = tmp.write("unbound/anchor.db", parent.trust_anchor());
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
    local-zone: "test." nodefault
    trust-anchor-file: "{anchor}"
stub-zone:
    name: "{PARENT}"
    stub-addr: 127.0.0.1@{pport}
stub-zone:
    name: "{CHILD}"
    stub-addr: 127.0.0.1@{child_port}
remote-control:
    control-enable: no
"#,
            dir = dir.display(),
            anchor = anchor.display(),
            pport = parent.port,
        ),
    );
    if find_bin("unbound-checkconf").is_some() {
        run_tool("unbound-checkconf", &[conf.as_os_str()]).expect_ok();
    }
    let mut cmd = Command::new(bin("unbound"));
    cmd.arg("-d").arg("-c").arg(&conf);
    let p = Proc::spawn("unbound", cmd, tmp.path());
    assert!(
        wait_until(START_TIMEOUT, || dig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+time=1",
            "+tries=1",
            PARENT,
            "SOA"
        ])
        .contains("status:")),
        "unbound did not answer:\n{}",
        p.log_tail(40)
    );
    (p, port)
}

/// Asks unbound; Ok(rcode) if the answer carries AD and is not SERVFAIL, else Err(output).
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

const QUERIES: &[(&str, &str, &str)] = &[
    ("www.child.test.", "A", "NOERROR"),
    ("child.test.", "DNSKEY", "NOERROR"),
    ("txt.child.test.", "TXT", "NOERROR"),
    ("nope.child.test.", "A", "NXDOMAIN"),
    ("child.test.", "DS", "NOERROR"),
];

/// Waits until the zone's first DS is at the parent and every key is at rest.
fn wait_secure(child: &Child, parent: &Parent) -> u16 {
    wait_for(
        child,
        60,
        "the first DS at the parent and the keys at rest",
        || parent.ds().is_some_and(|d| !d.is_empty()) && child.at_rest(),
    );
    let ds = parent.ds().unwrap();
    assert_eq!(ds.len(), 1, "{ds:?}");
    tag_of(ds.iter().next().unwrap())
}

#[test]
fn ksk_rollover_completes_through_checkds_while_unbound_validates() {
    require!("knotd", "knotc", "nsupdate", "unbound", "dig");
    let started = Instant::now();
    let tmp = TempDir::new("kasp-parent-ksk");
    let parent = Arc::new(Parent::start(&tmp));
    // unbound validates the child's answers and is a second parental agent beside knotd: a
    // validating resolver, whose DS answers carry AD (BIND's suggested setup); both must agree
    let child_port = free_port();
    let (unbound, uport) = start_unbound(&tmp, &parent, child_port);
    let child = start_child(
        &tmp,
        child_port,
        &[parent.port, uport],
        r#"[{ role = "ksk", algorithm = "ecdsap256sha256" }, { role = "zsk", algorithm = "ecdsap256sha256" }]"#,
    );
    // the registrar acts a second late: checkds has to wait for it
    let registrar = Registrar::start(
        parent.clone(),
        child.port,
        Mode {
            delay: Duration::from_secs(1),
            ..Mode::default()
        },
    );
    let old = wait_secure(&child, &parent);
    assert_eq!(child.tags("ksk"), BTreeSet::from([old]));
    let zsk = child.tags("zsk");
    for (q, t, want) in QUERIES {
        match ask(uport, q, t) {
            Ok(s) => assert_eq!(&s, want, "{q} {t}"),
            Err(o) => panic!(
                "{q} {t}: not validated before the rollover:\n{o}\nunbound:\n{}",
                unbound.log_tail(30)
            ),
        }
    }

    // a poller asks unbound all through the rollover
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let asked = Arc::new(AtomicUsize::new(0));
    let poller = {
        let (stop, failures, asked) = (stop.clone(), failures.clone(), asked.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for (q, t, want) in QUERIES {
                    asked.fetch_add(1, Ordering::SeqCst);
                    match ask(uport, q, t) {
                        Ok(s) if s == *want => {}
                        Ok(s) => failures.lock().unwrap().push(format!("{q} {t}: {s}")),
                        Err(o) => failures.lock().unwrap().push(format!("{q} {t}:\n{o}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // the registrar swaps the DS 8 s late: longer than the state machine's DS waits (parent
    // DS TTL + parent propagation delay + safety = 4 s), so an advance not backed by the
    // parent would remove the old DNSKEY while the parent still has only the old DS, and
    // unbound would fail (checked: with `compare` concluding without the parent, 77 of 255
    // answers were SERVFAIL "no keys have a DS with algorithm ECDSAP256SHA256")
    registrar.set(|m| m.delay = Duration::from_secs(8));
    let o = signet(&child.conf, &["rollover", CHILD, "--role", "ksk"]);
    assert!(o.ok(), "{o}");
    let ksks = child.tags("ksk");
    assert_eq!(ksks.len(), 2, "{ksks:?}");
    let new = *ksks.iter().find(|t| **t != old).unwrap();

    // while the parent still has the old DS only, status says so
    wait_for(&child, 40, "checkds waiting for the new DS", || {
        child.keys()["waiting_for"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| {
                w.as_str().unwrap_or("").contains(&format!(
                    "parent 127.0.0.1:{} has DS {old}/13/2; waiting for it to publish {new} and drop {old}",
                    parent.port
                ))
            })
    });
    wait_for(&child, 90, "the end of the KSK rollover", || {
        let expect: BTreeSet<u16> = zsk.iter().copied().chain([new]).collect();
        child.at_rest()
            && dnskey_tags(child.port, CHILD) == expect
            && parent
                .ds()
                .is_some_and(|d| d.iter().map(|x| tag_of(x)).collect::<Vec<_>>() == vec![new])
    });
    let st = child.key_state(old);
    assert!(
        st.starts_with("retiring") && !st.contains("omnipresent") && !st.contains("rumoured"),
        "{st}"
    );
    // both agents answered the last poll, and both showed the new DS only
    let z = child.zone_status();
    let agents = z["parent_ds"]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{z:#}");
    for a in agents {
        assert!(a["error"].is_null(), "{z:#}");
        let ds = a["ds"].as_array().unwrap();
        assert!(
            ds.len() == 1 && ds[0]["tag"] == new && ds[0]["note"] == "ok",
            "{z:#}"
        );
    }
    // keep asking a few TTLs after the last change
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    registrar.check();
    let f = failures.lock().unwrap();
    let n = asked.load(Ordering::SeqCst);
    assert!(
        f.is_empty(),
        "{} of {n} answers from unbound were not validated:\n{}\nunbound:\n{}\nsignet:\n{}",
        f.len(),
        f.iter().take(3).cloned().collect::<Vec<_>>().join("\n"),
        unbound.log_tail(40),
        child.proc.log_tail(40)
    );
    assert!(n > 50, "only {n} queries");
    // checkds did it, nobody else
    let log = child.proc.log();
    assert!(
        log.contains(&format!(
            "checkds: every parental agent publishes the DS of key {new}"
        )) && log.contains(&format!(
            "checkds: no parental agent publishes the DS of key {old} any more"
        )),
        "{}",
        child.proc.log_tail(60)
    );
    assert!(registrar.updates.load(Ordering::SeqCst) >= 2);
    eprintln!(
        "KSK rollover {old} -> {new} through checkds in {:?}; {n} answers from unbound, all validated",
        started.elapsed()
    );
    drop(registrar);
    drop(unbound);
}

#[test]
fn a_stale_or_wrong_ds_at_the_parent_holds_the_step_and_status_says_what_the_parent_has() {
    require!("knotd", "knotc", "nsupdate", "dig");
    let tmp = TempDir::new("kasp-parent-stale");
    let parent = Arc::new(Parent::start(&tmp));
    let child = start_child(
        &tmp,
        free_port(),
        &[parent.port],
        r#"[{ role = "csk", algorithm = "ecdsap256sha256" }]"#,
    );
    let registrar = Registrar::start(parent.clone(), child.port, Mode::default());
    let old = wait_secure(&child, &parent);

    // the registrar keeps the old DS and botches the new one
    registrar.set(|m| {
        m.keep_stale = true;
        m.corrupt_new = true;
    });
    let o = signet(&child.conf, &["rollover", CHILD, "--role", "csk"]);
    assert!(o.ok(), "{o}");
    let new = *child.tags("csk").iter().find(|t| **t != old).unwrap();
    let both = |w: &str| {
        w.contains(&format!("parent 127.0.0.1:{}", parent.port))
            && w.contains(&format!("{old}/13/2"))
            && w.contains(&format!("{new}/13/2 (wrong digest for key {new})"))
            && w.ends_with(&format!("waiting for it to publish {new} and drop {old}"))
    };
    wait_for(
        &child,
        40,
        "status naming the wrong and the stale DS",
        || {
            child.zone_status()["waiting_for"]
                .as_array()
                .unwrap()
                .iter()
                .any(|w| both(w.as_str().unwrap_or("")))
        },
    );
    // it stays so: the wrong DS is never taken for the new key's
    std::thread::sleep(Duration::from_secs(4));
    let z = child.zone_status();
    let pd = &z["parent_ds"];
    assert_eq!(pd["expected"], serde_json::json!([new]), "{z:#}");
    let shown = pd["agents"][0]["ds"].as_array().unwrap();
    assert_eq!(shown.len(), 2, "{z:#}");
    assert!(
        shown
            .iter()
            .any(|d| d["tag"] == new && d["note"] == format!("wrong digest for key {new}")),
        "{z:#}"
    );
    assert!(
        shown.iter().any(|d| d["tag"] == old && d["note"] == "ok"),
        "{z:#}"
    );
    assert!(pd["next_check"].as_u64().is_some(), "{z:#}");
    assert!(child.key_state(new).contains("DS rumoured"), "{z:#}");
    assert!(
        child.key_state(old).contains("DS unretentive"),
        "{}",
        child.key_state(old)
    );
    let text = signet(&child.conf, &["status", CHILD]).expect_ok();
    eprintln!("signet status while the parent is wrong:\n{text}");
    let keys_text = signet(&child.conf, &["keys", CHILD]).expect_ok();
    assert!(
        keys_text.lines().any(|l| both(l.trim())),
        "signet keys:\n{keys_text}"
    );
    assert!(
        child.keys()["waiting_for"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| both(w.as_str().unwrap_or(""))),
        "signet keys --json"
    );
    assert!(
        text.lines().any(|l| both(l.trim())),
        "signet status:\n{text}"
    );
    assert!(
        child
            .proc
            .log()
            .contains(&format!("waiting for it to publish {new} and drop {old}")),
        "the wait is logged:\n{}",
        child.proc.log_tail(30)
    );

    // the registrar fixes the new DS but still keeps the old one
    registrar.set(|m| m.corrupt_new = false);
    wait_for(&child, 40, "the new DS seen, the stale one awaited", || {
        child.zone_status()["waiting_for"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| {
                let w = w.as_str().unwrap_or("");
                w.contains(&format!("{new}/13/2"))
                    && !w.contains("wrong digest")
                    && w.ends_with(&format!("waiting for it to drop {old}"))
            })
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.key_state(old).contains("DS unretentive"),
        "the stale DS holds the old key's DS state: {}",
        child.key_state(old)
    );
    assert!(!child.at_rest());

    // and finally removes it: the rollover completes
    registrar.set(|m| m.keep_stale = false);
    wait_for(&child, 60, "the end of the CSK rollover", || {
        child.at_rest() && dnskey_tags(child.port, CHILD) == BTreeSet::from([new])
    });
    let z = child.zone_status();
    assert!(z["parent_ds"]["next_check"].is_null(), "{z:#}");
    let st = child.key_state(old);
    assert!(
        st.starts_with("retiring") && !st.contains("unretentive"),
        "{st}"
    );
    registrar.check();
    drop(registrar);
}

// ------------------------------------------------------------------------------------------
// The same on the simulated clock: a zone task driven through days of schedule, asking the
// real knotd parent at every checkds event.

mod sim {
    use super::*;
    use signet::clock::{Clock, SimClock, SystemClock};
    use signet::dns::name::Name;
    use signet::dns::rtype::t;
    use signet::keystore::KeyRole;
    use signet::publisher::Publisher;
    use signet::zone::service::ZoneTask;
    use signet::zone::status::{ZoneCmdKind, ZoneStatus};

    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    pub struct Sim {
        pub task: ZoneTask,
        cfg: Arc<signet::config::Config>,
        pub clock: SimClock,
        publisher: Arc<Publisher>,
        origin: Name,
        /// When the served CDS set last differed from the parent's DS set (sim time).
        differs_since: Option<u64>,
        /// The registrar acts once the difference is this old (sim seconds).
        pub registrar_delay: u64,
        /// Every `parent_ds.checked_at` seen, in order.
        pub polls: Vec<u64>,
        pub updates: usize,
    }

    /// A zone task for `child.test.` on a simulated clock, with `agents` as parental agents
    /// and a policy of hours (checkds polls every `parent-propagation-delay` = 1 h).
    pub fn start(tmp: &TempDir, agents: &[u16], keys: &str) -> Sim {
        tmp.write(
            "sim.zone",
            "$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n  NS ns1\nns1 A 127.0.0.1\n\
             www A 192.0.2.80\n",
        );
        let agents: Vec<String> = agents
            .iter()
            .map(|p| format!("\"127.0.0.1:{p}\""))
            .collect();
        let conf = tmp.write(
            "sim.toml",
            format!(
                r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"

[keystore.files]
backend = "files"
directory = "{keys_dir}"

[policy.hours]
keys = {keys}
dnskey-ttl = "1h"
max-zone-ttl = "1h"
publish-safety = "1h"
retire-safety = "1h"
zone-propagation-delay = "5m"
parent-ds-ttl = "1h"
parent-propagation-delay = "1h"

[[zone]]
name = "{CHILD}"
policy = "hours"
file = "{file}"
parental-agents = [{agents}]
"#,
                port = free_port(),
                state = tmp.join("sim-state").display(),
                keys_dir = tmp.join("sim-keys").display(),
                file = tmp.join("sim.zone").display(),
                agents = agents.join(", "),
            ),
        );
        let cfg = Arc::new(signet::config::load(&conf).unwrap());
        let clock = SimClock::new(SystemClock.now());
        let publisher = Arc::new(Publisher::new(Arc::new(clock.clone())));
        let (mut task, _st) = ZoneTask::new(
            cfg.clone(),
            cfg.zones[0].clone(),
            publisher.clone(),
            Arc::new(clock.clone()),
        )
        .unwrap();
        task.start();
        Sim {
            task,
            cfg,
            clock,
            publisher,
            origin: Name::parse(CHILD, None).unwrap(),
            differs_since: None,
            registrar_delay: 0,
            polls: Vec::new(),
            updates: 0,
        }
    }

    impl Sim {
        /// The CDS set served, as `TAG ALG DT HEX` strings.
        pub fn cds(&self) -> BTreeSet<String> {
            let Some(s) = self.publisher.get(&self.origin) else {
                return BTreeSet::new();
            };
            s.zone
                .nodes
                .get(&self.origin)
                .and_then(|n| n.get(t::CDS))
                .map(|set| {
                    set.rdatas
                        .iter()
                        .map(|r| {
                            format!(
                                "{} {} {} {}",
                                u16::from_be_bytes([r[0], r[1]]),
                                r[2],
                                r[3],
                                data_encoding::HEXUPPER.encode(&r[4..])
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        }

        /// Lets the registrar follow the served CDS (after `registrar_delay` of sim time).
        fn registrar(&mut self, parent: Option<&Parent>) {
            let Some(parent) = parent else { return };
            let cds = self.cds();
            let have = parent.ds().unwrap_or_default();
            if cds.is_empty() || cds == have {
                self.differs_since = None;
                return;
            }
            let now = self.clock.now();
            let since = *self.differs_since.get_or_insert(now);
            if now >= since + self.registrar_delay {
                parent.set_ds(&cds).unwrap();
                self.updates += 1;
                self.differs_since = None;
            }
        }

        /// A restart: a new zone task from what the state directory holds.
        pub async fn restart(&mut self) {
            let (mut task, _st) = ZoneTask::new(
                self.cfg.clone(),
                self.cfg.zones[0].clone(),
                self.publisher.clone(),
                Arc::new(self.clock.clone()),
            )
            .unwrap();
            task.start();
            task.tick().await;
            self.task = task;
        }

        pub fn status(&self) -> ZoneStatus {
            self.task.status()
        }

        /// Runs every event due until `until` (sim time), the registrar following.
        pub async fn run_until(&mut self, until: u64, parent: Option<&Parent>) {
            let mut guard = 0;
            loop {
                self.registrar(parent);
                if let Some(p) = self.status().parent_ds {
                    if self.polls.last() != Some(&p.checked_at) {
                        self.polls.push(p.checked_at);
                    }
                }
                let mut next = self.task.next_due().unwrap_or(until + 1);
                // the registrar looks at least hourly
                if parent.is_some() && self.differs_since.is_some() {
                    next = next.min(self.clock.now() + HOUR);
                }
                if next > until {
                    break;
                }
                guard += 1;
                assert!(guard < 5000, "no progress: {:?}", self.task.schedule());
                self.clock.set(next.max(self.clock.now()));
                self.task.tick().await;
            }
            self.clock.set(until);
        }

        pub fn key_state(&self, tag: u16) -> String {
            self.status()
                .keys
                .iter()
                .find(|k| k.tag == tag)
                .map(|k| k.state.clone())
                .unwrap_or_default()
        }

        pub fn ksks(&self) -> BTreeSet<u16> {
            self.status()
                .keys
                .iter()
                .filter(|k| k.role == "ksk" && k.state.starts_with("active"))
                .map(|k| k.tag)
                .collect()
        }
    }

    #[test]
    fn checkds_polls_hourly_on_the_simulated_clock_and_completes_a_late_parents_ksk_rollover() {
        require!("knotd", "knotc", "nsupdate", "dig");
        let tmp = TempDir::new("kasp-parent-sim");
        let parent = Parent::start(&tmp);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut s = start(
                &tmp,
                &[parent.port],
                r#"[{ role = "ksk", algorithm = "ed25519" }, { role = "zsk", algorithm = "ed25519" }]"#,
            );
            // the registrar needs 6 hours for each change
            s.registrar_delay = 6 * HOUR;
            s.task.tick().await;
            let t0 = s.clock.now();
            s.run_until(t0 + 2 * DAY, Some(&parent)).await;
            let old: u16 = *s.ksks().iter().next().unwrap();
            assert!(s.status().waiting_for.is_empty(), "{:#?}", s.status());
            assert!(s.key_state(old).contains("DS omnipresent"), "{}", s.key_state(old));
            assert_eq!(
                parent.ds().unwrap().iter().map(|d| tag_of(d)).collect::<Vec<_>>(),
                vec![old]
            );
            let first_polls = s.polls.len();
            // hourly polls while the parent was late: at least the 6 hours' worth
            assert!(first_polls >= 6, "{:?}", s.polls);
            for w in s.polls.windows(2) {
                assert!(
                    w[1] - w[0] >= HOUR,
                    "polls more often than parent-propagation-delay: {:?}",
                    s.polls
                );
            }
            assert!(s.status().parent_ds.unwrap().next_check.is_none());
            assert!(!s.task.schedule().iter().any(|e| e.event == "checkds"));

            let r = s.task.handle(ZoneCmdKind::Rollover(KeyRole::Ksk)).await;
            assert!(r.is_ok(), "{r:?}");
            let new = *s.ksks().iter().find(|t| **t != old).unwrap();
            // a restart while the DS swap is awaited (the registrar is 6 hours late): checkds
            // resumes at once from the stored key state
            let t1 = s.clock.now();
            s.run_until(t1 + 4 * HOUR, Some(&parent)).await;
            let w = s.status().waiting_for;
            assert!(
                w.iter().any(|w| w.contains(&format!("waiting for it to publish {new} and drop {old}"))),
                "{w:#?}"
            );
            s.restart().await;
            let st = s.status();
            assert_eq!(st.parent_ds.as_ref().map(|p| p.checked_at), Some(s.clock.now()), "{st:#?}");
            assert!(
                st.waiting_for.iter().any(|w| w.contains(&format!("waiting for it to publish {new} and drop {old}"))),
                "{st:#?}"
            );
            s.run_until(t0 + 10 * DAY, Some(&parent)).await;
            let st = s.status();
            assert!(st.waiting_for.is_empty(), "{st:#?}");
            assert_eq!(s.ksks(), BTreeSet::from([new]));
            let o = s.key_state(old);
            assert!(o.starts_with("retiring") && !o.contains("omnipresent"), "{o}");
            assert_eq!(
                parent.ds().unwrap().iter().map(|d| tag_of(d)).collect::<Vec<_>>(),
                vec![new]
            );
            assert!(s.polls.len() >= first_polls + 6, "{:?}", s.polls);
            assert!(s.updates >= 2);
            eprintln!(
                "simulated KSK rollover {old} -> {new}: {} checkds polls, {} registrar updates",
                s.polls.len(),
                s.updates
            );
        });
    }

    #[test]
    fn a_parental_agent_that_does_not_answer_is_reported_and_never_counts_as_seen() {
        require!("knotd", "knotc", "nsupdate", "dig");
        let tmp = TempDir::new("kasp-parent-dead");
        let parent = Parent::start(&tmp);
        // nothing listens there (UDP: port unreachable)
        let dead = free_port();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut s = start(
                &tmp,
                &[parent.port, dead],
                r#"[{ role = "csk", algorithm = "ed25519" }]"#,
            );
            s.task.tick().await;
            let t0 = s.clock.now();
            s.run_until(t0 + DAY, Some(&parent)).await;
            let csk = *s
                .status()
                .keys
                .iter()
                .map(|k| k.tag)
                .collect::<Vec<_>>()
                .first()
                .unwrap();
            // the parent (knotd) has the DS, the second agent never answers: not seen
            assert_eq!(
                parent
                    .ds()
                    .unwrap()
                    .iter()
                    .map(|d| tag_of(d))
                    .collect::<Vec<_>>(),
                vec![csk]
            );
            assert!(
                s.key_state(csk).contains("DS rumoured"),
                "{}",
                s.key_state(csk)
            );
            let st = s.status();
            let w = st
                .waiting_for
                .iter()
                .find(|w| {
                    w.contains(&format!(
                        "parent 127.0.0.1:{dead} did not answer the DS query"
                    ))
                })
                .unwrap_or_else(|| panic!("{st:#?}"));
            assert!(w.ends_with("nothing is concluded until it does"), "{w}");
            let pd = st.parent_ds.clone().unwrap();
            assert_eq!(pd.agents.len(), 2);
            assert!(
                pd.agents[0].error.is_none() && pd.agents[0].waiting.is_none(),
                "{pd:#?}"
            );
            assert!(
                pd.agents[1].error.is_some() && pd.agents[1].ds.is_none(),
                "{pd:#?}"
            );
            assert_eq!(pd.next_check, Some(pd.checked_at + HOUR));
            assert!(s.task.schedule().iter().any(|e| e.event == "checkds"));
            assert!(s.polls.len() >= 20, "{:?}", s.polls);
        });
    }
}

/// The checkds query itself against knotd: NODATA, the DS set, REFUSED for a zone it does not
/// serve; and against a socket that never answers and a port nobody listens on.
#[test]
fn the_ds_query_reads_what_knotd_answers_and_reports_failures() {
    require!("knotd", "knotc", "nsupdate", "dig");
    use signet::dns::name::Name;
    use signet::zone::checkds::{query_ds, Answer};
    let tmp = TempDir::new("kasp-parent-query");
    let parent = Parent::start(&tmp);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let agent: std::net::SocketAddr = format!("127.0.0.1:{}", parent.port).parse().unwrap();
    let child = Name::parse(CHILD, None).unwrap();
    // no DS yet: an authoritative NODATA
    assert_eq!(rt.block_on(query_ds(agent, &child)), Answer::Ds(vec![]));
    let ds = "12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
    parent.set_ds(&BTreeSet::from([ds.to_string()])).unwrap();
    match rt.block_on(query_ds(agent, &child)) {
        Answer::Ds(rds) => {
            assert_eq!(rds.len(), 1);
            assert_eq!(&rds[0][..4], &[0x30, 0x39, 13, 2]);
            assert_eq!(
                data_encoding::HEXUPPER.encode(&rds[0][4..]),
                ds.split_whitespace().nth(3).unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
    // a zone knotd does not serve
    let other = Name::parse("child.example.", None).unwrap();
    assert_eq!(
        rt.block_on(query_ds(agent, &other)),
        Answer::Failed("REFUSED".into())
    );
    // a socket that never answers: the query gives up after QUERY_TIMEOUT
    let hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    match rt.block_on(query_ds(hole.local_addr().unwrap(), &child)) {
        Answer::Failed(e) => assert!(e.contains("no answer within"), "{e}"),
        other => panic!("{other:?}"),
    }
    let took = started.elapsed();
    assert!(
        took >= signet::zone::checkds::QUERY_TIMEOUT && took < Duration::from_secs(10),
        "{took:?}"
    );
    // nobody listens: port unreachable
    let closed: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    assert!(matches!(
        rt.block_on(query_ds(closed, &child)),
        Answer::Failed(_)
    ));
}
