//! The TOML configuration of SPEC.md: schema, defaults, validation, and errors that point at
//! `FILE:LINE`.
//!
//! # Entry points
//!
//! * [`load`] reads and validates a file; [`parse_str`] does the same for text in memory.
//!   Neither touches the file system beyond reading the configuration itself.
//! * [`check`] is what `signet check -c FILE` runs: [`load`], then checks that every
//!   file-sourced zone's file exists and that every directory signet will write to (state
//!   directory, files-keystore directories) exists or can be created, and that PKCS#11 modules
//!   and PIN files exist. It does not parse zone files; the caller does that with the zonefile
//!   module.
//! * Both return [`Problems`] on failure: **every** problem found, not just the first, sorted by
//!   line, printed one per line as `FILE:LINE: message`, or `zone NAME: message` for problems
//!   that belong to a zone rather than a line. Warnings (accepted, but worth a look) are in
//!   [`Config::warnings`] and print as `FILE:LINE: warning: message`.
//!
//! The file is parsed with `toml`'s span-preserving [`toml::de::DeTable`] and walked by hand
//! (rather than with `serde` + `deny_unknown_fields`) so that one run reports unknown keys,
//! wrong types and semantic errors together, each with the line of the offending key. A TOML
//! syntax error stops the walk (the tree is unreliable after it) and is reported with its line.
//! Unknown keys are errors, with a "did you mean" hint for near misses (`state_dir`).
//!
//! # Sections
//!
//! ## `[server]`
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `listen` | UDP+TCP addresses for queries, transfers, NOTIFY, UPDATE | `["127.0.0.1:5353"]` |
//! | `state-dir` | signed zones, journals, key state | `"state"` |
//! | `control` | control socket path | `"<state-dir>/control.sock"` |
//! | `metrics` | Prometheus `/metrics` address | none (off) |
//!
//! ## `[tsig.NAME]`
//!
//! `algorithm` is `hmac-sha256`, `hmac-sha384` or `hmac-sha512` (the trailing dot of the wire
//! name is optional). `hmac-md5` and `hmac-sha1` are refused: RFC 8945 §6 deprecates MD5 and
//! SHA-1 is no longer a sensible choice for new keys. `secret` is base64 and must decode to at
//! least [`MIN_TSIG_SECRET_LEN`] octets. The key's name is the table name as a domain name,
//! lowercase and absolute: `[tsig.xfr]` is the key `xfr.`, and the [`Config::tsig`] map, zone
//! references (`transfer-tsig`, `key:NAME` ACL entries, `update.keys`) all use that form, which
//! is also what appears in a TSIG record on the wire. A reference may be written `xfr`, `xfr.`
//! or `XFR`.
//!
//! ## `[keystore.NAME]`
//!
//! `backend = "files"` with `directory` (default `<state-dir>/keys`): soft keys in PKCS#8 files.
//! `backend = "pkcs11"` with `module` (path to the PKCS#11 library), `token-label` and `pin`
//! (`"file:PATH"`, `"env:VARIABLE"`, or a literal PIN, which is accepted with a warning). If the
//! file defines no keystore named `files`, a built-in one exists: `files` backend in
//! `<state-dir>/keys`, so that the built-in policy works out of the box.
//!
//! ## `[policy.NAME]`
//!
//! Key and signing policy, named and with defaults as in BIND 9's `dnssec-policy "default"`
//! (one CSK, ECDSA P-256, unlimited lifetime); every key may be omitted:
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `keys` | `[{ role = "csk", algorithm = "ecdsap256sha256", lifetime = "unlimited", keystore = "files" }]` | the keys; `role` ksk/zsk/csk and `algorithm` (name or number) required, `lifetime` default unlimited, `keystore` default `files` |
//! | `dnskey-ttl` | 1h | TTL of DNSKEY, CDS, CDNSKEY |
//! | `max-zone-ttl` | 1d | largest TTL in the zone, for rollover timing |
//! | `publish-safety` / `retire-safety` | 1h / 1h | margins around key publication / retirement |
//! | `purge-keys` | 90d | delete removed keys after this; `0` never |
//! | `signatures-validity` / `-dnskey` | 14d / 14d | RRSIG validity period |
//! | `signatures-refresh` | 5d | re-sign when less than this validity remains |
//! | `signatures-jitter` | 12h | spread of expiration times |
//! | `zone-propagation-delay` | 5m | time for secondaries to pick up a new serial |
//! | `parent-ds-ttl` / `parent-propagation-delay` | 1d / 1h | parent side timing |
//! | `nsec3` | absent = NSEC | `{ iterations, salt-length, opt-out }`, all defaulting to 0/0/false; `nsec3 = true` means those defaults |
//! | `cds-digest-types` | `["sha256"]` | CDS digests: `sha256` (2), `sha384` (4); `sha1` is refused (RFC 8624) |
//! | `publish-cdnskey` | true | publish CDNSKEY next to CDS |
//! | `serial` | `increment` | `increment`, `unixtime`, `dateserial`, `keep` |
//! | `manual-mode` | false | key-state transitions wait for `signet step` |
//!
//! A policy named `default` always exists: the file's if it defines one, the built-in one
//! ([`Policy::default`]) otherwise. So does `insecure` ([`Policy::insecure`], BIND's
//! `dnssec-policy insecure`): no keys. A signed zone whose policy becomes `insecure` (on
//! `signet reload`) goes insecure without breaking validation: every key retires, CDS and
//! CDNSKEY DELETE (RFC 8078) are published, and once the parent's DS is gone (checkds or
//! `signet ds-gone`) and out of every cache, the zone is served unsigned; moving it back to a
//! policy with keys introduces new keys as for a new zone. A file may define
//! `[policy.insecure]` to change its timings, but its `keys` must be empty; any other policy
//! needs at least one key.
//!
//! Algorithms: `rsasha256` (8), `rsasha512` (10), `ecdsap256sha256` (13), `ecdsap384sha384`
//! (14), `ed25519` (15), by name or number. `ed448` (16) is refused as not supported (no
//! implementation in the crypto library); RSASHA1 and older are refused per RFC 8624.
//!
//! Checks (errors unless said otherwise; each names the offending line):
//! * every algorithm must have a key that signs the DNSKEY set (ksk or csk) and one that signs
//!   the zone (zsk or csk) — BIND's "algorithm N requires both KSK and ZSK roles"; two keys of
//!   the same role and algorithm get a warning (BIND's "multiple keys with ZSK role");
//! * a finite lifetime must be longer than a rollover takes: publication interval + retire
//!   interval of RFC 7583 ([`Policy::min_lifetime`]; BIND's "key lifetime is shorter than the
//!   time it takes to do a rollover", computed the same way but summed rather than maxed, so
//!   a little stricter); a lifetime under [`SHORT_LIFETIME_WARNING`] (30 days) is a warning;
//! * `signatures-refresh` must be shorter than each validity, and not 0;
//! * `signatures-refresh` must be at least `max(max-zone-ttl, dnskey-ttl) +
//!   zone-propagation-delay`: a signature is replaced when `signatures-refresh` of its validity
//!   remains, and the replaced signature may still reach resolvers until the new version is on
//!   every secondary and then sit in caches for its TTL — it must not expire there. (This is
//!   the safety form of "validity ≥ refresh + max TTL + propagation": the time between
//!   replacement and expiry is what must cover the caches.)
//! * `signatures-jitter` must be shorter than validity − refresh (otherwise a freshly made
//!   signature could already be due for refresh; BIND only refuses jitter > validity);
//! * TTLs must fit in 31 bits (RFC 2181 §8).
//!
//! NSEC3: RFC 9276 §3.1 says 0 iterations and no salt. Iterations above 0 are an error, as in
//! BIND 9.20 ("nsec3 iterations value N not allowed, must be zero"): they cost every validator
//! and this signer and protect nothing, and validators may treat such zones as insecure
//! (RFC 9276 §3.2). A non-zero salt gets a warning (RFC 9276 §3.1: SHOULD NOT; BIND accepts
//! it); `salt-length` is at most 255 (RFC 5155 §3.2).
//!
//! ## `[[zone]]`
//!
//! `name` (required; `example.com` and `example.com.` are the same), `policy` (default
//! `default`), and exactly one of `file` (a local unsigned zone file) or `primaries`
//! (upstream servers, tried in order). `transfer-tsig` names a `[tsig]` key; `allow-notify` and
//! `allow-transfer` are ACLs whose entries are IP addresses, CIDR prefixes (`127.0.0.0/8`,
//! `2001:db8::/32`; host bits must be zero) or `key:NAME`; `allow-transfer` defaults to nobody.
//! `notify` and `parental-agents` are socket addresses. Wherever a socket address is expected
//! (also `listen` and `primaries`), a bare IP means port 53. `on-upstream-expire` is
//! `keep-serving` (default) or `withdraw`. `update = { keys = [...], types = [...] }` allows
//! RFC 2136 UPDATE of the apex DNSKEY/CDS/CDNSKEY/CSYNC overlay by those TSIG keys (`types`
//! defaults to these four; NS may be added to the list; nothing else may be updated; `peers`
//! lists the other signers an own ZSK rollover waits for). Two zones with the same name are an
//! error.
//!
//! # Paths
//!
//! Relative paths (`state-dir`, `control`, keystore `directory`, `module`, PIN files, zone
//! `file`) are kept as written and therefore resolve against the **current directory of the
//! process**, like BIND's `directory` default, not against the configuration file's directory.
//! SPEC's embedded default is run from the repository root as
//! `cargo run --release -- serve -c conf/signet.toml` with `file = "conf/example.com.zone"` and
//! `directory = "keys"`, which only works that way.

mod duration;
mod name;
mod parse;
mod problem;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

pub use duration::{format_duration, parse_duration, parse_lifetime, Lifetime};
pub use name::{normalise_name, MAX_LABEL_LEN, MAX_NAME_LEN};
pub use problem::{Problem, Problems, Severity};

/// Default `listen` address: a high port on loopback, so a fresh checkout runs unprivileged.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:5353";
/// Default `state-dir`.
pub const DEFAULT_STATE_DIR: &str = "state";
/// Name of the built-in policy, and the default `policy` of a zone.
pub const DEFAULT_POLICY: &str = "default";
/// Name of the built-in policy without keys (BIND's `dnssec-policy insecure`): a signed zone
/// moved to it goes insecure safely (CDS/CDNSKEY DELETE, then unsigned once the parent's DS is
/// gone from every cache); a zone that starts under it is served unsigned.
pub const INSECURE_POLICY: &str = "insecure";
/// Name of the keystore the built-in policy's keys use, and the default `keystore` of a key.
pub const DEFAULT_KEYSTORE: &str = "files";
/// Port assumed when a socket address is written as a bare IP.
pub const DEFAULT_DNS_PORT: u16 = 53;
/// Shortest TSIG secret accepted, in octets. A short secret can be brute-forced offline from
/// one captured signed message.
pub const MIN_TSIG_SECRET_LEN: usize = 16;
/// Highest NSEC3 iteration count accepted: 0, as RFC 9276 §3.1 says and as BIND 9.20 enforces
/// for `dnssec-policy` ("nsec3 iterations value N not allowed, must be zero"). Each iteration is
/// a hash a validator (and an attacker asking for non-existent names) makes the signer compute
/// per lookup, protects nothing, and validators may treat zones with more as insecure or bogus
/// (RFC 9276 §3.2).
pub const MAX_NSEC3_ITERATIONS: u16 = 0;
/// A finite key lifetime shorter than this is accepted with a warning (BIND's "key lifetime is
/// shorter than 30 days"): keys rolled that often spend most of their life in rollovers, and
/// every rollover needs the parent or the caches to follow.
pub const SHORT_LIFETIME_WARNING: u64 = 30 * 86_400;
/// Longest NSEC3 salt, RFC 5155 §3.2 (one length octet).
pub const MAX_NSEC3_SALT_LEN: u16 = 255;
/// Largest TTL, RFC 2181 §8.
pub const MAX_TTL: u64 = 0x7fff_ffff;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// `[server]`.
    pub server: Server,
    /// `[tsig.NAME]`, keyed by the lowercase absolute key name (`xfr.`).
    pub tsig: BTreeMap<String, TsigKey>,
    /// `[keystore.NAME]`, keyed by NAME; always contains [`DEFAULT_KEYSTORE`].
    pub keystores: BTreeMap<String, Keystore>,
    /// `[policy.NAME]`, keyed by NAME; always contains [`DEFAULT_POLICY`].
    pub policies: BTreeMap<String, Policy>,
    /// `[[zone]]`, in file order.
    pub zones: Vec<ZoneConfig>,
    /// Things accepted but worth a look; `signet check` prints them.
    pub warnings: Vec<Problem>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// UDP and TCP listening addresses.
    pub listen: Vec<SocketAddr>,
    /// Where signed zones, journals and key state live.
    pub state_dir: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    /// Prometheus metrics listener, if any.
    pub metrics: Option<SocketAddr>,
}

impl Default for Server {
    fn default() -> Server {
        let state_dir = PathBuf::from(DEFAULT_STATE_DIR);
        Server {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            control: state_dir.join("control.sock"),
            state_dir,
            metrics: None,
        }
    }
}

/// TSIG algorithms signet accepts (RFC 8945 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TsigAlgorithm {
    /// `hmac-sha256.`
    HmacSha256,
    /// `hmac-sha384.`
    HmacSha384,
    /// `hmac-sha512.`
    HmacSha512,
}

impl TsigAlgorithm {
    /// The algorithm's name as it appears in a TSIG record (absolute, lowercase).
    pub fn wire_name(self) -> &'static str {
        match self {
            TsigAlgorithm::HmacSha256 => "hmac-sha256.",
            TsigAlgorithm::HmacSha384 => "hmac-sha384.",
            TsigAlgorithm::HmacSha512 => "hmac-sha512.",
        }
    }

    /// Parses a configuration or wire name (trailing dot optional, case-insensitive).
    pub fn from_name(s: &str) -> Result<TsigAlgorithm, String> {
        let lower = s.trim().to_ascii_lowercase();
        match lower.strip_suffix('.').unwrap_or(&lower) {
            "hmac-sha256" => Ok(TsigAlgorithm::HmacSha256),
            "hmac-sha384" => Ok(TsigAlgorithm::HmacSha384),
            "hmac-sha512" => Ok(TsigAlgorithm::HmacSha512),
            "hmac-md5" | "hmac-md5.sig-alg.reg.int" => Err(
                "hmac-md5 is refused: MD5 is broken and RFC 8945 §6 deprecates it; use hmac-sha256"
                    .into(),
            ),
            "hmac-sha1" => Err(
                "hmac-sha1 is refused: SHA-1 is no longer fit for new keys; use hmac-sha256".into(),
            ),
            "hmac-sha224" => Err("hmac-sha224 is not supported; use hmac-sha256".into()),
            other => Err(format!(
                "unknown TSIG algorithm {other:?}; use hmac-sha256, hmac-sha384 or hmac-sha512"
            )),
        }
    }

    /// Length of the HMAC output in octets.
    pub fn output_len(self) -> usize {
        match self {
            TsigAlgorithm::HmacSha256 => 32,
            TsigAlgorithm::HmacSha384 => 48,
            TsigAlgorithm::HmacSha512 => 64,
        }
    }
}

/// `[tsig.NAME]`.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    /// Lowercase absolute key name: `[tsig.xfr]` is `xfr.`.
    pub name: String,
    /// HMAC algorithm.
    pub algorithm: TsigAlgorithm,
    /// The decoded secret.
    pub secret: Vec<u8>,
    /// Line of the table header.
    pub line: usize,
}

/// Never print a secret, not even in debug logs.
impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &format_args!("<{} octets>", self.secret.len()))
            .field("line", &self.line)
            .finish()
    }
}

/// `[keystore.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keystore {
    /// The table name.
    pub name: String,
    /// Where keys live.
    pub backend: KeystoreBackend,
    /// Line of the table header; `None` for the built-in keystore.
    pub line: Option<usize>,
}

/// The keystore backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeystoreBackend {
    /// Soft keys, PKCS#8 files in a directory (mode 0600).
    Files {
        /// The key directory.
        directory: PathBuf,
    },
    /// A PKCS#11 token (parsed; the backend itself is not built yet).
    Pkcs11 {
        /// Path to the PKCS#11 module (shared library).
        module: PathBuf,
        /// The token's label.
        token_label: String,
        /// Where the user PIN comes from.
        pin: PinSource,
    },
}

/// Where a PKCS#11 PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// `file:PATH`: the first line of the file.
    File(PathBuf),
    /// `env:VARIABLE`: an environment variable.
    Env(String),
    /// The PIN itself, written in the configuration.
    Literal(String),
}

/// Never print a literal PIN.
impl std::fmt::Debug for PinSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinSource::File(p) => f.debug_tuple("File").field(p).finish(),
            PinSource::Env(v) => f.debug_tuple("Env").field(v).finish(),
            PinSource::Literal(_) => f.write_str("Literal(<hidden>)"),
        }
    }
}

/// The role of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyRole {
    /// Key-signing key: signs the DNSKEY set, referenced by the parent's DS.
    Ksk,
    /// Zone-signing key: signs everything else.
    Zsk,
    /// Combined signing key: both.
    Csk,
}

impl KeyRole {
    /// Lowercase name as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Ksk => "ksk",
            KeyRole::Zsk => "zsk",
            KeyRole::Csk => "csk",
        }
    }

    /// Whether this key signs the DNSKEY RRset (and has a DS at the parent).
    pub fn signs_keys(self) -> bool {
        matches!(self, KeyRole::Ksk | KeyRole::Csk)
    }

    /// Whether this key signs the zone's other RRsets.
    pub fn signs_zone(self) -> bool {
        matches!(self, KeyRole::Zsk | KeyRole::Csk)
    }
}

impl std::fmt::Display for KeyRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// DNSSEC algorithm numbers accepted for keys, with their configuration names
/// (IANA "DNS Security Algorithm Numbers", lowercase).
pub const ALGORITHMS: &[(&str, u8)] = &[
    ("rsasha256", 8),
    ("rsasha512", 10),
    ("ecdsap256sha256", 13),
    ("ecdsap384sha384", 14),
    ("ed25519", 15),
];

/// The configuration name of an algorithm number, if signet supports it.
pub fn algorithm_name(number: u8) -> Option<&'static str> {
    ALGORITHMS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| *name)
}

/// Parses a key algorithm by name (case-insensitive) or number.
pub fn parse_algorithm(s: &str) -> Result<u8, String> {
    let lower = s.trim().to_ascii_lowercase();
    let number = match ALGORITHMS.iter().find(|(name, _)| *name == lower) {
        Some((_, n)) => *n,
        None => match lower.as_str() {
            "ed448" => 16,
            "rsamd5" => 1,
            "dsa" => 3,
            "rsasha1" => 5,
            "dsa-nsec3-sha1" => 6,
            "rsasha1-nsec3-sha1" => 7,
            "eccgost" | "ecc-gost" => 12,
            _ => match lower.parse::<u8>() {
                Ok(n) => n,
                Err(_) => {
                    return Err(format!(
                        "unknown algorithm {s:?}; use one of {}",
                        ALGORITHMS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            },
        },
    };
    check_algorithm(number)
}

/// Accepts a supported algorithm number or says why not.
pub fn check_algorithm(number: u8) -> Result<u8, String> {
    match number {
        8 | 10 | 13 | 14 | 15 => Ok(number),
        16 => Err("ed448 (16) is not supported: the crypto library has no Ed448; use ed25519 (15) or ecdsap256sha256 (13)".into()),
        1 | 3 | 5 | 6 | 7 | 12 => Err(format!(
            "algorithm {number} must not be used for signing (RFC 8624 §3.1); use ecdsap256sha256 (13)"
        )),
        _ => Err(format!(
            "algorithm {number} is not a supported DNSSEC signing algorithm; use 8, 10, 13, 14 or 15"
        )),
    }
}

/// One entry of a policy's `keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// ksk, zsk or csk.
    pub role: KeyRole,
    /// DNSSEC algorithm number (8, 10, 13, 14, 15).
    pub algorithm: u8,
    /// When the key is rolled.
    pub lifetime: Lifetime,
    /// Name of the keystore the key lives in.
    pub keystore: String,
}

/// `nsec3 = { iterations, salt-length, opt-out }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nsec3Policy {
    /// Additional hash iterations (RFC 9276: 0).
    pub iterations: u16,
    /// Length of a random salt in octets, 0 for none (RFC 9276: none).
    pub salt_length: u8,
    /// Opt-out for insecure delegations (RFC 5155 §6).
    pub opt_out: bool,
}

/// How the signer numbers the SOA serials it publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SerialPolicy {
    /// Previous published serial + 1 (RFC 1982 arithmetic).
    Increment,
    /// Seconds since the epoch, or previous + 1 if that is not larger.
    UnixTime,
    /// YYYYMMDDnn, or previous + 1 if that is not larger.
    DateSerial,
    /// The upstream serial, unchanged (re-signing alone cannot publish a new version then).
    Keep,
}

impl SerialPolicy {
    /// Name as in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SerialPolicy::Increment => "increment",
            SerialPolicy::UnixTime => "unixtime",
            SerialPolicy::DateSerial => "dateserial",
            SerialPolicy::Keep => "keep",
        }
    }
}

/// `[policy.NAME]`, durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The table name.
    pub name: String,
    /// The keys the zone should have.
    pub keys: Vec<KeySpec>,
    /// TTL of DNSKEY, CDS and CDNSKEY.
    pub dnskey_ttl: u64,
    /// Largest TTL in the zone (used for rollover timing).
    pub max_zone_ttl: u64,
    /// Extra time before a new key is considered published.
    pub publish_safety: u64,
    /// Extra time before an old key is considered retired.
    pub retire_safety: u64,
    /// Removed keys are deleted after this; 0 never deletes.
    pub purge_keys: u64,
    /// Validity of RRSIGs other than over DNSKEY/CDS/CDNSKEY.
    pub signatures_validity: u64,
    /// Validity of RRSIGs over DNSKEY, CDS, CDNSKEY.
    pub signatures_validity_dnskey: u64,
    /// Re-sign when less than this validity remains.
    pub signatures_refresh: u64,
    /// Expiration times are spread over this interval.
    pub signatures_jitter: u64,
    /// Time for all secondaries to serve a new serial.
    pub zone_propagation_delay: u64,
    /// TTL of the DS at the parent.
    pub parent_ds_ttl: u64,
    /// Time for a DS change to reach all of the parent's servers.
    pub parent_propagation_delay: u64,
    /// NSEC3 parameters; `None` for NSEC.
    pub nsec3: Option<Nsec3Policy>,
    /// CDS digest types (2 = SHA-256, 4 = SHA-384); empty publishes no CDS.
    pub cds_digest_types: Vec<u8>,
    /// Publish CDNSKEY as well as CDS.
    pub publish_cdnskey: bool,
    /// Serial numbering.
    pub serial: SerialPolicy,
    /// Key-state transitions wait for `signet step`.
    pub manual_mode: bool,
    /// Line of the table header; `None` for the built-in default.
    pub line: Option<usize>,
}

impl Default for Policy {
    /// BIND 9's `dnssec-policy "default"`.
    fn default() -> Policy {
        const H: u64 = 3600;
        const D: u64 = 86400;
        Policy {
            name: DEFAULT_POLICY.to_string(),
            keys: vec![KeySpec {
                role: KeyRole::Csk,
                algorithm: 13,
                lifetime: Lifetime::Unlimited,
                keystore: DEFAULT_KEYSTORE.to_string(),
            }],
            dnskey_ttl: H,
            max_zone_ttl: D,
            publish_safety: H,
            retire_safety: H,
            purge_keys: 90 * D,
            signatures_validity: 14 * D,
            signatures_validity_dnskey: 14 * D,
            signatures_refresh: 5 * D,
            signatures_jitter: 12 * H,
            zone_propagation_delay: 300,
            parent_ds_ttl: D,
            parent_propagation_delay: H,
            nsec3: None,
            cds_digest_types: vec![2],
            publish_cdnskey: true,
            serial: SerialPolicy::Increment,
            manual_mode: false,
            line: None,
        }
    }
}

impl Policy {
    /// The built-in `insecure` policy: the default timings and no keys (BIND's
    /// `dnssec-policy insecure`).
    pub fn insecure() -> Policy {
        Policy {
            name: INSECURE_POLICY.to_string(),
            keys: Vec::new(),
            ..Policy::default()
        }
    }

    /// Whether this policy has no keys: a zone under it goes (or stays) insecure.
    pub fn is_insecure(&self) -> bool {
        self.keys.is_empty()
    }

    /// Shortest finite lifetime a key of `role` can have under this policy: the time a rollover
    /// takes, publication interval + retire interval (RFC 7583 §3.2/§3.3; BIND's check).
    pub fn min_lifetime(&self, role: KeyRole) -> u64 {
        let ipub = self
            .dnskey_ttl
            .saturating_add(self.publish_safety)
            .saturating_add(self.zone_propagation_delay);
        // ZSK: every signature made with the old key must have been replaced and expired from
        // caches.
        let iret_zsk = self
            .signatures_validity
            .saturating_sub(self.signatures_refresh)
            .saturating_add(self.max_zone_ttl)
            .saturating_add(self.zone_propagation_delay)
            .saturating_add(self.retire_safety);
        // KSK: the new DS must be at the parent and the old one gone from caches.
        let iret_ksk = self
            .parent_ds_ttl
            .saturating_add(self.parent_propagation_delay)
            .saturating_add(self.retire_safety);
        let iret = match role {
            KeyRole::Zsk => iret_zsk,
            KeyRole::Ksk => iret_ksk,
            KeyRole::Csk => iret_zsk.max(iret_ksk),
        };
        ipub.saturating_add(iret)
    }
}

/// An address-based or key-based access rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AclEntry {
    /// An address prefix (a single address has the full length: 32 or 128); host bits are zero.
    Addr(IpAddr, u8),
    /// A TSIG key, by lowercase absolute name (`xfr.`).
    Key(String),
}

impl AclEntry {
    /// Whether `ip` lies in this entry's prefix (always false for a key entry). IPv4-mapped
    /// IPv6 addresses match IPv4 prefixes.
    pub fn matches_addr(&self, ip: IpAddr) -> bool {
        let AclEntry::Addr(net, len) = self else {
            return false;
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = prefix_mask(u128::from(u32::MAX), 32, *len);
                (u128::from(u32::from(a)) & mask) == u128::from(u32::from(*n))
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = prefix_mask(u128::MAX, 128, *len);
                (u128::from(a) & mask) == u128::from(*n)
            }
            _ => false,
        }
    }

    /// The TSIG key name, for a key entry.
    pub fn key(&self) -> Option<&str> {
        match self {
            AclEntry::Key(k) => Some(k),
            AclEntry::Addr(..) => None,
        }
    }
}

/// The mask of the first `len` bits of a `bits`-bit value held in the low bits of a u128.
fn prefix_mask(all: u128, bits: u8, len: u8) -> u128 {
    if len == 0 {
        0
    } else if len >= bits {
        all
    } else {
        (all >> (bits - len)) << (bits - len)
    }
}

/// Where a zone's unsigned data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneSource {
    /// A local zone file, watched for changes.
    File(PathBuf),
    /// Upstream primaries, tried in order.
    Primaries(Vec<SocketAddr>),
}

/// What to do when upstream has been unreachable for the SOA expire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnUpstreamExpire {
    /// Keep serving and re-signing the last good copy (and say so loudly).
    #[default]
    KeepServing,
    /// Stop serving the zone.
    Withdraw,
}

/// RR types an UPDATE may change (the apex overlay of DESIGN.md). NS only when listed in
/// `update.types` (a multi-signer NS set, RFC 8901 §4.2): not in [`DEFAULT_UPDATE_TYPES`].
pub const UPDATE_TYPES: &[(&str, u16)] = &[
    ("DNSKEY", 48),
    ("CDS", 59),
    ("CDNSKEY", 60),
    ("CSYNC", 62),
    ("NS", 2),
];

/// `update.types` when it is not given.
pub const DEFAULT_UPDATE_TYPES: &[u16] = &[48, 59, 60, 62];

/// `update = { keys, types }`: who may send RFC 2136 UPDATEs, and for which apex types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatePolicy {
    /// TSIG key names (lowercase absolute).
    pub keys: Vec<String>,
    /// RR type numbers, a subset of [`UPDATE_TYPES`].
    pub types: Vec<u16>,
    /// The other signers of the zone (RFC 8901): a new ZSK of signet's own starts signing only
    /// once all of them publish it in their DNSKEY RRsets (plus the DNSKEY TTL). Empty: no wait.
    pub peers: Vec<SocketAddr>,
}

/// `[[zone]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// Lowercase absolute name: `example.com.`.
    pub name: String,
    /// Policy name (a key of [`Config::policies`]).
    pub policy: String,
    /// Where the unsigned zone comes from.
    pub source: ZoneSource,
    /// TSIG key (lowercase absolute name) for SOA/IXFR/AXFR to upstream and its NOTIFY.
    pub transfer_tsig: Option<String>,
    /// Who may NOTIFY besides the primaries.
    pub allow_notify: Vec<AclEntry>,
    /// Secondaries to NOTIFY after each new signed serial.
    pub notify: Vec<SocketAddr>,
    /// Who may AXFR/IXFR the signed zone; empty means nobody.
    pub allow_transfer: Vec<AclEntry>,
    /// Servers to ask for the parent's DS.
    pub parental_agents: Vec<SocketAddr>,
    /// Behaviour at upstream expire.
    pub on_upstream_expire: OnUpstreamExpire,
    /// Who may UPDATE the apex overlay; `None` means nobody.
    pub update: Option<UpdatePolicy>,
    /// Line of the `[[zone]]` header.
    pub line: usize,
}

static BUILTIN_POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

impl Config {
    /// The zone named `name` (any case, trailing dot optional).
    pub fn zone(&self, name: &str) -> Option<&ZoneConfig> {
        let wanted = normalise_name(name).ok()?;
        self.zones.iter().find(|z| z.name == wanted)
    }

    /// The zone's policy. A validated configuration always has it; for a hand-built one
    /// that lacks it, this falls back to the `default` policy, then to the built-in one.
    pub fn policy_for(&self, zone: &ZoneConfig) -> &Policy {
        self.policies
            .get(&zone.policy)
            .or_else(|| self.policies.get(DEFAULT_POLICY))
            .unwrap_or(&BUILTIN_POLICY)
    }

    /// A TSIG key by name (any case, trailing dot optional).
    pub fn tsig_key(&self, name: &str) -> Option<&TsigKey> {
        let wanted = normalise_name(name).ok()?;
        self.tsig.get(&wanted)
    }
}

/// Reads and validates the configuration file at `path`. Does not look at zone files or key
/// directories (see [`check`]).
pub fn load(path: &Path) -> Result<Config, Problems> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(Problems(vec![Problem::error(format!(
                "cannot read the configuration: {e}"
            ))
            .in_file(path)]))
        }
    };
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(Problems(vec![Problem::error(
                "the configuration is not valid UTF-8",
            )
            .in_file(path)
            .at_line(line)]));
        }
    };
    parse_str(&text, path)
}

/// Validates configuration text; `path` is used for messages and [`Config::path`].
pub fn parse_str(text: &str, path: &Path) -> Result<Config, Problems> {
    parse::parse(text, path)
}

/// What `signet check` runs: [`load`], then checks the file system: file-sourced zone files
/// exist and are regular files; the state directory and files-keystore directories exist or
/// can be created; PKCS#11 modules and PIN files exist. Every problem is reported.
pub fn check(path: &Path) -> Result<Config, Problems> {
    let config = load(path)?;
    let mut problems = Vec::new();
    let in_file = |p: Problem, line: Option<usize>| {
        let p = p.in_file(&config.path);
        match line {
            Some(l) => p.at_line(l),
            None => p,
        }
    };

    if let Err(why) = dir_usable(&config.server.state_dir) {
        problems.push(in_file(
            Problem::error(format!(
                "state-dir {}: {why}",
                config.server.state_dir.display()
            )),
            None,
        ));
    }
    if let Some(parent) = config.server.control.parent() {
        if let Err(why) = dir_usable(parent) {
            problems.push(in_file(
                Problem::error(format!(
                    "control socket {}: {why}",
                    config.server.control.display()
                )),
                None,
            ));
        }
    }
    for ks in config.keystores.values() {
        match &ks.backend {
            KeystoreBackend::Files { directory } => {
                if let Err(why) = dir_usable(directory) {
                    problems.push(in_file(
                        Problem::error(format!(
                            "keystore {}: directory {}: {why}",
                            ks.name,
                            directory.display()
                        )),
                        ks.line,
                    ));
                }
            }
            KeystoreBackend::Pkcs11 { module, pin, .. } => {
                if let Err(why) = file_readable(module) {
                    problems.push(in_file(
                        Problem::error(format!(
                            "keystore {}: module {}: {why}",
                            ks.name,
                            module.display()
                        )),
                        ks.line,
                    ));
                }
                match pin {
                    PinSource::File(p) => {
                        if let Err(why) = file_readable(p) {
                            problems.push(in_file(
                                Problem::error(format!(
                                    "keystore {}: pin file {}: {why}",
                                    ks.name,
                                    p.display()
                                )),
                                ks.line,
                            ));
                        }
                    }
                    PinSource::Env(var) => {
                        if std::env::var_os(var).is_none() {
                            problems.push(in_file(
                                Problem::warning(format!(
                                    "keystore {}: environment variable {var} is not set here",
                                    ks.name
                                )),
                                ks.line,
                            ));
                        }
                    }
                    PinSource::Literal(_) => {}
                }
            }
        }
    }
    for zone in &config.zones {
        if let ZoneSource::File(file) = &zone.source {
            if let Err(why) = file_readable(file) {
                problems.push(
                    Problem::error(format!("zone file {}: {why}", file.display()))
                        .in_file(&config.path)
                        .for_zone(&zone.name),
                );
            }
        }
    }

    let (errors, warnings): (Vec<_>, Vec<_>) = problems.into_iter().partition(|p| !p.is_warning());
    if errors.is_empty() {
        let mut config = config;
        config.warnings.extend(warnings);
        Ok(config)
    } else {
        let mut problems = Problems(errors);
        problems.sort();
        Err(problems)
    }
}

/// A directory signet will write to: it exists and is a directory, or its nearest existing
/// ancestor is a writable directory (so it can be created).
fn dir_usable(dir: &Path) -> Result<(), String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            if m.permissions().readonly() {
                Err("is not writable".into())
            } else {
                Ok(())
            }
        }
        Ok(_) => Err("exists but is not a directory".into()),
        Err(e) if is_missing(&e) => {
            let mut ancestor = dir.parent();
            while let Some(a) = ancestor {
                let probe = if a.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    a
                };
                match std::fs::metadata(probe) {
                    Ok(m) if m.is_dir() => {
                        return if m.permissions().readonly() {
                            Err(format!(
                                "does not exist and cannot be created: {} is not writable",
                                probe.display()
                            ))
                        } else {
                            Ok(())
                        };
                    }
                    Ok(_) => {
                        return Err(format!(
                            "cannot be created: {} is not a directory",
                            probe.display()
                        ))
                    }
                    Err(e) if is_missing(&e) => {
                        ancestor = a.parent();
                    }
                    Err(e) => return Err(format!("cannot be created: {}: {e}", probe.display())),
                }
            }
            Err("does not exist and has no existing parent directory".into())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Not there: either missing, or a path component on the way is a regular file (the walk up
/// then finds and names that file).
fn is_missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// A file signet will read: it exists, is a regular file, and can be opened.
fn file_readable(file: &Path) -> Result<(), String> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() => std::fs::File::open(file)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Ok(_) => Err("is not a regular file".into()),
        Err(e) if is_missing(&e) => Err("does not exist".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
