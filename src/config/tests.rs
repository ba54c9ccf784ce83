//! Unit tests of parsing and validation: every error class with its line.

use std::net::SocketAddr;
use std::path::Path;

use super::*;

const PATH: &str = "test.toml";

fn parse(text: &str) -> Result<Config, Problems> {
    parse_str(text, Path::new(PATH))
}

/// The (line, message) of every error; panics if the text parses.
fn errors(text: &str) -> Vec<(Option<usize>, String)> {
    match parse(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(p) => p.iter().map(|p| (p.line, p.to_string())).collect(),
    }
}

/// Asserts exactly one error, on `line`, whose display contains `needle`.
fn one_error(text: &str, line: usize, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert_eq!(errs[0].0, Some(line), "{errs:#?}");
    assert!(
        errs[0].1.contains(needle),
        "{:?} does not contain {needle:?}",
        errs[0].1
    );
    assert!(
        errs[0].1.starts_with(&format!("{PATH}:{line}: ")),
        "{}",
        errs[0].1
    );
}

fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(c) => c,
        Err(p) => panic!("unexpected problems:\n{p}"),
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// SPEC.md's example with the three edits it needs to be valid: a real base64 secret, only one
/// zone source, and the `controller` key that `update` names.
const SPEC_EXAMPLE: &str = r#"[server]
listen = ["127.0.0.1:5353", "[::1]:5353"]  # UDP and TCP: queries, SOA, AXFR/IXFR, NOTIFY, UPDATE
state-dir = "state"                         # signed zones, journals, key state; survives restarts
control = "state/control.sock"              # control socket for the commands above
metrics = "127.0.0.1:9153"                  # optional: Prometheus text format on /metrics

[tsig.xfr]                                  # TSIG keys, named; hmac-sha256 at least
algorithm = "hmac-sha256"
secret = "c2lnbmV0LXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmch"

[tsig.controller]
algorithm = "hmac-sha512"
secret = "Y29udHJvbGxlci1zZWNyZXQtb2YtZW5vdWdoLWxlbmd0aA=="

[keystore.files]                            # soft keys, PKCS#8 files, mode 0600
backend = "files"
directory = "keys"

[keystore.hsm]                              # any PKCS#11 module; SoftHSM2 in tests
backend = "pkcs11"
module = "/usr/lib/softhsm/libsofthsm2.so"
token-label = "signet"
pin = "file:/etc/signet/hsm.pin"            # or "env:SIGNET_PIN"

[policy.default]                            # names and defaults follow BIND's dnssec-policy "default"
keys = [{ role = "csk", algorithm = "ecdsap256sha256", lifetime = "unlimited", keystore = "files" }]
dnskey-ttl = "1h"
max-zone-ttl = "1d"
publish-safety = "1h"
retire-safety = "1h"
purge-keys = "90d"
signatures-validity = "14d"
signatures-validity-dnskey = "14d"
signatures-refresh = "5d"
signatures-jitter = "12h"
zone-propagation-delay = "5m"
parent-ds-ttl = "1d"
parent-propagation-delay = "1h"
nsec3 = { iterations = 0, salt-length = 0, opt-out = false }   # omit for NSEC
cds-digest-types = ["sha256"]
publish-cdnskey = true
serial = "increment"                        # increment | unixtime | dateserial | keep
manual-mode = false

[[zone]]
name = "example.com"
policy = "default"
file = "conf/example.com.zone"              # EITHER a local unsigned zone file (watched for changes) ...
transfer-tsig = "xfr"                       # TSIG for SOA/IXFR/AXFR to upstream and for its NOTIFY
allow-notify = ["192.0.2.1"]                # besides the primaries
notify = ["192.0.2.10:53"]                  # secondaries to NOTIFY after each new signed serial
allow-transfer = ["192.0.2.10", "key:xfr"]  # who may AXFR/IXFR the signed zone (default: nobody)
parental-agents = ["192.0.2.53:53"]         # servers to ask for the parent's DS (checkds)
on-upstream-expire = "keep-serving"         # keep-serving (default) | withdraw
update = { keys = ["controller"], types = ["DNSKEY", "CDS", "CDNSKEY", "CSYNC"] }  # RFC 2136 at the apex

[[zone]]
name = "example.net."
primaries = ["192.0.2.1:53", "2001:db8::1"]
transfer-tsig = "xfr"
"#;

#[test]
fn spec_example_parses() {
    let c = ok(SPEC_EXAMPLE);
    assert_eq!(c.path, Path::new(PATH));
    assert_eq!(
        c.server.listen,
        vec![addr("127.0.0.1:5353"), addr("[::1]:5353")]
    );
    assert_eq!(c.server.state_dir, Path::new("state"));
    assert_eq!(c.server.control, Path::new("state/control.sock"));
    assert_eq!(c.server.metrics, Some(addr("127.0.0.1:9153")));

    let xfr = c.tsig_key("XFR").unwrap();
    assert_eq!(xfr.name, "xfr.");
    assert_eq!(xfr.algorithm, TsigAlgorithm::HmacSha256);
    assert_eq!(xfr.secret, b"signet-test-secret-32-bytes-long!".to_vec());
    assert_eq!(c.tsig["controller."].algorithm, TsigAlgorithm::HmacSha512);
    assert!(
        !format!("{xfr:?}").contains("signet-test"),
        "Debug leaks the secret"
    );

    assert_eq!(
        c.keystores["files"].backend,
        KeystoreBackend::Files {
            directory: "keys".into()
        }
    );
    assert_eq!(
        c.keystores["hsm"].backend,
        KeystoreBackend::Pkcs11 {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "signet".into(),
            pin: PinSource::File("/etc/signet/hsm.pin".into()),
        }
    );

    let p = &c.policies["default"];
    let builtin = Policy::default();
    assert_eq!(p.line, Some(25));
    assert_eq!(
        Policy {
            line: None,
            nsec3: None,
            ..p.clone()
        },
        builtin,
        "SPEC's [policy.default] spells out the built-in defaults"
    );
    assert_eq!(p.nsec3, Some(Nsec3Policy::default()));

    assert_eq!(c.zones.len(), 2);
    let z = c.zone("Example.COM").unwrap();
    assert_eq!(z.name, "example.com.");
    assert_eq!(z.line, 45);
    assert_eq!(z.source, ZoneSource::File("conf/example.com.zone".into()));
    assert_eq!(z.transfer_tsig.as_deref(), Some("xfr."));
    assert_eq!(
        z.allow_notify,
        vec![AclEntry::Addr("192.0.2.1".parse().unwrap(), 32)]
    );
    assert_eq!(z.notify, vec![addr("192.0.2.10:53")]);
    assert_eq!(
        z.allow_transfer,
        vec![
            AclEntry::Addr("192.0.2.10".parse().unwrap(), 32),
            AclEntry::Key("xfr.".into())
        ]
    );
    assert_eq!(z.parental_agents, vec![addr("192.0.2.53:53")]);
    assert_eq!(z.on_upstream_expire, OnUpstreamExpire::KeepServing);
    assert_eq!(
        z.update,
        Some(UpdatePolicy {
            keys: vec!["controller.".into()],
            types: vec![48, 59, 60, 62],
            peers: vec![],
        })
    );
    assert_eq!(c.policy_for(z).name, "default");

    let net = c.zone("example.net").unwrap();
    assert_eq!(
        net.source,
        ZoneSource::Primaries(vec![addr("192.0.2.1:53"), addr("[2001:db8::1]:53")])
    );
    assert_eq!(net.allow_transfer, vec![], "default: nobody");
    assert!(net.update.is_none());

    // transfer-tsig on a file zone is only a warning.
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].line, Some(49));
    assert!(c.warnings[0]
        .to_string()
        .contains("warning: zone example.com: `transfer-tsig`"));
}

#[test]
fn spec_example_verbatim_reports_every_problem() {
    // The literal SPEC text: "base64..." is no secret, the zone has both sources, and
    // `controller` is not defined. All three in one run, in line order.
    let verbatim = SPEC_EXAMPLE
        .replace("c2lnbmV0LXRlc3Qtc2VjcmV0LTMyLWJ5dGVzLWxvbmch", "base64...")
        .replace(
            "[tsig.controller]\nalgorithm = \"hmac-sha512\"\nsecret = \"Y29udHJvbGxlci1zZWNyZXQtb2YtZW5vdWdoLWxlbmd0aA==\"\n",
            "",
        )
        .replace(
            "file = \"conf/example.com.zone\"",
            "file = \"conf/example.com.zone\"\nprimaries = [\"192.0.2.1:53\"]",
        );
    let errs = errors(&verbatim);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert_eq!(errs[0].0, Some(9));
    assert!(
        errs[0].1.contains("secret is not valid base64"),
        "{}",
        errs[0].1
    );
    assert!(
        errs[1]
            .1
            .contains("zone example.com: has both `file` and `primaries`"),
        "{}",
        errs[1].1
    );
    assert!(
        errs[2].1.contains("\"controller\" is not defined"),
        "{}",
        errs[2].1
    );
    // A key whose definition is broken is not also reported as undefined where it is used.
    assert!(!errs.iter().any(|e| e.1.contains("\"xfr\" is not defined")));
}

#[test]
fn empty_config_has_defaults() {
    let c = ok("");
    assert_eq!(c.server, Server::default());
    assert_eq!(c.server.listen, vec![addr(DEFAULT_LISTEN)]);
    assert_eq!(c.server.control, Path::new("state/control.sock"));
    assert_eq!(c.policies.len(), 2, "default and insecure");
    assert_eq!(c.policies["default"], Policy::default());
    assert_eq!(c.policies["insecure"], Policy::insecure());
    assert_eq!(
        c.keystores["files"].backend,
        KeystoreBackend::Files {
            directory: "state/keys".into()
        }
    );
    assert!(c.zones.is_empty());
    assert!(c.warnings.is_empty());
}

#[test]
fn builtin_policy_is_binds_default() {
    let p = Policy::default();
    assert_eq!(p.keys.len(), 1);
    assert_eq!(p.keys[0].role, KeyRole::Csk);
    assert_eq!(p.keys[0].algorithm, 13);
    assert_eq!(p.keys[0].lifetime, Lifetime::Unlimited);
    assert_eq!(p.keys[0].keystore, "files");
    assert_eq!(p.dnskey_ttl, 3600);
    assert_eq!(p.max_zone_ttl, 86400);
    assert_eq!(p.purge_keys, 90 * 86400);
    assert_eq!(p.signatures_validity, 14 * 86400);
    assert_eq!(p.signatures_refresh, 5 * 86400);
    assert_eq!(p.signatures_jitter, 12 * 3600);
    assert_eq!(p.zone_propagation_delay, 300);
    assert_eq!(p.nsec3, None);
    assert_eq!(p.cds_digest_types, vec![2]);
    assert!(p.publish_cdnskey);
    assert_eq!(p.serial, SerialPolicy::Increment);
    assert!(!p.manual_mode);
}

#[test]
fn control_follows_state_dir() {
    let c = ok("[server]\nstate-dir = \"/var/lib/signet\"\nlisten = [\"0.0.0.0\"]\n");
    assert_eq!(c.server.control, Path::new("/var/lib/signet/control.sock"));
    assert_eq!(c.server.listen, vec![addr("0.0.0.0:53")]);
    assert_eq!(
        c.keystores["files"].backend,
        KeystoreBackend::Files {
            directory: "/var/lib/signet/keys".into()
        }
    );
}

#[test]
fn unknown_keys_have_their_line() {
    one_error(
        "[server]\nlisten = [\"127.0.0.1:53\"]\nstate_dir = \"x\"\n",
        3,
        "unknown key `state_dir` in [server]; did you mean `state-dir`?",
    );
    one_error(
        "[servers]\nlisten = []\n",
        1,
        "unknown section [servers]; did you mean `server`?",
    );
    one_error("\n\nfoo = 1\n", 3, "unknown key `foo` at the top level");
    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = 13, lifetme = \"1y\" }]\n",
        2,
        "unknown key `lifetme`",
    );
    one_error(
        "[[zone]]\nname = \"a\"\nfile = \"a.zone\"\nallow-xfr = []\n",
        4,
        "unknown key `allow-xfr` in [[zone]]",
    );
    one_error(
        "[keystore.k]\nbackend = \"files\"\nmodule = \"x.so\"\n",
        3,
        "unknown key `module` in [keystore.k] (backend \"files\")",
    );
}

#[test]
fn syntax_errors_have_their_line() {
    let errs = errors("[server]\nlisten = [\"127.0.0.1:53\"\n\n[policy.p]\n");
    assert!(!errs.is_empty());
    assert!(errs[0].1.contains("TOML syntax error"), "{errs:?}");
    let errs = errors("[server]\nstate-dir = \"a\"\nstate-dir = \"b\"\n");
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, Some(3));
    assert!(errs[0].1.contains("duplicate key"), "{errs:?}");
    one_error("a = \"x\n", 1, "TOML syntax error");
}

#[test]
fn type_errors_have_their_line() {
    one_error(
        "[server]\n\nlisten = 5353\n",
        3,
        "`listen` must be a list of strings, not an integer",
    );
    one_error(
        "[policy.p]\npublish-cdnskey = \"yes\"\n",
        2,
        "must be true or false",
    );
    one_error("server = 1\n", 1, "[server] must be a table");
    one_error("[zone]\nname = \"a\"\n", 1, "[[zone]]");
}

#[test]
fn several_errors_in_one_run() {
    let text = r#"[server]
listen = ["not an address"]
bogus = 1

[tsig.k]
algorithm = "hmac-md5"
secret = "c2hvcnQ="

[policy.p]
signatures-refresh = "20d"
nsec3 = { iterations = 500 }
keys = [{ role = "csk", algorithm = "ed448" }]

[[zone]]
name = "example.com"
policy = "nope"

[[zone]]
name = "a..b"
file = "x"
"#;
    let errs = errors(text);
    let lines: Vec<usize> = errs.iter().filter_map(|e| e.0).collect();
    assert_eq!(
        lines,
        vec![2, 3, 6, 7, 10, 10, 11, 12, 14, 16, 19],
        "{errs:#?}"
    );
    let all = errs
        .iter()
        .map(|e| e.1.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for needle in [
        "test.toml:2: `listen`: \"not an address\" is not an IP address",
        "test.toml:3: unknown key `bogus`",
        "test.toml:6: [tsig.k]: hmac-md5 is refused",
        "test.toml:7: [tsig.k]: the secret is 5 octets; at least 16",
        "test.toml:10: [policy.p]: `signatures-refresh` (2w6d) must be shorter than `signatures-validity` (2w)",
        "test.toml:11: [policy.p]: nsec3 iterations 500 is not allowed",
        "test.toml:12: [policy.p]: ed448 (16) is not supported",
        "test.toml:14: zone example.com: needs a source",
        "test.toml:16: zone example.com: policy \"nope\" is not defined",
        "test.toml:19: zone name: \"a..b\" has an empty label",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
}

#[test]
fn tsig_rules() {
    one_error(
        "[tsig.k]\nalgorithm = \"hmac-sha1\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n",
        2,
        "hmac-sha1 is refused",
    );
    one_error(
        "[tsig.k]\nalgorithm = \"hmac-sha256\"\n",
        1,
        "missing `secret`",
    );
    one_error("[tsig.k]\nsecret = \"!!!\"\n", 2, "not valid base64");
    // algorithm defaults to hmac-sha256; 16 octets is enough; trailing dot accepted.
    let c = ok("[tsig.\"Key.Example\"]\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n[tsig.b]\nalgorithm = \"HMAC-SHA384.\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n");
    assert_eq!(c.tsig["key.example."].algorithm, TsigAlgorithm::HmacSha256);
    assert_eq!(c.tsig["key.example."].secret.len(), 16);
    assert_eq!(c.tsig["b."].algorithm, TsigAlgorithm::HmacSha384);
    one_error(
        "[tsig.k]\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n[tsig.K]\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n",
        3,
        "already defined at line 1",
    );
}

#[test]
fn keystore_rules() {
    one_error("[keystore.k]\ndirectory = \"d\"\n", 1, "missing `backend`");
    one_error(
        "[keystore.k]\nbackend = \"vault\"\n",
        2,
        "unknown backend \"vault\"",
    );
    let errs = errors("[keystore.k]\nbackend = \"pkcs11\"\nmodule = \"m.so\"\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs.iter().all(|e| e.0 == Some(1)));
    let c = ok("[keystore.h]\nbackend = \"pkcs11\"\nmodule = \"m.so\"\ntoken-label = \"t\"\npin = \"env:PIN\"\n\n[keystore.l]\nbackend = \"pkcs11\"\nmodule = \"m.so\"\ntoken-label = \"t\"\npin = \"1234\"\n");
    assert!(matches!(
        &c.keystores["h"].backend,
        KeystoreBackend::Pkcs11 { pin: PinSource::Env(v), .. } if v == "PIN"
    ));
    assert_eq!(c.keystores["h"].line, Some(1));
    assert_eq!(c.warnings.len(), 1);
    assert_eq!(c.warnings[0].line, Some(11));
    assert!(
        !format!("{:?}", c.keystores["l"]).contains("1234"),
        "Debug leaks the PIN"
    );
}

#[test]
fn key_specs() {
    let c = ok(r#"[keystore.hsm]
backend = "files"
directory = "/k"

[policy.split]
keys = [
  { role = "ksk", algorithm = "ED25519", lifetime = "unlimited", keystore = "hsm" },
  { role = "zsk", algorithm = 15, lifetime = "P90D" },
]
"#);
    let p = &c.policies["split"];
    assert_eq!(
        p.keys,
        vec![
            KeySpec {
                role: KeyRole::Ksk,
                algorithm: 15,
                lifetime: Lifetime::Unlimited,
                keystore: "hsm".into()
            },
            KeySpec {
                role: KeyRole::Zsk,
                algorithm: 15,
                lifetime: Lifetime::Secs(90 * 86400),
                keystore: "files".into()
            },
        ]
    );
    assert_eq!(c.policies.len(), 3, "split + built-in default and insecure");

    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = \"ecdsap256sha256\", keystore = \"hsm\" }]\n",
        2,
        "keystore \"hsm\" is not defined",
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = 16 }]\n",
        2,
        "not supported",
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = \"rsasha1\" }]\n",
        2,
        "RFC 8624",
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = \"foo\" }]\n",
        2,
        "unknown algorithm",
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"kzk\", algorithm = 13 }]\n",
        2,
        "unknown key role",
    );
    one_error(
        "[policy.p]\nkeys = [{ algorithm = 13 }]\n",
        2,
        "needs `role`",
    );
    one_error("[policy.p]\nkeys = []\n", 2, "`keys` is empty");
    one_error(
        "[policy.p]\nkeys = [{ role = \"zsk\", algorithm = 13 }]\n",
        2,
        "has no ksk or csk",
    );
    let errs = errors(
        "[policy.p]\nkeys = [{ role = \"ksk\", algorithm = 13 }, { role = \"zsk\", algorithm = 14 }]\n",
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs[0].1.contains("ecdsap256sha256 (13) has no zsk or csk"),
        "{errs:?}"
    );
    assert!(
        errs[1].1.contains("ecdsap384sha384 (14) has no ksk or csk"),
        "{errs:?}"
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = 13, lifetime = \"0\" }]\n",
        2,
        "lifetime of 0",
    );
    // A 1-day ZSK cannot roll: the retire interval alone is 9 days + 1 day of TTL.
    one_error(
        "[policy.p]\nkeys = [\n{ role = \"ksk\", algorithm = 13 },\n{ role = \"zsk\", algorithm = 13, lifetime = \"1d\" },\n]\n",
        4,
        "zsk lifetime 1d is shorter than a rollover takes",
    );
}

#[test]
fn signature_timing_rules() {
    one_error(
        "[policy.p]\nsignatures-validity = \"7d\"\nsignatures-refresh = \"7d\"\nsignatures-validity-dnskey = \"14d\"\n",
        3,
        "`signatures-refresh` (1w) must be shorter than `signatures-validity` (1w)",
    );
    one_error(
        "[policy.p]\nsignatures-validity = \"7d\"\nsignatures-validity-dnskey = \"7d\"\nsignatures-refresh = \"5d\"\nsignatures-jitter = \"2d\"\n",
        5,
        "`signatures-jitter` (2d) must be shorter than",
    );
    one_error("[policy.p]\nsignatures-refresh = 0\n", 2, "must not be 0");
    one_error("[policy.p]\ndnskey-ttl = \"100y\"\n", 2, "a TTL is at most");
    one_error(
        "[policy.p]\nmax-zone-ttl = \"1 day\"\n",
        2,
        "invalid duration \"1 day\"",
    );
    one_error("[policy.p]\nmax-zone-ttl = -5\n", 2, "must not be negative");
    // Integers are seconds; ISO and unit forms mix freely.
    let c = ok(
        "[policy.p]\ndnskey-ttl = 300\nmax-zone-ttl = \"PT2H\"\nsignatures-jitter = \"1h30m\"\n",
    );
    let p = &c.policies["p"];
    assert_eq!(
        (p.dnskey_ttl, p.max_zone_ttl, p.signatures_jitter),
        (300, 7200, 5400)
    );
}

#[test]
fn nsec3_rules() {
    let c = ok("[policy.p]\nnsec3 = { iterations = 0, salt-length = 8, opt-out = true }\n");
    assert_eq!(
        c.policies["p"].nsec3,
        Some(Nsec3Policy {
            iterations: 0,
            salt_length: 8,
            opt_out: true
        })
    );
    // the salt is accepted with a warning (RFC 9276 §3.1 SHOULD NOT)
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings.iter().all(|w| w.line == Some(2)));
    assert!(c.warnings[0].to_string().contains("salt-length 8"));
    let c = ok("[policy.p]\nnsec3 = true\n[policy.q]\nnsec3 = false\n");
    assert_eq!(c.policies["p"].nsec3, Some(Nsec3Policy::default()));
    assert_eq!(c.policies["q"].nsec3, None);
    assert!(c.warnings.is_empty());
    // BIND 9.20: "nsec3 iterations value N not allowed, must be zero"
    for n in [1, 5, 101] {
        one_error(
            &format!("[policy.p]\nnsec3 = {{ iterations = {n} }}\n"),
            2,
            &format!("nsec3 iterations {n} is not allowed: must be 0 (RFC 9276"),
        );
    }
    one_error("[policy.p]\nnsec3 = { salt-length = 256 }\n", 2, "0 to 255");
    one_error(
        "[policy.p]\nnsec3 = { salt = \"ab\" }\n",
        2,
        "unknown key `salt`",
    );
}

/// Refresh against the caches: a replaced signature must outlive its cached copies.
#[test]
fn refresh_must_cover_cached_signatures() {
    // 1d max-zone-ttl + 5m propagation > 12h refresh
    one_error(
        "[policy.p]\nsignatures-refresh = \"12h\"\nsignatures-jitter = \"1h\"\n",
        2,
        "`signatures-refresh` (12h) must be at least `max-zone-ttl` + `zone-propagation-delay` (1d + 5m = 1d5m)",
    );
    // the message blames the TTL's line when refresh is the default
    one_error(
        "[policy.p]\nmax-zone-ttl = \"6d\"\n",
        2,
        "must be at least `max-zone-ttl` + `zone-propagation-delay` (6d + 5m",
    );
    // a DNSKEY TTL above max-zone-ttl counts too
    one_error(
        "[policy.p]\nmax-zone-ttl = \"1h\"\ndnskey-ttl = \"5d\"\n",
        3,
        "`dnskey-ttl` + `zone-propagation-delay` (5d + 5m",
    );
    // exactly enough is fine
    let c = ok("[policy.p]\nmax-zone-ttl = \"1h\"\nzone-propagation-delay = \"1h\"\nsignatures-refresh = \"2h\"\nsignatures-jitter = \"1h\"\n");
    assert_eq!(c.policies["p"].signatures_refresh, 7200);
    // a broken TTL is reported once, not also as a refresh problem
    let errs = errors("[policy.p]\nmax-zone-ttl = \"soon\"\n");
    assert_eq!(errs.len(), 1, "{errs:#?}");
}

#[test]
fn lifetime_and_role_warnings() {
    // 20 days is long enough to roll under these timings, but short: a warning on its line
    let c = ok("[policy.p]\nkeys = [\n{ role = \"ksk\", algorithm = 13 },\n{ role = \"zsk\", algorithm = 13, lifetime = \"20d\" },\n]\n");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].line, Some(4));
    assert!(c.warnings[0].to_string().contains("shorter than 30 days"));
    // two ZSKs of one algorithm: a warning (BIND: "multiple keys with ZSK role")
    let c = ok("[policy.p]\nkeys = [{ role = \"ksk\", algorithm = 13 }, { role = \"zsk\", algorithm = 13 }, { role = \"zsk\", algorithm = 13 }]\n");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(c.warnings[0]
        .to_string()
        .contains("has 2 keys signing the zone"));
    // a CSK and a ZSK both sign the zone
    let c = ok("[policy.p]\nkeys = [{ role = \"csk\", algorithm = 15 }, { role = \"zsk\", algorithm = 15 }]\n");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    // a KSK without a ZSK, and an algorithm mismatch (KSK 13, ZSK 15): each algorithm lacks a role
    let errs = errors("[policy.p]\nkeys = [{ role = \"ksk\", algorithm = 13 }, { role = \"zsk\", algorithm = 15 }]\n");
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs[0].1.contains("ecdsap256sha256 (13) has no zsk or csk"),
        "{errs:#?}"
    );
    assert!(
        errs[1].1.contains("ed25519 (15) has no ksk or csk"),
        "{errs:#?}"
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"zsk\", algorithm = \"ed25519\" }]\n",
        2,
        "has no ksk or csk",
    );
    one_error(
        "[policy.p]\nkeys = [{ role = \"csk\", algorithm = \"gost\" }]\n",
        2,
        "unknown algorithm \"gost\"",
    );
}

#[test]
fn insecure_policy() {
    // built in, without keys, beside default
    let c = ok("[[zone]]\nname = \"example.com\"\nfile = \"x\"\npolicy = \"insecure\"\n");
    let p = c.policy_for(&c.zones[0]);
    assert_eq!(p.name, INSECURE_POLICY);
    assert!(p.keys.is_empty() && p.is_insecure());
    assert!(!c.policies[DEFAULT_POLICY].is_insecure());
    // the file may tune its timings, not give it keys
    let c = ok("[policy.insecure]\nparent-ds-ttl = \"2h\"\n");
    assert!(c.policies[INSECURE_POLICY].keys.is_empty());
    assert_eq!(c.policies[INSECURE_POLICY].parent_ds_ttl, 7200);
    ok("[policy.insecure]\nkeys = []\n");
    one_error(
        "[policy.insecure]\nkeys = [{ role = \"csk\", algorithm = 13 }]\n",
        2,
        "the `insecure` policy takes zones insecure and has no keys",
    );
    // any other policy needs keys, and the message says how to go insecure
    one_error(
        "[policy.p]\nkeys = []\n",
        2,
        "to take a zone insecure, give it policy = \"insecure\"",
    );
}

#[test]
fn policy_scalars() {
    let c = ok("[policy.p]\nserial = \"unixtime\"\nmanual-mode = true\ncds-digest-types = [\"SHA-384\", 2]\npublish-cdnskey = false\npurge-keys = 0\n");
    let p = &c.policies["p"];
    assert_eq!(p.serial, SerialPolicy::UnixTime);
    assert!(p.manual_mode);
    assert_eq!(p.cds_digest_types, vec![4, 2]);
    assert!(!p.publish_cdnskey);
    assert_eq!(p.purge_keys, 0);
    one_error(
        "[policy.p]\nserial = \"date\"\n",
        2,
        "unknown serial policy",
    );
    one_error("[policy.p]\ncds-digest-types = [\"sha1\"]\n", 2, "RFC 8624");
    // A file's own "default" replaces the built-in one.
    let c = ok("[policy.default]\nmanual-mode = true\n");
    assert!(c.policies["default"].manual_mode);
    assert_eq!(c.policies["default"].line, Some(1));
}

#[test]
fn zone_rules() {
    let base = "[tsig.xfr]\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n";
    // Neither source: reported at the [[zone]] header, with the zone's name.
    one_error(
        &format!("{base}[[zone]]\nname = \"Example.com.\"\n"),
        3,
        "zone example.com: needs a source",
    );
    one_error(
        &format!("{base}[[zone]]\nfile = \"f\"\n"),
        3,
        "[[zone]] needs `name`",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nfile = \"f\"\nprimaries = [\"192.0.2.1\"]\n"),
        6,
        "zone a: has both `file` and `primaries`",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nprimaries = []\n"),
        5,
        "`primaries` is empty",
    );
    one_error(
        &format!(
            "{base}[[zone]]\nname = \"a\"\nfile = \"f\"\n\n[[zone]]\nname = \"A.\"\nfile = \"g\"\n"
        ),
        8,
        "zone a: defined twice (first at line 3)",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nprimaries = [\"192.0.2.1\"]\ntransfer-tsig = \"other\"\n"),
        6,
        "TSIG key \"other\" is not defined",
    );
    one_error(
        &format!(
            "{base}[[zone]]\nname = \"a\"\nfile = \"f\"\nallow-transfer = [\"127.0.0.1/8\"]\n"
        ),
        6,
        "host bits",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nfile = \"f\"\nallow-transfer = [\"key:nokey\"]\n"),
        6,
        "\"nokey\" is not defined",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nfile = \"f\"\non-upstream-expire = \"die\"\n"),
        6,
        "keep-serving or withdraw",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nfile = \"f\"\nupdate = {{ keys = [\"xfr\"], types = [\"A\"] }}\n"),
        6,
        "\"A\" cannot be updated",
    );
    one_error(
        &format!("{base}[[zone]]\nname = \"a\"\nfile = \"f\"\nupdate = {{ types = [\"CDS\"] }}\n"),
        6,
        "`update` needs `keys`",
    );
    one_error(
        &format!(
            "{base}[[zone]]\nname = \"{}.com\"\nfile = \"f\"\n",
            "x".repeat(64)
        ),
        4,
        "at most 63",
    );

    let c = ok(&format!(
        "{base}[[zone]]\nname = \"a\"\nprimaries = \"192.0.2.1\"\nnotify = [\"192.0.2.2\", \"[2001:db8::2]:5300\"]\n\
         allow-notify = [\"192.0.2.0/24\", \"key:XFR.\"]\nallow-transfer = [\"::1\", \"10.0.0.0/8\"]\n\
         on-upstream-expire = \"withdraw\"\nupdate = {{ keys = [\"xfr\"], types = [\"cds\", \"CDNSKEY\"] }}\n\
         \n[[zone]]\nname = \".\"\nfile = \"root.zone\"\n"
    ));
    let a = c.zone("a.").unwrap();
    assert_eq!(a.line, 3);
    assert_eq!(a.source, ZoneSource::Primaries(vec![addr("192.0.2.1:53")]));
    assert_eq!(
        a.notify,
        vec![addr("192.0.2.2:53"), addr("[2001:db8::2]:5300")]
    );
    assert_eq!(
        a.allow_notify,
        vec![
            AclEntry::Addr("192.0.2.0".parse().unwrap(), 24),
            AclEntry::Key("xfr.".into())
        ]
    );
    assert_eq!(
        a.allow_transfer,
        vec![
            AclEntry::Addr("::1".parse().unwrap(), 128),
            AclEntry::Addr("10.0.0.0".parse().unwrap(), 8)
        ]
    );
    assert_eq!(a.on_upstream_expire, OnUpstreamExpire::Withdraw);
    assert_eq!(a.update.as_ref().unwrap().types, vec![59, 60]);
    assert_eq!(a.policy, "default");
    assert!(c.zone(".").is_some());
    assert!(c.zone("b").is_none());
}

#[test]
fn zone_using_a_policy_with_errors_is_not_also_undefined() {
    let errs = errors(
        "[policy.p]\nserial = \"nope\"\n[[zone]]\nname = \"a\"\nfile = \"f\"\npolicy = \"p\"\n",
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, Some(2));
}

#[test]
fn policy_for_falls_back() {
    let mut c = ok(
        "[policy.p]\nmanual-mode = true\n[[zone]]\nname = \"a\"\nfile = \"f\"\npolicy = \"p\"\n",
    );
    let z = c.zones[0].clone();
    assert!(c.policy_for(&z).manual_mode);
    c.policies.clear();
    assert_eq!(c.policy_for(&z), &Policy::default());
}

#[test]
fn metrics_rules() {
    one_error("[server]\nmetrics = \"127.0.0.1\"\n", 2, "needs a port");
    one_error(
        "[server]\nlisten = [\"127.0.0.1:9153\"]\nmetrics = \"127.0.0.1:9153\"\n",
        3,
        "also a `listen` address",
    );
    one_error(
        "[server]\nlisten = [\"127.0.0.1\", \"127.0.0.1:53\"]\n",
        2,
        "listed twice",
    );
    one_error("[server]\nlisten = []\n", 2, "`listen` is empty");
}

#[test]
fn crlf_lines() {
    one_error("[server]\r\n\r\nbogus = 1\r\n", 3, "unknown key `bogus`");
}

#[test]
fn broken_definitions_are_not_also_undefined() {
    let errs = errors(
        "[keystore.hsm]\nbackend = \"pkcs11\"\n\n[policy.p]\nkeys = [{ role = \"csk\", algorithm = 13, keystore = \"hsm\" }]\n",
    );
    assert_eq!(errs.len(), 3, "{errs:?}"); // module, token-label, pin missing at line 1
    assert!(errs.iter().all(|e| e.0 == Some(1)), "{errs:?}");
}
