//! Shared scaffolding for the PKCS#11 and import tests (`mod hsm_support;` next to
//! `mod common;`): a SoftHSM2 token directory per test, configurations with a `pkcs11` keystore,
//! and a small zone.
//!
//! SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, so each test gets its own
//! `softhsm2.conf` and token directory and passes `SOFTHSM2_CONF` to every process it starts
//! (signet, softhsm2-util, pkcs11-tool); nothing is shared between tests.

#![allow(dead_code)]

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Debian's SoftHSM2 module (package softhsm2).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The token every test initialises.
pub const LABEL: &str = "signet";
pub const PIN: &str = "1234";
pub const SO_PIN: &str = "5678";

/// True if SoftHSM2 and pkcs11-tool are installed; otherwise prints SKIP (or panics on CI).
pub fn have_softhsm() -> bool {
    let mut ok = require("softhsm2-util", "softhsm2").is_some();
    ok &= require("pkcs11-tool", "opensc").is_some();
    if !Path::new(MODULE).exists() {
        if on_ci() {
            panic!("{MODULE} is missing: install softhsm2");
        }
        eprintln!("SKIP: {MODULE} is missing (apt-get install softhsm2)");
        ok = false;
    }
    ok
}

/// A SoftHSM2 installation of its own: `softhsm2.conf` and a token directory in the test's
/// temp dir, with one initialised token labelled [`LABEL`] (user PIN [`PIN`]).
pub struct SoftHsm {
    pub conf: PathBuf,
    pub tokens: PathBuf,
}

impl SoftHsm {
    pub fn new(tmp: &TempDir) -> SoftHsm {
        let tokens = tmp.subdir("softhsm/tokens");
        let conf = tmp.write(
            "softhsm/softhsm2.conf",
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        );
        let hsm = SoftHsm { conf, tokens };
        hsm.init_token(LABEL);
        hsm
    }

    /// Initialises another token in the first free slot.
    pub fn init_token(&self, label: &str) {
        run(
            self.cmd("softhsm2-util").args([
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ]),
            TOOL_TIMEOUT,
        )
        .expect_ok();
    }

    /// A command with `SOFTHSM2_CONF` set (`signet` means the binary under test).
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = if program == "signet" {
            Command::new(signet_bin())
        } else {
            Command::new(bin(program))
        };
        c.env("SOFTHSM2_CONF", &self.conf);
        c
    }

    /// Runs `signet ARGS` with this SoftHSM.
    pub fn signet<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        run(
            self.cmd("signet").args(args).env("SIGNET_LOG", "info"),
            Duration::from_secs(300),
        )
    }

    /// `pkcs11-tool --list-objects --login` on token [`LABEL`].
    pub fn list_objects(&self) -> String {
        run(
            self.cmd("pkcs11-tool").args([
                "--module",
                MODULE,
                "--token-label",
                LABEL,
                "--login",
                "--pin",
                PIN,
                "--list-objects",
            ]),
            TOOL_TIMEOUT,
        )
        .expect_ok()
    }
}

/// The private key objects in `pkcs11-tool --list-objects` output: (label, block text).
pub fn private_key_objects(listing: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in listing.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            if line.starts_with("Private Key Object") {
                cur = Some((String::new(), format!("{line}\n")));
            }
            continue;
        }
        if let Some((label, text)) = cur.as_mut() {
            text.push_str(line);
            text.push('\n');
            if let Some(l) = line.trim().strip_prefix("label:") {
                *label = l.trim().to_string();
            }
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
    out
}

/// `[keystore.hsm]` for this SoftHSM with the PIN in `pin_file`.
pub fn hsm_keystore(pin: &str) -> String {
    format!(
        "[keystore.hsm]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken-label = \"{LABEL}\"\npin = \"{pin}\"\n"
    )
}

/// A configuration: state in `dir/state`, a files keystore in `dir/keys`, the HSM keystore
/// (PIN from `dir/hsm.pin`, written here), policy `p` with `keys`, and the file-sourced `zones`
/// (name, file).
pub fn config(dir: &Path, keys: &str, zones: &[(&str, &Path)], extra: &str) -> String {
    write_file(&dir.join("hsm.pin"), format!("{PIN}\n"));
    let mut s = format!(
        "[server]\nstate-dir = \"{}\"\n\n[keystore.files]\nbackend = \"files\"\ndirectory = \"{}\"\n\n{}\n[policy.p]\nkeys = {keys}\n\n{extra}",
        dir.join("state").display(),
        dir.join("keys").display(),
        hsm_keystore(&format!("file:{}", dir.join("hsm.pin").display())),
    );
    for (name, file) in zones {
        s.push_str(&format!(
            "\n[[zone]]\nname = \"{name}\"\npolicy = \"p\"\nfile = \"{}\"\n",
            file.display()
        ));
    }
    s
}

/// [`verify_all`] for a zone signed with a CSK: dnssec-verify needs `-z` to accept a key
/// with the SEP bit signing everything.
pub fn verify_all_csk(zone: &str, path: &Path) {
    ldns_verify_zone(path).unwrap_or_else(|e| panic!("ldns-verify-zone: {e}"));
    let o = run_tool(
        "dnssec-verify",
        &["-z", "-o", zone, &path.to_string_lossy()],
    );
    assert!(o.ok(), "dnssec-verify: {o}");
    kzonecheck(zone, path).unwrap_or_else(|e| panic!("kzonecheck: {e}"));
}

/// A small zone with a delegation, glue and a few types.
pub fn zone_text(origin: &str, serial: u32) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\n\
         @ IN MX 10 mail\n\
         ns1 IN A 192.0.2.1\n\
         mail IN A 192.0.2.2\n\
         www IN A 192.0.2.3\n\
         www IN AAAA 2001:db8::3\n\
         txt IN TXT \"hello from the hsm\"\n\
         sub IN NS ns.sub\n\
         ns.sub IN A 192.0.2.4\n"
    )
}

/// `signet sign-zone -c CONF --zone ZONE --in IN --out OUT`, expecting success.
pub fn sign_zone(hsm: &SoftHsm, conf: &Path, zone: &str, input: &Path, out: &Path) -> String {
    let o = hsm.signet(&[
        "sign-zone".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        "--zone".as_ref(),
        zone.as_ref(),
        "--in".as_ref(),
        input.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.ok(), "{o}");
    o.stderr
}

/// The DNSKEY records of a zone file (owner TTL class type flags proto alg key), normalised
/// and sorted.
pub fn dnskeys(path: &Path) -> Vec<String> {
    let text = read_file(path);
    let mut v: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|t| *t == "DNSKEY")?;
            if i == 0 || f[i - 1] != "IN" || f.len() < i + 5 {
                return None;
            }
            if f.first().is_some_and(|t| t.starts_with(';')) {
                return None;
            }
            Some(format!(
                "{} {} {} {} {}",
                f[i + 1],
                f[i + 2],
                f[i + 3],
                f[i + 4..].concat(),
                f[0].to_ascii_lowercase()
            ))
        })
        .collect();
    v.sort();
    v
}
