//! `signet sign-zone` output is accepted by three independent validators (ldns-verify-zone,
//! dnssec-verify, kzonecheck) for every algorithm we generate keys for, with NSEC, NSEC3 and
//! NSEC3 opt-out, on a zone that exercises real-world syntax; and its non-DNSSEC content is
//! exactly the input's (compared in named-compilezone's canonical form, an independent parser).

mod common;

use common::*;
use std::path::Path;

const ZONE: &str = "example.org";

fn config(dir: &Path, keys: &str, nsec3: &str) -> String {
    format!(
        r#"[server]
state-dir = "{state}"
[keystore.files]
backend = "files"
directory = "{keys_dir}"
[policy.p]
keys = {keys}
{nsec3}
[[zone]]
name = "{ZONE}"
policy = "p"
file = "{zone}"
"#,
        state = dir.join("state").display(),
        keys_dir = dir.join("keys").display(),
        zone = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/full.zone")
            .display(),
    )
}

/// Non-DNSSEC records of a zone file in canonical form.
fn content(path: &Path) -> Vec<String> {
    // -k ignore: the test zone has owner names that check-names dislikes on purpose
    let out = run_tool(
        "named-compilezone",
        &[
            "-q",
            "-k",
            "ignore",
            "-i",
            "none",
            "-D",
            "-o",
            "-",
            ZONE,
            &path.to_string_lossy(),
        ],
    );
    assert!(out.ok(), "named-compilezone: {out}");
    let text = out.stdout;
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && !matches!(f[3], "RRSIG" | "NSEC" | "NSEC3" | "NSEC3PARAM" | "DNSKEY")
        })
        .map(|l| l.to_string())
        .collect();
    v.sort();
    v
}

fn sign_zone(conf: &Path, input: &Path, out: &Path) {
    run(
        std::process::Command::new(signet_bin())
            .arg("sign-zone")
            .arg("-c")
            .arg(conf)
            .args(["--zone", ZONE, "--in"])
            .arg(input)
            .arg("--out")
            .arg(out),
        std::time::Duration::from_secs(120),
    )
    .expect_ok();
}

fn sign_and_check(label: &str, keys: &str, nsec3: &str, csk: bool) {
    let dir = TempDir::new(label);
    let conf = dir.write("signet.toml", config(dir.path(), keys, nsec3));
    let out = dir.join("signed.zone");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/full.zone");
    sign_zone(&conf, &input, &out);
    ldns_verify_zone(&out).unwrap_or_else(|e| panic!("{label}: ldns-verify-zone: {e}"));
    kzonecheck(ZONE, &out).unwrap_or_else(|e| panic!("{label}: kzonecheck: {e}"));
    // A CSK carries the SEP flag and signs everything: dnssec-verify needs -z ("ignore the KSK
    // flag") exactly as for BIND's own CSK zones (dnssec-signzone refuses a KSK-only set without -z).
    let mut args = vec!["-o", ZONE];
    if csk {
        args.push("-z");
    }
    let p = out.to_string_lossy().to_string();
    args.push(&p);
    let v = run_tool("dnssec-verify", &args);
    assert!(v.ok(), "{label}: dnssec-verify: {v}");
    assert_eq!(
        content(&input),
        content(&out),
        "{label}: content differs from the input"
    );
    let text = read_file(&out);
    if nsec3.is_empty() {
        assert!(text.contains("\tNSEC\t"), "{label}: no NSEC");
    } else {
        assert!(text.contains("\tNSEC3PARAM\t"), "{label}: no NSEC3PARAM");
        let opt_out = nsec3.contains("opt-out = true");
        let flags = if opt_out {
            "\tNSEC3\t1 1 0 "
        } else {
            "\tNSEC3\t1 0 0 "
        };
        assert!(text.contains(flags), "{label}: NSEC3 flags");
    }
}

fn kskzsk(alg: &str) -> String {
    format!(r#"[{{ role = "ksk", algorithm = "{alg}" }}, {{ role = "zsk", algorithm = "{alg}" }}]"#)
}

const NSEC3: &str = "nsec3 = { iterations = 0, salt-length = 0, opt-out = false }";
const NSEC3_OPTOUT: &str = "nsec3 = { iterations = 0, salt-length = 8, opt-out = true }";

macro_rules! matrix {
    ($($name:ident: $alg:expr, $nsec3:expr;)*) => {$(
        #[test]
        fn $name() {
            require!("ldns-verify-zone", "dnssec-verify", "kzonecheck", "named-compilezone");
            sign_and_check(stringify!($name), &kskzsk($alg), $nsec3, false);
        }
    )*};
}

matrix! {
    p256_nsec: "ecdsap256sha256", "";
    p256_nsec3: "ecdsap256sha256", NSEC3;
    p256_nsec3_optout: "ecdsap256sha256", NSEC3_OPTOUT;
    p384_nsec: "ecdsap384sha384", "";
    p384_nsec3: "ecdsap384sha384", NSEC3;
    p384_nsec3_optout: "ecdsap384sha384", NSEC3_OPTOUT;
    ed25519_nsec: "ed25519", "";
    ed25519_nsec3: "ed25519", NSEC3;
    ed25519_nsec3_optout: "ed25519", NSEC3_OPTOUT;
}

#[test]
fn csk_default_policy() {
    require!(
        "ldns-verify-zone",
        "dnssec-verify",
        "kzonecheck",
        "named-compilezone"
    );
    sign_and_check(
        "csk",
        r#"[{ role = "csk", algorithm = "ecdsap256sha256" }]"#,
        "",
        true,
    );
}

/// A validator that can fail: a tampered record in signet's output is rejected by all three.
#[test]
fn tampered_output_is_rejected() {
    require!("ldns-verify-zone", "dnssec-verify", "kzonecheck");
    let dir = TempDir::new("tamper");
    let conf = dir.write(
        "signet.toml",
        config(dir.path(), &kskzsk("ecdsap256sha256"), ""),
    );
    let out = dir.join("signed.zone");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/full.zone");
    sign_zone(&conf, &input, &out);
    let text = read_file(&out).replace("192.0.2.4", "192.0.2.99");
    let bad = dir.write("bad.zone", text);
    assert!(ldns_verify_zone(&bad).is_err());
    assert!(dnssec_verify(ZONE, &bad).is_err());
    assert!(kzonecheck(ZONE, &bad).is_err());
}
