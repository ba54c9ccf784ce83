//! Shared scaffolding for the IXFR tests (included with
//! `#[path = "ixfr_support.rs"] mod ixfr_support;`; compiled on its own it has no tests): a capture
//! of the library's log, a random zone model with the edits of Knot's `ixfr/knot_bind` idiom, and
//! a signer with Ed25519 keys at one fixed time, so that unchanged RRsets keep byte-identical
//! RRSIGs from one version to the next and diffs stay small.

#![allow(dead_code)]

use signet::keystore::{dnskey_rdata, generate_pkcs8, key_tag, RingSigningKey, SigningKey};
use signet::signer::{sign_zone, ActiveKey, Denial, SignParams};
use signet::zone::data::Zone;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses zone text into a checked zone.
pub fn zone_from_text(origin: &str, text: &str) -> Zone {
    let o = signet::dns::name::Name::parse(origin, None).unwrap_or_else(|e| panic!("{e}"));
    let parsed = signet::zonefile::parse_str(text, std::path::Path::new("test.zone"), &o)
        .unwrap_or_else(|e| panic!("zone text does not parse: {e:?}"));
    signet::zonefile::zone_from_parsed(parsed, &o)
        .unwrap_or_else(|e| panic!("zone is not valid: {e:?}"))
        .0
}

// ------------------------------------------------------------------------------- log capture

/// Everything the library logs, for checking "IXFR out … incremental" lines.
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new("signet=info"))
            .with_writer(move || Sink(sink.clone()))
            .try_init();
        buf
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn log_text() -> String {
    logs()
        .lock()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default()
}

/// Lines of our log reporting a finished IXFR of `style` to a client using `key`.
pub fn ixfr_lines(style: &str, key: &str) -> usize {
    log_text()
        .lines()
        .filter(|l| {
            l.contains("IXFR out")
                && l.contains(&format!("style=\"{style}\""))
                && l.contains(&format!("key={key}."))
        })
        .count()
}

// ------------------------------------------------------------------------------- the zone

/// xorshift64*, seeded per test (printed, so a failure can be replayed).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The unsigned zone: (owner, type) → (TTL, RDATA texts).
pub struct Model {
    pub serial: u32,
    pub sets: BTreeMap<(String, String), (u32, BTreeSet<String>)>,
    next_host: usize,
    next_deleg: usize,
    next_ent: usize,
}

impl Model {
    pub fn new(hosts: usize) -> Model {
        let mut m = Model {
            serial: 1,
            sets: BTreeMap::new(),
            next_host: hosts,
            next_deleg: 6,
            next_ent: 4,
        };
        m.put("@", "NS", 300, "ns1");
        m.put("@", "NS", 300, "ns2");
        m.put("@", "MX", 300, "10 mail");
        m.put("ns1", "A", 300, "127.0.0.1");
        m.put("ns2", "A", 300, "127.0.0.2");
        m.put("mail", "A", 300, "192.0.2.25");
        m.put("*.wild", "A", 300, "192.0.2.100");
        for i in 0..hosts {
            m.put(
                &format!("h{i:04}"),
                "A",
                300,
                &format!("192.0.2.{}", i % 250 + 1),
            );
            if i.is_multiple_of(3) {
                m.put(&format!("h{i:04}"), "TXT", 300, &format!("\"host {i}\""));
            }
        }
        for i in 0..6 {
            m.delegation(i, i.is_multiple_of(2));
        }
        for i in 0..4 {
            m.put(&format!("a.b.ent{i}"), "A", 300, "192.0.2.77");
        }
        m
    }

    pub fn put(&mut self, owner: &str, rtype: &str, ttl: u32, rdata: &str) {
        let e = self
            .sets
            .entry((owner.to_string(), rtype.to_string()))
            .or_insert((ttl, BTreeSet::new()));
        e.1.insert(rdata.to_string());
    }

    fn delegation(&mut self, i: usize, signed: bool) {
        let d = format!("d{i:03}");
        self.put(&d, "NS", 300, &format!("ns.{d}"));
        self.put(&format!("ns.{d}"), "A", 300, "192.0.2.53");
        if signed {
            self.put(
                &d,
                "DS",
                300,
                "12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",
            );
        }
    }

    fn owners(&self, prefix: &str) -> Vec<String> {
        let set: BTreeSet<String> = self
            .sets
            .keys()
            .filter(|(o, _)| o.starts_with(prefix))
            .map(|(o, _)| o.clone())
            .collect();
        set.into_iter().collect()
    }

    fn remove_owner(&mut self, owner: &str) {
        self.sets.retain(|(o, _), _| o != owner);
    }

    /// A few random edits and the next serial. Returns what was done, for the log.
    pub fn edit(&mut self, rng: &mut Rng) -> Vec<String> {
        let mut done = Vec::new();
        for _ in 0..2 + rng.below(4) {
            match rng.below(9) {
                0 => {
                    let h = format!("h{:04}", self.next_host);
                    self.next_host += 1;
                    self.put(&h, "A", 300, "198.51.100.1");
                    done.push(format!("add {h}"));
                }
                1 => {
                    let hs = self.owners("h");
                    if let Some(h) = hs.get(rng.below(hs.len())) {
                        self.remove_owner(h);
                        done.push(format!("remove {h}"));
                    }
                }
                2 => {
                    let hs = self.owners("h");
                    if let Some(h) = hs.get(rng.below(hs.len())).cloned() {
                        let v = format!("203.0.113.{}", rng.below(250) + 1);
                        self.sets.insert((h.clone(), "A".into()), (300, [v].into()));
                        done.push(format!("change {h} A"));
                    }
                }
                3 => {
                    let i = self.next_deleg;
                    self.next_deleg += 1;
                    let signed = rng.below(2) == 0;
                    self.delegation(i, signed);
                    done.push(format!("add delegation d{i:03} (DS: {signed})"));
                }
                4 => {
                    let ds: Vec<String> = self
                        .owners("d")
                        .into_iter()
                        .filter(|d| !d.contains('.'))
                        .collect();
                    if let Some(d) = ds.get(rng.below(ds.len())).cloned() {
                        self.remove_owner(&d);
                        self.remove_owner(&format!("ns.{d}"));
                        done.push(format!("remove delegation {d}"));
                    }
                }
                5 => {
                    let i = self.next_ent;
                    self.next_ent += 1;
                    self.put(&format!("a.b.ent{i}"), "A", 300, "192.0.2.78");
                    done.push(format!("add a.b.ent{i} (two empty non-terminals)"));
                }
                6 => {
                    let es = self.owners("a.b.ent");
                    if let Some(e) = es.get(rng.below(es.len())).cloned() {
                        self.remove_owner(&e);
                        done.push(format!("remove {e}"));
                    }
                }
                7 => {
                    let hs = self.owners("h");
                    if let Some(h) = hs.get(rng.below(hs.len())).cloned() {
                        if let Some(e) = self.sets.get_mut(&(h.clone(), "A".into())) {
                            e.0 = if e.0 == 300 { 600 } else { 300 };
                            done.push(format!("TTL of {h} A"));
                        }
                    }
                }
                _ => {
                    let hs = self.owners("h");
                    if let Some(h) = hs.get(rng.below(hs.len())).cloned() {
                        let key = (h.clone(), "TXT".to_string());
                        if self.sets.remove(&key).is_some() {
                            done.push(format!("remove {h} TXT"));
                        } else {
                            self.put(&h, "TXT", 300, "\"new text\"");
                            done.push(format!("add {h} TXT"));
                        }
                    }
                }
            }
        }
        self.serial += 1;
        done
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "$ORIGIN example.test.\n@ 300 IN SOA ns1 hostmaster {} 3600 600 86400 300\n",
            self.serial
        );
        for ((owner, rtype), (ttl, rdatas)) in &self.sets {
            for rd in rdatas {
                s.push_str(&format!("{owner} {ttl} IN {rtype} {rd}\n"));
            }
        }
        s
    }
}

/// Signs every version with one Ed25519 KSK and ZSK at one time: deterministic signatures
/// (RFC 8032), so an RRset that did not change keeps its RRSIG byte for byte.
pub struct ZoneSigner {
    keys: Vec<ActiveKey>,
    params: SignParams,
    now: u64,
}

pub fn ed25519_key(ksk: bool) -> ActiveKey {
    let der = generate_pkcs8(15).unwrap_or_else(|e| panic!("key: {e}"));
    let k = RingSigningKey::from_der(15, &der).unwrap_or_else(|e| panic!("key: {e}"));
    let dnskey = dnskey_rdata(if ksk { 257 } else { 256 }, 15, k.public_key());
    ActiveKey {
        tag: key_tag(&dnskey),
        dnskey,
        key: Arc::new(k),
        signs_keys: ksk,
        signs_zone: !ksk,
        publish: true,
    }
}

impl ZoneSigner {
    pub fn new(denial: Denial) -> ZoneSigner {
        ZoneSigner {
            keys: vec![ed25519_key(true), ed25519_key(false)],
            params: SignParams {
                denial,
                threads: 2,
                ..SignParams::default()
            },
            now: now(),
        }
    }

    pub fn sign(&self, m: &Model) -> Zone {
        let unsigned = zone_from_text("example.test.", &m.text());
        sign_zone(&unsigned, &self.keys, &self.params, self.now)
            .unwrap_or_else(|e| panic!("signing serial {}: {e}", m.serial))
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A seed for [`Rng`]: `SIGNET_IXFR_SEED` if set (to replay a failure), else from the clock.
pub fn seed(label: &str) -> u64 {
    let s = std::env::var("SIGNET_IXFR_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| now() ^ (label.len() as u64 * 0x9e37_79b9));
    eprintln!("{label}: seed {s} (SIGNET_IXFR_SEED={s} to replay)");
    s | 1
}
