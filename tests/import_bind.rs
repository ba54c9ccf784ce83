//! `signet keys import`: a zone signed by BIND (dnssec-keygen + dnssec-signzone) moves to signet
//! with its keys (issue 6). signet signs with the very same DNSKEY set, so the DS at the parent
//! (BIND's dsset file) keeps validating: a BIND secondary that transferred the zone from BIND's
//! primary validates before the switch, while its primary is gone, and after it transferred
//! the zone from signet on the same address. Algorithms 8, 13, 14, 15 into the files keystore;
//! an RSA-1024 key is refused by the files keystore with a clear reason and accepted on the
//! token; and the refusals (wrong zone, no such role in the policy, twice, a key that does not
//! match its .key file, a zone that already has keys) change nothing.

mod common;
mod hsm_support;

use common::*;
use hsm_support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const ZONE: &str = "example.com";

/// `dnssec-keygen -K DIR ARGS example.com` → the path of the `.private` file.
fn keygen(dir: &Path, args: &[&str]) -> PathBuf {
    let mut full = vec!["-q", "-K", dir.to_str().unwrap_or(".")];
    full.extend_from_slice(args);
    full.push(ZONE);
    let name = run_tool("dnssec-keygen", &full).expect_ok();
    dir.join(format!("{}.private", name.trim()))
}

/// The DNSKEY RDATA of `.key` files, as "flags proto alg key owner" like [`dnskeys`].
fn key_files(privates: &[&Path]) -> Vec<String> {
    let mut v: Vec<String> = privates
        .iter()
        .flat_map(|p| dnskeys(&p.with_extension("key")))
        .collect();
    v.sort();
    v
}

/// `dig +short DNSKEY` at 127.0.0.1:`port`, normalised to "flags proto alg key".
fn served_dnskeys(port: u16) -> BTreeSet<String> {
    dig(&[
        "@127.0.0.1",
        "-p",
        &port.to_string(),
        "+short",
        ZONE,
        "DNSKEY",
    ])
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 4).then(|| format!("{} {} {} {}", f[0], f[1], f[2], f[3..].concat()))
    })
    .collect()
}

fn without_owner(v: &[String]) -> BTreeSet<String> {
    v.iter()
        .map(|s| {
            s.rsplit_once(' ')
                .map(|(a, _)| a.to_string())
                .unwrap_or_default()
        })
        .collect()
}

fn signet(args: &[&std::ffi::OsStr]) -> Output {
    run(
        Command::new(signet_bin())
            .args(args)
            .env("SIGNET_LOG", "warn"),
        Duration::from_secs(120),
    )
}

fn import(conf: &Path, private: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "keys".as_ref(),
        "import".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        ZONE.as_ref(),
        private.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    signet(&args)
}

fn unsigned_zone(serial: u32) -> String {
    zone_text(ZONE, serial)
}

#[test]
fn bind_zone_moves_to_signet_behind_the_same_secondary() {
    require!(
        "dnssec-keygen",
        "dnssec-signzone",
        "named",
        "dig",
        "delv",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let tmp = TempDir::new("import-switch");
    let kdir = tmp.subdir("bind-keys");
    let ksk = keygen(&kdir, &["-a", "ECDSAP256SHA256", "-f", "KSK"]);
    let zsk = keygen(&kdir, &["-a", "ECDSAP256SHA256"]);

    // BIND signs the zone; dsset-example.com. is what the parent holds
    let unsigned = tmp.write("unsigned.zone", unsigned_zone(2024010101));
    let bind_signed = tmp.join("bind.signed");
    run(
        Command::new(bin("dnssec-signzone"))
            .args(["-S", "-K"])
            .arg(&kdir)
            .arg("-d")
            .arg(tmp.path())
            .args(["-o", ZONE, "-f"])
            .arg(&bind_signed)
            .arg(&unsigned),
        VERIFY_TIMEOUT,
    )
    .expect_ok();
    let dsset = read_file(&tmp.join("dsset-example.com."));
    let anchors = write_delv_anchor(tmp.path(), &dsset);

    // before: BIND's primary, a BIND secondary, a validating client
    let key = TsigKey::generate("xfr-key");
    let primary_port = free_port();
    let primary = NamedPrimary::builder(&key)
        .port(primary_port)
        .zone(ZONE, &read_file(&bind_signed))
        .start(&tmp);
    let secondary = NamedSecondary::builder(primary_port, &key)
        .zone(ZONE)
        .start(&tmp);
    secondary
        .wait_serial(ZONE, 2024010101, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_validated(&delv(
        secondary.port(),
        &anchors,
        ZONE,
        "www.example.com",
        "A",
    ));
    let bind_keys = served_dnskeys(secondary.port());
    assert_eq!(bind_keys.len(), 2, "{bind_keys:?}");

    // the keys move to signet
    let conf = tmp.write(
        "signet.toml",
        format!(
            r#"[server]
listen = ["127.0.0.1:{primary_port}"]
state-dir = "{state}"

{tsig}
[keystore.files]
backend = "files"
directory = "{keys}"

[policy.p]
keys = [{{ role = "ksk", algorithm = 13, lifetime = "unlimited", keystore = "files" }},
        {{ role = "zsk", algorithm = 13, lifetime = "unlimited", keystore = "files" }}]

[[zone]]
name = "{ZONE}"
policy = "p"
file = "{zone}"
notify = ["127.0.0.1:{sec}"]
allow-transfer = ["key:{kname}"]
"#,
            state = tmp.join("state").display(),
            keys = tmp.join("keys").display(),
            tsig = key.signet_toml(),
            zone = tmp.join("signet.zone").display(),
            sec = secondary.port(),
            kname = key.name,
        ),
    );
    for k in [&ksk, &zsk] {
        let o = import(&conf, k, &[]);
        assert!(o.ok(), "{o}");
        assert!(o.stdout.contains("imported"), "{o}");
    }
    let o = signet(&[
        "ds".as_ref(),
        "--offline".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        ZONE.as_ref(),
    ]);
    assert!(o.ok(), "{o}");
    // "TAG ALG DT HEX", the digest in one piece and upper case
    let ds_rdata = |line: &str| -> String {
        let f: Vec<&str> = line
            .split_whitespace()
            .skip_while(|t| *t != "DS")
            .skip(1)
            .collect();
        if f.len() < 4 {
            return String::new();
        }
        format!(
            "{} {} {} {}",
            f[0],
            f[1],
            f[2],
            f[3..].concat().to_uppercase()
        )
    };
    let want_ds = ds_rdata(&dsset);
    let got: Vec<String> = o.stdout.lines().map(ds_rdata).collect();
    assert!(
        got.contains(&want_ds),
        "signet's DS {got:?} is not BIND's {want_ds}"
    );

    // offline signing: the same DNSKEY set as BIND's key files, accepted by the validators
    write_file(&tmp.join("signet.zone"), unsigned_zone(2024010102));
    let offline = tmp.join("signet-offline.signed");
    let o = signet(&[
        "sign-zone".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        "--zone".as_ref(),
        ZONE.as_ref(),
        "--in".as_ref(),
        tmp.join("signet.zone").as_os_str(),
        "--out".as_ref(),
        offline.as_os_str(),
    ]);
    assert!(o.ok(), "{o}");
    verify_all(ZONE, &offline);
    assert_eq!(
        without_owner(&dnskeys(&offline)),
        without_owner(&key_files(&[&ksk, &zsk]))
    );
    assert!(
        std::fs::read_dir(tmp.join("keys")).unwrap().count() == 4,
        "signet generated keys of its own"
    );

    // during: BIND's primary is gone, the secondary still serves BIND's version
    drop(primary);
    assert_validated(&delv(
        secondary.port(),
        &anchors,
        ZONE,
        "www.example.com",
        "A",
    ));

    // after: signet serves on the primary's address; the secondary transfers from it
    let mut cmd = Command::new(signet_bin());
    cmd.arg("serve")
        .arg("-c")
        .arg(&conf)
        .env("SIGNET_LOG", "signet=info");
    let server = Proc::spawn("signet", cmd, tmp.path());
    assert!(
        wait_until(Duration::from_secs(60), || secondary
            .serial(ZONE)
            .is_some_and(|s| s != 2024010101)),
        "the secondary did not transfer from signet:\n{}",
        server.log_tail(40)
    );
    assert_eq!(served_dnskeys(primary_port), bind_keys);
    assert_eq!(served_dnskeys(secondary.port()), bind_keys);
    for (q, t) in [
        ("www.example.com", "A"),
        ("txt.example.com", "TXT"),
        ("nope.example.com", "A"),
    ] {
        assert_validated(&delv(secondary.port(), &anchors, ZONE, q, t));
        assert_validated(&delv(primary_port, &anchors, ZONE, q, t));
    }
    let status = run(
        Command::new(signet_bin()).args(["keys", "-c", &conf.to_string_lossy(), ZONE]),
        Duration::from_secs(30),
    );
    assert!(status.ok(), "{status}");
}

/// Imports KSK and ZSK of `alg` into the files keystore and signs with them.
fn roundtrip(label: &str, keygen_args: &[&str], alg: u8) {
    require!(
        "dnssec-keygen",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let tmp = TempDir::new(label);
    let kdir = tmp.subdir("bind-keys");
    let mut a = keygen_args.to_vec();
    a.extend(["-f", "KSK"]);
    let ksk = keygen(&kdir, &a);
    let zsk = keygen(&kdir, keygen_args);
    let input = tmp.write("z.zone", unsigned_zone(7));
    let keys = format!(
        r#"[{{ role = "ksk", algorithm = {alg}, lifetime = "unlimited", keystore = "files" }},
            {{ role = "zsk", algorithm = {alg}, lifetime = "unlimited", keystore = "files" }}]"#
    );
    let conf = tmp.write(
        "signet.toml",
        config(tmp.path(), &keys, &[(ZONE, &input)], ""),
    );
    // ZSK first: the order does not matter
    for k in [&zsk, &ksk] {
        let o = import(&conf, k, &["--json"]);
        assert!(o.ok(), "{o}");
        let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
        assert_eq!(v["keystore"], "files");
        assert_eq!(v["key"]["state"], "active");
    }
    let out = tmp.join("signed.zone");
    let o = signet(&[
        "sign-zone".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        "--zone".as_ref(),
        ZONE.as_ref(),
        "--in".as_ref(),
        input.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(o.ok(), "{o}");
    verify_all(ZONE, &out);
    assert_eq!(
        without_owner(&dnskeys(&out)),
        without_owner(&key_files(&[&ksk, &zsk]))
    );
}

#[test]
fn import_rsasha256_2048() {
    roundtrip("import-rsa", &["-a", "RSASHA256", "-b", "2048"], 8);
}

#[test]
fn import_ecdsap384() {
    roundtrip("import-p384", &["-a", "ECDSAP384SHA384"], 14);
}

#[test]
fn import_ed25519() {
    roundtrip("import-ed25519", &["-a", "ED25519"], 15);
}

#[test]
fn rsa_1024_goes_to_the_token_not_to_files() {
    if !have_softhsm() {
        return;
    }
    require!(
        "dnssec-keygen",
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck"
    );
    let tmp = TempDir::new("import-rsa1024");
    let hsm = SoftHsm::new(&tmp);
    let kdir = tmp.subdir("bind-keys");
    let ksk = keygen(&kdir, &["-a", "RSASHA256", "-b", "2048", "-f", "KSK"]);
    let zsk = keygen(&kdir, &["-a", "RSASHA256", "-b", "1024"]);
    let input = tmp.write("z.zone", unsigned_zone(7));
    // the files keystore cannot sign with a 1024-bit key: refused, naming the way out
    let files = r#"[{ role = "ksk", algorithm = 8, lifetime = "unlimited", keystore = "files" },
                    { role = "zsk", algorithm = 8, lifetime = "unlimited", keystore = "files" }]"#;
    let conf = tmp.write(
        "files.toml",
        config(tmp.path(), files, &[(ZONE, &input)], ""),
    );
    let o = hsm.signet(&[
        "keys".as_ref(),
        "import".as_ref(),
        "-c".as_ref(),
        conf.as_os_str(),
        ZONE.as_ref(),
        zsk.as_os_str(),
    ]);
    assert!(!o.ok(), "{o}");
    assert!(o.stderr.contains("1024 bits"), "{o}");
    assert!(o.stderr.contains("pkcs11"), "{o}");
    assert!(
        !tmp.join("keys").exists() || std::fs::read_dir(tmp.join("keys")).unwrap().count() == 0
    );

    // KSK in files, the 1024-bit ZSK on the token
    let mixed = r#"[{ role = "ksk", algorithm = 8, lifetime = "unlimited", keystore = "files" },
                    { role = "zsk", algorithm = 8, lifetime = "unlimited", keystore = "hsm" }]"#;
    let conf = tmp.write(
        "mixed.toml",
        config(tmp.path(), mixed, &[(ZONE, &input)], ""),
    );
    for k in [&ksk, &zsk] {
        let o = hsm.signet(&[
            "keys".as_ref(),
            "import".as_ref(),
            "-c".as_ref(),
            conf.as_os_str(),
            ZONE.as_ref(),
            k.as_os_str(),
        ]);
        assert!(o.ok(), "{o}");
    }
    let privs = private_key_objects(&hsm.list_objects());
    assert_eq!(privs.len(), 1, "{privs:?}");
    assert!(privs[0].1.contains("sensitive"), "{privs:?}");
    let out = tmp.join("signed.zone");
    sign_zone(&hsm, &conf, ZONE, &input, &out);
    verify_all(ZONE, &out);
    assert_eq!(
        without_owner(&dnskeys(&out)),
        without_owner(&key_files(&[&ksk, &zsk]))
    );
}

#[test]
fn refusals_change_nothing() {
    require!("dnssec-keygen");
    let tmp = TempDir::new("import-refusals");
    let kdir = tmp.subdir("bind-keys");
    let ksk = keygen(&kdir, &["-a", "ECDSAP256SHA256", "-f", "KSK"]);
    let zsk = keygen(&kdir, &["-a", "ECDSAP256SHA256"]);
    let ed = keygen(&kdir, &["-a", "ED25519", "-f", "KSK"]);
    let input = tmp.write("z.zone", unsigned_zone(7));
    let csk = r#"[{ role = "csk", algorithm = 13, lifetime = "unlimited", keystore = "files" }]"#;
    let conf = tmp.write(
        "signet.toml",
        config(tmp.path(), csk, &[(ZONE, &input)], ""),
    );
    let keys_dir = tmp.join("keys");
    let count = || std::fs::read_dir(&keys_dir).map(|d| d.count()).unwrap_or(0);
    let refused = |private: &Path, needle: &str| {
        let o = import(&conf, private, &[]);
        assert!(!o.ok(), "{o}");
        assert!(o.stderr.contains(needle), "{needle:?} not in: {o}");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{o}");
    };
    // a ZSK under a CSK-only policy, an algorithm the policy does not use
    refused(&zsk, "has no ZSK with algorithm 13");
    refused(&ed, "has no KSK or CSK with algorithm 15");
    // a .private whose .key is another key's
    let odd = tmp.subdir("odd");
    let stem = zsk.file_stem().unwrap().to_string_lossy().to_string();
    std::fs::copy(&zsk, odd.join(format!("{stem}.private"))).unwrap();
    std::fs::copy(ksk.with_extension("key"), odd.join(format!("{stem}.key"))).unwrap();
    refused(&odd.join(format!("{stem}.private")), "does not match");
    // no .key beside it
    let lonely = tmp.subdir("lonely");
    std::fs::copy(&ksk, lonely.join("Kexample.com.+013+00001.private")).unwrap();
    refused(&lonely.join("Kexample.com.+013+00001.private"), ".key");
    // another zone's key
    let other = tmp.write(
        "other.toml",
        read_file(&conf).replace("name = \"example.com\"", "name = \"example.net\""),
    );
    let o = signet(&[
        "keys".as_ref(),
        "import".as_ref(),
        "-c".as_ref(),
        other.as_os_str(),
        "example.net".as_ref(),
        ksk.as_os_str(),
    ]);
    assert!(
        !o.ok() && o.stderr.contains("belongs to zone example.com."),
        "{o}"
    );
    assert_eq!(count(), 0, "a refused import left files");

    // the KSK becomes the CSK; importing it again is refused
    let o = import(&conf, &ksk, &["--json"]);
    assert!(o.ok(), "{o}");
    assert!(o.stdout.contains("\"role\":\"csk\""), "{o}");
    assert_eq!(count(), 2);
    refused(&ksk, "already imported");
    // a second 257 key for the same role would never be used: refused
    let ksk2 = keygen(&kdir, &["-a", "ECDSAP256SHA256", "-f", "KSK"]);
    refused(&ksk2, "already has a usable csk");
    assert_eq!(count(), 2);
}
