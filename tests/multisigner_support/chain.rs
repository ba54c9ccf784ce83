//! The chain of trust around a multi-signer child (`multisigner_support::chain`): the child
//! `example.test` and its unsigned content, the parent `test.` signed and served by knotd (DS
//! changed by UPDATE), and validating unbound resolvers anchored at the parent's KSK — one-shot
//! `unbound-host` through one provider, and a caching `unbound` whose stub for the child is
//! switched between providers with `unbound-control` (keeping its cache). Shared by
//! tests/multisigner_rfc8901.rs and tests/multisigner_migration.rs.

/// The peers of the two-provider chain tests (knotd upstream, nsupdate, unbound resolving
/// through the chain, the three verifiers): returns from the test unless all are installed
/// (fails under `CI=true`), as `require!` does.
#[macro_export]
macro_rules! require_chain_peers {
    () => {
        $crate::require!(
            "knotd",
            "knotc",
            "nsupdate",
            "dig",
            "dnssec-dsfromkey",
            "unbound",
            "unbound-checkconf",
            "unbound-host",
            "ldns-verify-zone",
            "kzonecheck",
            "dnssec-verify"
        );
        $crate::require!("unbound-control" => "unbound");
    };
}

use super::*;
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CHILD: &str = "example.test";
pub const PARENT: &str = "test";

pub fn child_text(serial: u32) -> String {
    let mut s = format!(
        "$TTL 60\n$ORIGIN {CHILD}.\n@ SOA ns1 hostmaster {serial} 3600 600 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n"
    );
    for i in 0..20 {
        s.push_str(&format!("h{i} A 198.51.100.{}\n", i + 1));
    }
    s
}

/// knotd serving and signing the parent zone `test.`, with UPDATE allowed for `key`.
pub struct KnotParent {
    pub proc: Proc,
    pub port: u16,
    pub key: TsigKey,
}

impl KnotParent {
    pub fn start(tmp: &TempDir, key: &TsigKey) -> KnotParent {
        let port = free_port();
        let dir = tmp.subdir("knot-parent");
        mkdir(&dir.join("db"));
        write_file(
            &dir.join("test.zone"),
            format!(
                "$TTL 60\n$ORIGIN {PARENT}.\n@ SOA ns hostmaster 1 3600 600 604800 60\n@ NS ns\nns A 127.0.0.1\n\
                 example NS ns1.example\nns1.example A 192.0.2.1\n"
            ),
        );
        let d = dir.display();
        let conf = dir.join("knot.conf");
        write_file(
            &conf,
            format!(
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
  - id: {kn}
    algorithm: {alg}
    secret: {secret}
acl:
  - id: upd
    address: 127.0.0.0/8
    key: {kn}
    action: update
policy:
  - id: p
    algorithm: ecdsap256sha256
    nsec3: off
    dnskey-ttl: 60
    zone-max-ttl: 60
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: {PARENT}
    file: test.zone
    dnssec-signing: on
    dnssec-policy: p
    acl: upd
"#,
                kn = key.name,
                alg = key.algorithm,
                secret = key.secret,
            ),
        );
        let check = run(
            Command::new(bin("knotc"))
                .arg("-c")
                .arg(&conf)
                .arg("conf-check"),
            TOOL_TIMEOUT,
        );
        assert!(check.ok(), "parent knot.conf rejected: {check}");
        let mut cmd = Command::new(bin("knotd"));
        cmd.arg("-c").arg(&conf);
        let proc = Proc::spawn("knot-parent", cmd, &dir);
        proc.wait_for_log("server started", START_TIMEOUT)
            .unwrap_or_else(|e| panic!("parent knotd: {e}"));
        let p = KnotParent {
            proc,
            port,
            key: key.clone(),
        };
        assert!(
            wait_until(START_TIMEOUT, || rrset(port, PARENT, "DNSKEY").len() >= 2),
            "parent not signed: {}",
            p.proc.log_tail(30)
        );
        p
    }

    /// The parent's KSK as an unbound trust anchor line.
    pub fn anchor(&self) -> String {
        let ksk = rrset(self.port, PARENT, "DNSKEY")
            .into_iter()
            .find(|k| k.starts_with("257 "))
            .expect("parent KSK");
        format!("{PARENT}. 60 IN DNSKEY {ksk}")
    }

    /// The delegation NS set of the child as the parent serves it (the referral's authority
    /// section), sorted.
    pub fn delegation_ns(&self) -> Vec<String> {
        let out = dig(&[
            "@127.0.0.1",
            "-p",
            &self.port.to_string(),
            CHILD,
            "NS",
            "+norec",
            "+tcp",
            "+noall",
            "+authority",
        ]);
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 5 && f[3] == "NS").then(|| f[4].to_string())
            })
            .collect();
        v.sort();
        v
    }

    /// Replaces the child's delegation NS set with `ns` (absolute names) by UPDATE and waits
    /// until knotd serves it.
    pub fn set_ns(&self, ns: &[&str]) {
        let mut lines: Vec<String> = ns
            .iter()
            .map(|n| format!("update add {CHILD}. 60 IN NS {n}"))
            .collect();
        for old in self.delegation_ns() {
            if !ns.contains(&old.as_str()) {
                lines.push(format!("update delete {CHILD}. IN NS {old}"));
            }
        }
        nsupdate(self.port, PARENT, Some(&self.key), &lines).assert_ok("parent NS update");
        let mut want: Vec<String> = ns.iter().map(|n| n.to_string()).collect();
        want.sort();
        let ok = wait_until(Duration::from_secs(20), || self.delegation_ns() == want);
        assert!(
            ok,
            "parent does not serve the delegation {want:?}; has {:?}\n{}",
            self.delegation_ns(),
            self.proc.log_tail(20)
        );
    }

    /// Adds / removes the child's DS records by UPDATE and waits until knotd serves them.
    pub fn set_ds(&self, add: &[&str], remove: &[&str]) {
        let mut lines: Vec<String> = add
            .iter()
            .map(|d| format!("update add {CHILD}. 60 IN DS {d}"))
            .collect();
        lines.extend(
            remove
                .iter()
                .map(|d| format!("update delete {CHILD}. IN DS {d}")),
        );
        nsupdate(self.port, PARENT, Some(&self.key), &lines).assert_ok("parent DS update");
        let ok = wait_until(Duration::from_secs(20), || {
            let ds = rrset(self.port, CHILD, "DS");
            add.iter().all(|d| ds.contains(&d.to_string()))
                && remove.iter().all(|d| !ds.contains(&d.to_string()))
        });
        assert!(
            ok,
            "parent does not serve the DS change; has {:?}\n{}",
            rrset(self.port, CHILD, "DS"),
            self.proc.log_tail(20)
        );
    }
}

/// DS (SHA-256) RDATA of a DNSKEY given as presentation RDATA, by dnssec-dsfromkey.
pub fn ds_of(dir: &Path, dnskey: &str) -> String {
    let f = dir.join(format!("ds-{}.key", tag_of(dnskey)));
    write_file(&f, format!("{CHILD}. 60 IN DNSKEY {dnskey}\n"));
    let out = run_tool(
        "dnssec-dsfromkey",
        &["-2", "-f", &f.to_string_lossy(), CHILD],
    );
    assert!(out.ok(), "{out}");
    let l: Vec<&str> = out.stdout.split_whitespace().collect();
    let i = l.iter().position(|x| *x == "DS").expect("DS");
    normalise_rdata(&l[i + 1..].join(" "))
}

/// The unbound configuration anchored at the parent, with stubs for the parent and the child.
pub fn unbound_conf(
    dir: &Path,
    anchor: &str,
    parent: u16,
    child: u16,
    daemon: Option<u16>,
) -> String {
    let d = dir.display();
    let daemon_part = match daemon {
        Some(port) => format!(
            "    interface: 127.0.0.1\n    port: {port}\n    do-ip6: no\n    num-threads: 1\n    pidfile: \"{d}/unbound.pid\"\n    access-control: 127.0.0.0/8 allow\n    aggressive-nsec: no\n    qname-minimisation: no\n"
        ),
        None => String::new(),
    };
    let control = match daemon {
        Some(_) => format!("remote-control:\n    control-enable: yes\n    control-interface: \"{d}/control.sock\"\n"),
        None => "remote-control:\n    control-enable: no\n".into(),
    };
    format!(
        r#"server:
{daemon_part}    username: ""
    chroot: ""
    directory: "{d}"
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    do-not-query-localhost: no
    module-config: "validator iterator"
    root-hints: ""
    local-zone: "{PARENT}." nodefault
    trust-anchor: "{anchor}"
stub-zone:
    name: "{PARENT}."
    stub-addr: 127.0.0.1@{parent}
stub-zone:
    name: "{CHILD}."
    stub-addr: 127.0.0.1@{child}
{control}"#
    )
}

/// `unbound-host` through provider `child` alone: Ok if `h1.example.test A` is `(secure)`.
pub fn validates_via(
    tmp: &TempDir,
    label: &str,
    anchor: &str,
    parent: u16,
    child: u16,
) -> Result<(), String> {
    let dir = tmp.subdir(format!("uh-{label}"));
    let conf = dir.join("unbound-host.conf");
    write_file(&conf, unbound_conf(&dir, anchor, parent, child, None));
    let mut last = String::new();
    for q in [format!("h1.{CHILD}"), CHILD.to_string()] {
        let out = run(
            Command::new(bin("unbound-host"))
                .arg("-C")
                .arg(&conf)
                .args(["-v", "-t", if q == CHILD { "DNSKEY" } else { "A" }])
                .arg(&q),
            TOOL_TIMEOUT,
        );
        last = out.combined();
        if !last.contains("(secure)") || last.contains("BOGUS") || last.contains("insecure") {
            return Err(last);
        }
    }
    let _ = last;
    Ok(())
}

pub fn assert_validates(tmp: &TempDir, step: &str, anchor: &str, parent: u16, child: u16) {
    if let Err(e) = validates_via(tmp, step, anchor, parent, child) {
        panic!("{step}: not validated through 127.0.0.1:{child}:\n{e}");
    }
}

pub fn assert_bogus(tmp: &TempDir, step: &str, anchor: &str, parent: u16, child: u16) {
    if validates_via(tmp, step, anchor, parent, child).is_ok() {
        panic!("{step}: validated through 127.0.0.1:{child} although its KSK has no DS");
    }
}

/// A caching unbound with remote control, whose child stub starts at `first`.
pub struct Caching {
    pub proc: Proc,
    pub port: u16,
    pub conf: PathBuf,
}

impl Caching {
    pub fn start(tmp: &TempDir, label: &str, anchor: &str, parent: u16, first: u16) -> Caching {
        let port = free_port();
        let dir = tmp.subdir(format!("unbound-{label}"));
        let conf = dir.join("unbound.conf");
        write_file(&conf, unbound_conf(&dir, anchor, parent, first, Some(port)));
        run_tool("unbound-checkconf", &[conf.as_os_str()]).expect_ok();
        let mut cmd = Command::new(bin("unbound"));
        cmd.arg("-d").arg("-c").arg(&conf);
        let proc = Proc::spawn(&format!("unbound-{label}"), cmd, &dir);
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
            proc.log_tail(30)
        );
        Caching { proc, port, conf }
    }

    /// Answer with AD set?
    pub fn ad(&self, qname: &str, qtype: &str) -> Result<(), String> {
        let o = dig(&[
            "@127.0.0.1",
            "-p",
            &self.port.to_string(),
            "+dnssec",
            "+time=3",
            "+tries=2",
            qname,
            qtype,
        ]);
        let ok = o.contains("status: NOERROR")
            && o.lines()
                .find_map(|l| l.strip_prefix(";; flags: "))
                .is_some_and(|f| {
                    f.split(';')
                        .next()
                        .unwrap_or("")
                        .split_whitespace()
                        .any(|x| x == "ad")
                });
        if ok {
            Ok(())
        } else {
            Err(o)
        }
    }

    /// Points the child's stub at `port`, keeping the cache.
    pub fn switch_stub(&self, port: u16) {
        let ctl = |args: &[&str]| {
            let out = run(
                Command::new(bin("unbound-control"))
                    .arg("-c")
                    .arg(&self.conf)
                    .args(args),
                TOOL_TIMEOUT,
            );
            assert!(out.ok(), "unbound-control {args:?}: {out}");
        };
        ctl(&["stub_remove", &format!("{CHILD}.")]);
        ctl(&[
            "stub_add",
            &format!("{CHILD}."),
            &format!("127.0.0.1@{port}"),
        ]);
        // forget which servers answered, not the records
        ctl(&["flush_infra", "all"]);
    }
}

/// Caches A's DNSKEY RRset in a fresh caching unbound, switches its stub to B, and asks B for
/// names it has not seen: Ok if all validate with the DNSKEY set cached from A.
pub fn cached_a_validates_b(
    tmp: &TempDir,
    label: &str,
    anchor: &str,
    parent: u16,
    a: u16,
    b: u16,
) -> Result<(), String> {
    let ub = Caching::start(tmp, label, anchor, parent, a);
    ub.ad(CHILD, "DNSKEY")
        .map_err(|e| format!("DNSKEY via A not validated:\n{e}"))?;
    ub.switch_stub(b);
    for i in 2..6 {
        ub.ad(&format!("h{i}.{CHILD}"), "A").map_err(|e| {
            format!(
                "h{i} from B with A's cached DNSKEY set:\n{e}\n{}",
                ub.proc.log_tail(10)
            )
        })?;
    }
    Ok(())
}

pub fn zone_keys(port: u16) -> (String, String) {
    let d = rrset(port, CHILD, "DNSKEY");
    let ksk = d
        .iter()
        .find(|k| k.starts_with("257 "))
        .cloned()
        .expect("KSK");
    let zsk = d
        .iter()
        .find(|k| k.starts_with("256 "))
        .cloned()
        .expect("ZSK");
    (ksk, zsk)
}

pub fn sorted(v: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
