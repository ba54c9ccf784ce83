//! The configuration API as `signet check` and `signet serve` use it: `load` reads and validates
//! a file without looking at anything else; `check` also looks at zone files and directories.
//! Every problem is reported, as `FILE:LINE: message` or `zone NAME: message`.

use std::fs;
use std::path::{Path, PathBuf};

use signet::config::{self, KeystoreBackend, Lifetime, ZoneSource};

/// A fresh directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("signet-config-check-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
}

const ZONE: &str = "$ORIGIN example.com.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ NS ns1\nns1 A 192.0.2.1\n";

fn good_config(dir: &Path) -> String {
    format!(
        r#"[server]
listen = ["127.0.0.1:5353"]
state-dir = "{dir}/state"

[tsig.xfr]
algorithm = "hmac-sha256"
secret = "c2lnbmV0LXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmch"

[keystore.files]
backend = "files"
directory = "{dir}/keys"

[policy.rolling]
keys = [
  {{ role = "ksk", algorithm = "ecdsap256sha256", lifetime = "P1Y" }},
  {{ role = "zsk", algorithm = "ecdsap256sha256", lifetime = "90d" }},
]
signatures-validity = "P14D"
signatures-refresh = "5d"
signatures-jitter = "1h30m"

[[zone]]
name = "example.com"
file = "{dir}/example.com.zone"
policy = "rolling"
allow-transfer = ["127.0.0.0/8", "key:xfr"]

[[zone]]
name = "example.net."
primaries = ["192.0.2.1"]
transfer-tsig = "xfr"
"#,
        dir = dir.display()
    )
}

#[test]
fn check_accepts_a_good_configuration() {
    let dir = scratch("good");
    write(&dir.join("example.com.zone"), ZONE);
    let conf = dir.join("signet.toml");
    write(&conf, &good_config(&dir));

    let cfg = match config::check(&conf) {
        Ok(c) => c,
        Err(p) => panic!("unexpected problems:\n{p}"),
    };
    assert_eq!(cfg.path, conf);
    assert_eq!(cfg.server.control, dir.join("state").join("control.sock"));
    assert_eq!(cfg.zones.len(), 2);
    let com = cfg.zone("EXAMPLE.com.").unwrap();
    assert_eq!(com.source, ZoneSource::File(dir.join("example.com.zone")));
    let policy = cfg.policy_for(com);
    assert_eq!(policy.name, "rolling");
    assert_eq!(policy.keys[0].lifetime, Lifetime::Secs(365 * 86400));
    assert_eq!(policy.keys[1].lifetime, Lifetime::Secs(90 * 86400));
    assert_eq!(policy.signatures_validity, 14 * 86400);
    assert_eq!(policy.signatures_jitter, 5400);
    assert_eq!(
        cfg.policy_for(cfg.zone("example.net").unwrap()).name,
        "default"
    );
    assert_eq!(
        cfg.keystores["files"].backend,
        KeystoreBackend::Files {
            directory: dir.join("keys")
        }
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    // check creates nothing.
    assert!(!dir.join("keys").exists());
    assert!(!dir.join("state").exists());
}

#[test]
fn load_does_not_look_at_zone_files_but_check_does() {
    let dir = scratch("missing");
    let conf = dir.join("signet.toml");
    // The keystore directory sits under a regular file: it can never be created.
    write(&dir.join("plain"), "not a directory\n");
    let text = good_config(&dir).replace(
        &format!("directory = \"{}/keys\"", dir.display()),
        &format!("directory = \"{}/plain/keys\"", dir.display()),
    );
    write(&conf, &text);

    assert!(
        config::load(&conf).is_ok(),
        "load must not check zone files"
    );
    let problems = config::check(&conf).unwrap_err();
    let text = problems.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!(
            "{}:9: keystore files: directory {}/plain/keys: cannot be created: {}/plain is not a directory",
            conf.display(),
            dir.display(),
            dir.display()
        )
    );
    assert_eq!(
        lines[1],
        format!(
            "zone example.com: zone file {}/example.com.zone: does not exist",
            dir.display()
        )
    );
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let dir = scratch("many");
    let conf = dir.join("signet.toml");
    write(
        &conf,
        r#"[server]
listen = ["127.0.0.1:5353"]
state_dir = "state"

[tsig.old]
algorithm = "hmac-md5"
secret = "c2lnbmV0LXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmch"

[policy.fast]
signatures-validity = "2d"
signatures-refresh = "3d"
nsec3 = { iterations = 150, salt-length = 0 }

[[zone]]
name = "example.com"
file = "example.com.zone"
primaries = ["192.0.2.1"]

[[zone]]
name = "example.org"
policy = "slow"
file = "example.org.zone"

[[zone]]
name = "Example.COM."
primaries = ["192.0.2.1"]
transfer-tsig = "missing"
"#,
    );
    let problems = config::load(&conf).unwrap_err();
    let prefix = format!("{}:", conf.display());
    let text = problems.to_string();
    let got: Vec<&str> = text.lines().collect();
    let want = [
        "3: unknown key `state_dir` in [server]; did you mean `state-dir`?",
        "6: [tsig.old]: hmac-md5 is refused",
        "11: [policy.fast]: `signatures-refresh` (3d) must be shorter than `signatures-validity` (2d)",
        "12: [policy.fast]: nsec3 iterations 150 is not allowed",
        "17: zone example.com: has both `file` and `primaries`",
        "21: zone example.org: policy \"slow\" is not defined",
        "25: zone example.com: defined twice (first at line 14)",
        "27: zone example.com: `transfer-tsig`: TSIG key \"missing\" is not defined",
    ];
    assert_eq!(got.len(), want.len(), "{text}");
    for (line, want) in got.iter().zip(want) {
        let rest = line
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
        assert!(
            rest.starts_with(want),
            "{rest:?} does not start with {want:?}"
        );
    }
}

#[test]
fn unreadable_and_broken_files() {
    let dir = scratch("broken");
    let missing = dir.join("nope.toml");
    let p = config::load(&missing).unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(
        p.to_string().starts_with(&format!(
            "{}: cannot read the configuration",
            missing.display()
        )),
        "{p}"
    );

    let syntax = dir.join("syntax.toml");
    write(
        &syntax,
        "[server]\nlisten = [\"127.0.0.1:5353\"\n\n[[zone]]\nname = \"a\"\n",
    );
    let p = config::check(&syntax).unwrap_err();
    assert!(p.iter().all(|p| p.line.is_some()), "{p}");
    assert!(p.to_string().contains("TOML syntax error"), "{p}");

    let binary = dir.join("binary.toml");
    fs::write(&binary, b"[server]\n\xff\xfe\n").unwrap();
    let p = config::load(&binary).unwrap_err();
    assert_eq!(
        p.to_string(),
        format!(
            "{}:2: the configuration is not valid UTF-8",
            binary.display()
        )
    );
}

#[test]
fn relative_paths_are_kept_relative_to_the_working_directory() {
    let cfg = config::parse_str(
        "[keystore.files]\nbackend = \"files\"\ndirectory = \"keys\"\n\n[[zone]]\nname = \"example.com\"\nfile = \"conf/example.com.zone\"\n",
        Path::new("conf/signet.toml"),
    )
    .unwrap();
    assert_eq!(
        cfg.zones[0].source,
        ZoneSource::File(PathBuf::from("conf/example.com.zone"))
    );
    assert_eq!(
        cfg.keystores["files"].backend,
        KeystoreBackend::Files {
            directory: PathBuf::from("keys")
        }
    );
}

#[test]
fn durations() {
    assert_eq!(config::parse_duration("P30D"), Ok(30 * 86400));
    assert_eq!(config::parse_duration("1h30m"), Ok(5400));
    assert_eq!(config::parse_duration("PT2H"), Ok(7200));
    assert_eq!(config::parse_duration("P1DT12H"), Ok(36 * 3600));
    assert_eq!(config::parse_duration("2w"), Ok(14 * 86400));
    assert_eq!(config::parse_duration("45"), Ok(45));
    assert_eq!(config::parse_lifetime("unlimited"), Ok(Lifetime::Unlimited));
    assert!(config::parse_duration("unlimited").is_err());
    assert!(config::parse_duration("3 days").is_err());
}
