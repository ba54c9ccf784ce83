//! Shared scaffolding for the multi-signer tests (`mod multisigner_support;` after
//! `mod common;`): a `signet serve` with `update`, the real `nsupdate` client as the controller, foreign
//! keys made by `dnssec-keygen`, and queries with dig.

#![allow(dead_code)]

pub mod chain;

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The policy keys of [`Signet::start`]: a KSK and a ZSK.
pub const KSK_ZSK: &str = r#"[{ role = "ksk", algorithm = "ecdsap256sha256" }, { role = "zsk", algorithm = "ecdsap256sha256" }]"#;
/// One combined signing key.
pub const CSK: &str = r#"[{ role = "csk", algorithm = "ecdsap256sha256" }]"#;

/// One `signet serve` instance.
pub struct Signet {
    pub proc: Proc,
    pub port: u16,
    pub conf: PathBuf,
    pub dir: PathBuf,
}

impl Signet {
    /// Writes `DIR/NAME/signet.toml` and starts `signet serve`. `zone_extra` goes into the
    /// `[[zone]]` table (source, update, notify ...); `tsig` are the keys it knows.
    pub fn start(
        tmp: &TempDir,
        name: &str,
        port: u16,
        zone: &str,
        tsig: &[&TsigKey],
        zone_extra: &str,
    ) -> Signet {
        Self::start_with_keys(tmp, name, port, zone, tsig, KSK_ZSK, zone_extra)
    }

    /// [`Signet::start`] with the policy's `keys` array given (e.g. [`CSK`]).
    pub fn start_with_keys(
        tmp: &TempDir,
        name: &str,
        port: u16,
        zone: &str,
        tsig: &[&TsigKey],
        policy_keys: &str,
        zone_extra: &str,
    ) -> Signet {
        let dir = tmp.subdir(name);
        let keys: String = tsig.iter().map(|k| k.signet_toml()).collect();
        let conf = dir.join("signet.toml");
        write_file(
            &conf,
            format!(
                r#"[server]
listen = ["127.0.0.1:{port}"]
state-dir = "{state}"
control = "{state}/control.sock"

{keys}
[keystore.files]
backend = "files"
directory = "{keydir}"

[policy.p]
keys = {policy_keys}
dnskey-ttl = "60s"
max-zone-ttl = "5m"
publish-safety = "5s"
retire-safety = "5s"
zone-propagation-delay = "2s"
parent-ds-ttl = "60s"
parent-propagation-delay = "2s"

[[zone]]
name = "{zone}"
policy = "p"
{zone_extra}
"#,
                state = dir.join("state").display(),
                keydir = dir.join("keys").display(),
            ),
        );
        let proc = Self::spawn(&dir, &conf, name);
        Signet {
            proc,
            port,
            conf,
            dir,
        }
    }

    fn spawn(dir: &Path, conf: &Path, name: &str) -> Proc {
        let mut cmd = Command::new(signet_bin());
        cmd.arg("serve")
            .arg("-c")
            .arg(conf)
            .env("SIGNET_LOG", "signet=debug");
        Proc::spawn(name, cmd, dir)
    }

    /// Starts it again on the same configuration and state (after a stop or a kill -9).
    pub fn restart(&mut self, name: &str) {
        self.proc.stop();
        self.proc = Self::spawn(&self.dir, &self.conf, name);
    }

    /// `signet ARGS -c CONF` (a control-socket command).
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(signet_bin());
        cmd.args(args).arg("-c").arg(&self.conf);
        run(&mut cmd, TOOL_TIMEOUT)
    }

    /// Waits until `name` has the `rtype` RRset `want` (as [`rrset`] prints it).
    pub fn wait_rrset(
        &self,
        name: &str,
        rtype: &str,
        want: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let mut got = Vec::new();
        if !wait_until(Duration::from_secs(40), || {
            got = rrset(self.port, name, rtype);
            want(&got)
        }) {
            panic!(
                "{name} {rtype} never became what was expected (last: {got:?}); log:\n{}",
                self.proc.log_tail(40)
            );
        }
        got
    }

    /// Waits for the zone to be served with a serial other than `from`; returns it.
    pub fn serial_change(&self, zone: &str, from: Option<u32>) -> u32 {
        let mut got = None;
        wait_until(Duration::from_secs(40), || {
            got = soa_serial(self.port, zone);
            got.is_some() && got != from
        });
        match got {
            Some(s) if Some(s) != from => s,
            _ => panic!(
                "{zone} never served with a new serial (was {from:?}); log:\n{}",
                self.proc.log_tail(40)
            ),
        }
    }
}

/// A set of records as `dig +short` prints them (one per line, sorted), e.g. the DNSKEY RRset.
pub fn rrset(port: u16, name: &str, rtype: &str) -> Vec<String> {
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        name,
        rtype,
        "+short",
        "+norec",
        "+tcp",
        "+time=2",
        "+tries=2",
    ]);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
        .map(normalise_rdata)
        .collect();
    v.sort();
    v
}

/// RDATA text with base64/hex runs joined (dig splits long fields into words of 56).
pub fn normalise_rdata(s: &str) -> String {
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() > 3 {
        format!("{} {} {} {}", f[0], f[1], f[2], f[3..].concat())
    } else {
        s.trim().to_string()
    }
}

/// Result of one `nsupdate` run.
pub struct Nsupdate {
    pub ok: bool,
    pub text: String,
}

impl Nsupdate {
    /// Asserts that the update failed with `rcode` (nsupdate prints `update failed: RCODE`).
    pub fn assert_failed(&self, rcode: &str, what: &str) {
        assert!(
            !self.ok && self.text.contains(&format!("update failed: {rcode}")),
            "{what}: expected {rcode}, nsupdate said:\n{}",
            self.text
        );
    }

    pub fn assert_ok(&self, what: &str) {
        assert!(
            self.ok && !self.text.contains("update failed"),
            "{what}: nsupdate failed:\n{}",
            self.text
        );
    }
}

/// Runs the real `nsupdate` against 127.0.0.1:`port` for `zone` with the update lines `lines`
/// (`update add ...`, `prereq ...`), TSIG-signed with `key` (`-y`) or unsigned.
pub fn nsupdate(port: u16, zone: &str, key: Option<&TsigKey>, lines: &[String]) -> Nsupdate {
    let mut script = format!("server 127.0.0.1 {port}\nzone {zone}.\n");
    for l in lines {
        script.push_str(l);
        script.push('\n');
    }
    script.push_str("send\nanswer\n");
    let tmp = std::env::temp_dir().join(format!(
        "signet-nsupdate-{}-{}.txt",
        std::process::id(),
        free_port()
    ));
    write_file(&tmp, &script);
    let mut cmd = Command::new(bin("nsupdate"));
    cmd.arg("-t").arg("10");
    if let Some(k) = key {
        cmd.arg("-y").arg(k.dig_arg());
    }
    cmd.arg(&tmp);
    let out = run(&mut cmd, TOOL_TIMEOUT);
    let _ = std::fs::remove_file(&tmp);
    Nsupdate {
        ok: out.ok(),
        text: format!("{script}---\n{}", out.combined()),
    }
}

/// A key made by `dnssec-keygen` (ECDSA P-256) for `zone` in `dir`: its DNSKEY RDATA text
/// (`256 3 13 BASE64`) and its DS (SHA-256) RDATA text.
pub struct ForeignKey {
    pub dnskey: String,
    pub ds: String,
    pub tag: u16,
    /// The `Kzone.+013+tag` stem (for BIND-format import).
    pub stem: PathBuf,
}

pub fn foreign_key(dir: &Path, zone: &str, ksk: bool) -> ForeignKey {
    mkdir(dir);
    let mut args: Vec<String> = vec![
        "-q".into(),
        "-K".into(),
        dir.to_string_lossy().into_owned(),
        "-a".into(),
        "ECDSAP256SHA256".into(),
        "-n".into(),
        "ZONE".into(),
    ];
    if ksk {
        args.push("-f".into());
        args.push("KSK".into());
    }
    args.push(zone.into());
    let out = run_tool("dnssec-keygen", &args);
    assert!(out.ok(), "dnssec-keygen: {out}");
    let stem = out.stdout.trim().to_string();
    let keyfile = dir.join(format!("{stem}.key"));
    let text = read_file(&keyfile);
    let line = text
        .lines()
        .find(|l| l.contains("DNSKEY") && !l.starts_with(';'))
        .unwrap_or_else(|| panic!("no DNSKEY in {}", keyfile.display()));
    let f: Vec<&str> = line.split_whitespace().collect();
    let i = f.iter().position(|x| *x == "DNSKEY").unwrap_or(0);
    let dnskey = normalise_rdata(&f[i + 1..].join(" "));
    let ds_out = run_tool("dnssec-dsfromkey", &["-2", &keyfile.to_string_lossy()]);
    assert!(ds_out.ok(), "dnssec-dsfromkey: {ds_out}");
    let dl: Vec<&str> = ds_out.stdout.split_whitespace().collect();
    let j = dl.iter().position(|x| *x == "DS").unwrap_or(0);
    let ds = normalise_rdata(&dl[j + 1..].join(" "));
    let tag: u16 = stem
        .rsplit('+')
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    ForeignKey {
        dnskey,
        ds,
        tag,
        stem: dir.join(stem),
    }
}

/// The tag of a DNSKEY given as presentation RDATA (`flags proto alg base64`).
pub fn tag_of(dnskey: &str) -> u16 {
    let f: Vec<&str> = dnskey.split_whitespace().collect();
    let flags: u16 = f[0].parse().unwrap();
    let alg: u8 = f[2].parse().unwrap();
    let pk = data_encoding::BASE64
        .decode(f[3..].concat().as_bytes())
        .unwrap();
    signet::keystore::key_tag(&signet::keystore::dnskey_rdata(flags, alg, &pk))
}

/// A different P-256 "key" (not a valid point: it is refused before anything uses it) whose
/// tag equals that of `dnskey`: 0x0101 moved from one 16-bit word of the public key to the
/// next (RFC 4034 Appendix B: the tag is a checksum of the words).
pub fn colliding_key(dnskey: &str) -> String {
    let f: Vec<&str> = dnskey.split_whitespace().collect();
    let mut pk = data_encoding::BASE64
        .decode(f[3..].concat().as_bytes())
        .unwrap();
    for i in (0..pk.len() - 3).step_by(2) {
        let a = u16::from_be_bytes([pk[i], pk[i + 1]]);
        let b = u16::from_be_bytes([pk[i + 2], pk[i + 3]]);
        if a <= 0xfefe && b >= 0x0101 {
            pk[i..i + 2].copy_from_slice(&(a + 0x0101).to_be_bytes());
            pk[i + 2..i + 4].copy_from_slice(&(b - 0x0101).to_be_bytes());
            break;
        }
    }
    let out = format!(
        "{} {} {} {}",
        f[0],
        f[1],
        f[2],
        data_encoding::BASE64.encode(&pk)
    );
    assert_eq!(tag_of(&out), tag_of(dnskey));
    assert_ne!(normalise_rdata(&out), normalise_rdata(dnskey));
    out
}

/// A random 64-octet "P-256 public key" DNSKEY (ZSK flags) for cap tests.
pub fn random_zsk() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 64];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    format!("256 3 13 {}", data_encoding::BASE64.encode(&b))
}

/// The AXFR of `zone` written to `path` and checked by ldns-verify-zone, dnssec-verify and
/// kzonecheck. With `foreign_cds`, kzonecheck's "CDS/CDNSKEY not match DNSKEY" is the one
/// finding accepted: in RFC 8901 model 2 the CDS/CDNSKEY set holds the other provider's KSK,
/// which is not in this provider's DNSKEY RRset (BIND issue 2710 describes the same situation);
/// anything else kzonecheck reports still fails the test.
pub fn verify_axfr(port: u16, zone: &str, key: &TsigKey, path: &Path, foreign_cds: bool) {
    let text = axfr(port, zone, Some(key));
    assert!(!axfr_failed(&text), "AXFR failed:\n{text}");
    axfr_to_file(&text, path);
    ldns_verify_zone(path).unwrap_or_else(|e| panic!("ldns-verify-zone: {e}"));
    dnssec_verify(zone, path).unwrap_or_else(|e| panic!("dnssec-verify: {e}"));
    match kzonecheck(zone, path) {
        Ok(_) => {}
        Err(e) if foreign_cds => {
            let findings: Vec<&str> = e
                .lines()
                .filter(|l| l.starts_with('[') && l.contains(']'))
                .collect();
            assert!(
                !findings.is_empty()
                    && findings
                        .iter()
                        .all(|l| l.ends_with("CDNSKEY not match DNSKEY")
                            || l.ends_with("CDS not match DNSKEY")),
                "kzonecheck: {e}"
            );
        }
        Err(e) => panic!("kzonecheck: {e}"),
    }
}

/// Tags of the keys that made the RRSIGs over `rtype` at `name` (dig +dnssec).
pub fn signer_tags(port: u16, name: &str, rtype: &str) -> Vec<u16> {
    let out = dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        name,
        rtype,
        "+dnssec",
        "+norec",
        "+tcp",
        "+noall",
        "+answer",
    ]);
    let mut v: Vec<u16> = out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 10 && f[3] == "RRSIG" && f[4] == rtype)
                .then(|| f[10].parse().ok())
                .flatten()
        })
        .collect();
    v.sort();
    v
}
