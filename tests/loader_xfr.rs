//! The transfer client (`signet::loader`) against real primaries: knotd (`zonefile-load:
//! difference`, so reloads become IXFR from its journal) and BIND named
//! (`ixfr-from-differences`), both requiring TSIG.
//!
//! Every incremental result is compared with a fresh AXFR and with the zone text the primary
//! was given: the same records, TTLs and RDATA (compared in canonical form, in any order).

mod common;

use common::{KnotPrimary, NamedPrimary, TempDir, TsigKey};
use signet::auth::Key;
use signet::config::TsigAlgorithm;
use signet::dns::name::Name;
use signet::dns::rdata;
use signet::dns::record::Record;
use signet::dns::rtype::t;
use signet::loader::{query_soa, transfer, Fetched, Limits, XfrError};
use signet::zone::data::Zone;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const ZONE: &str = "example.test";

fn origin() -> Name {
    Name::parse("example.test.", None).unwrap()
}

fn signet_key(k: &TsigKey) -> Arc<Key> {
    let secret = data_encoding::BASE64
        .decode(k.secret.as_bytes())
        .expect("harness key is base64");
    Arc::new(Key::new(
        Name::parse(&k.name, Some(&Name::root())).unwrap(),
        TsigAlgorithm::HmacSha256,
        &secret,
    ))
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

type Norm = Vec<(String, u16, u32, Vec<u8>)>;

fn norm_records(records: impl IntoIterator<Item = Record>) -> Norm {
    let mut v: Norm = records
        .into_iter()
        .map(|r| {
            (
                r.owner.to_lowercase().to_string(),
                r.rtype,
                r.ttl,
                rdata::canonical(r.rtype, &r.rdata).into_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Sorted (owner, type, TTL, canonical RDATA) of a zone: equal for equal content.
fn norm(z: &Zone) -> Norm {
    norm_records(z.records())
}

fn zone_from_text(text: &str) -> Zone {
    let parsed = signet::zonefile::parse_str(text, Path::new("model.zone"), &origin())
        .unwrap_or_else(|e| panic!("model text does not parse: {e:?}\n{text}"));
    signet::zonefile::zone_from_parsed(parsed, &origin())
        .unwrap_or_else(|e| panic!("model zone invalid: {e:?}"))
        .0
}

// ------------------------------------------------------------------------------------------------
// A zone model with random edits (the idea of Knot's tests-extra ixfr/knot_bind: random
// additions, removals and changes, then compare what the secondary got)

/// Deterministic xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed() -> u64 {
    let s = std::env::var("SIGNET_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("random edits with SIGNET_TEST_SEED={s}");
    s
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rr {
    owner: String,
    ttl: u32,
    rtype: &'static str,
    rdata: String,
}

#[derive(Clone, Debug)]
struct Model {
    serial: u32,
    rrs: Vec<Rr>,
    counter: u32,
}

impl Model {
    fn new(serial: u32, hosts: usize) -> Model {
        let mut m = Model {
            serial,
            rrs: Vec::new(),
            counter: 1,
        };
        for (o, ty, rd) in [
            ("@", "NS", "ns1"),
            ("@", "NS", "ns2"),
            ("ns1", "A", "192.0.2.1"),
            ("ns2", "A", "192.0.2.2"),
            ("@", "MX", "10 mail"),
            ("mail", "A", "192.0.2.3"),
        ] {
            m.rrs.push(Rr {
                owner: o.into(),
                ttl: 3600,
                rtype: ty,
                rdata: rd.into(),
            });
        }
        for i in 0..hosts {
            let owner = format!("h{i}");
            let rd = m.fresh_rdata("A");
            m.rrs.push(Rr {
                owner: owner.clone(),
                ttl: 300,
                rtype: "A",
                rdata: rd,
            });
            if i % 3 == 0 {
                let rd = m.fresh_rdata("TXT");
                m.rrs.push(Rr {
                    owner,
                    ttl: 600,
                    rtype: "TXT",
                    rdata: rd,
                });
            }
        }
        m
    }

    fn text(&self) -> String {
        let mut s = format!(
            "$ORIGIN example.test.\n@ 3600 IN SOA ns1 hostmaster {} 3600 600 86400 300\n",
            self.serial
        );
        for r in &self.rrs {
            s.push_str(&format!(
                "{} {} IN {} {}\n",
                r.owner, r.ttl, r.rtype, r.rdata
            ));
        }
        s
    }

    fn zone(&self) -> Zone {
        zone_from_text(&self.text())
    }

    /// RDATA never used before in this model.
    fn fresh_rdata(&mut self, rtype: &str) -> String {
        let c = self.counter;
        self.counter += 1;
        match rtype {
            "A" => format!("10.{}.{}.{}", (c >> 16) & 255, (c >> 8) & 255, c & 255),
            "AAAA" => format!("2001:db8::{c:x}"),
            "TXT" => format!("\"text {c}\""),
            "MX" => format!("{} mx{c}.example.net.", c % 50),
            _ => format!("target{c}.example.net."),
        }
    }

    fn is_fixed(r: &Rr) -> bool {
        r.owner == "@" || r.owner == "ns1" || r.owner == "ns2" || r.owner == "mail"
    }

    fn ttl_of(&self, owner: &str, rtype: &str) -> Option<u32> {
        self.rrs
            .iter()
            .find(|r| r.owner == owner && r.rtype == rtype)
            .map(|r| r.ttl)
    }

    /// `ops` random edits and a serial bump.
    fn edit(&mut self, rng: &mut Rng, ops: usize) {
        for _ in 0..ops {
            let editable: Vec<usize> = (0..self.rrs.len())
                .filter(|&i| !Model::is_fixed(&self.rrs[i]))
                .collect();
            match rng.below(7) {
                // a new name
                0 => {
                    let c = self.counter;
                    let ty = ["A", "AAAA", "TXT", "MX"][rng.below(4)];
                    let rd = self.fresh_rdata(ty);
                    self.rrs.push(Rr {
                        owner: format!("n{c}"),
                        ttl: 300,
                        rtype: ty,
                        rdata: rd,
                    });
                }
                // a CNAME at a new name (nothing else is ever added there)
                1 => {
                    let c = self.counter;
                    let rd = self.fresh_rdata("CNAME");
                    self.rrs.push(Rr {
                        owner: format!("c{c}"),
                        ttl: 300,
                        rtype: "CNAME",
                        rdata: rd,
                    });
                }
                // one more record in an existing name's RRset, or a new type there
                2 => {
                    let hosts: Vec<usize> = editable
                        .iter()
                        .copied()
                        .filter(|&i| self.rrs[i].rtype != "CNAME")
                        .collect();
                    if hosts.is_empty() {
                        continue;
                    }
                    let owner = self.rrs[hosts[rng.below(hosts.len())]].owner.clone();
                    let ty = ["A", "AAAA", "TXT"][rng.below(3)];
                    let rd = self.fresh_rdata(ty);
                    let ttl = self.ttl_of(&owner, ty).unwrap_or(900);
                    self.rrs.push(Rr {
                        owner,
                        ttl,
                        rtype: ty,
                        rdata: rd,
                    });
                }
                // a removal
                3 | 4 => {
                    if editable.is_empty() {
                        continue;
                    }
                    self.rrs.remove(editable[rng.below(editable.len())]);
                }
                // a changed RDATA
                5 => {
                    if editable.is_empty() {
                        continue;
                    }
                    let i = editable[rng.below(editable.len())];
                    let ty = self.rrs[i].rtype;
                    self.rrs[i].rdata = self.fresh_rdata(ty);
                }
                // a changed TTL of a whole RRset
                _ => {
                    if editable.is_empty() {
                        continue;
                    }
                    let i = editable[rng.below(editable.len())];
                    let (owner, ty) = (self.rrs[i].owner.clone(), self.rrs[i].rtype);
                    let ttl = 60 * (1 + rng.below(60) as u32);
                    for r in self.rrs.iter_mut() {
                        if r.owner == owner && r.rtype == ty {
                            r.ttl = ttl;
                        }
                    }
                }
            }
        }
        self.serial += 1;
    }
}

// ------------------------------------------------------------------------------------------------
// Helpers around the client

async fn axfr(port: u16, key: &Arc<Key>) -> Zone {
    match transfer(
        addr(port),
        &origin(),
        Some(key),
        None,
        false,
        &Limits::default(),
    )
    .await
    {
        Ok(Fetched::Full {
            zone,
            via_ixfr: false,
        }) => zone,
        other => panic!("AXFR: {other:?}"),
    }
}

/// IXFR from `from`: must be incremental, equal to a fresh AXFR and to `model`.
async fn ixfr_round(port: u16, key: &Arc<Key>, from: &Zone, model: &Model) -> (Zone, usize) {
    let got = transfer(
        addr(port),
        &origin(),
        Some(key),
        Some(from),
        false,
        &Limits::default(),
    )
    .await;
    let (zone, diffs) = match got {
        Ok(Fetched::Incremental { zone, diffs }) => (zone, diffs),
        other => panic!(
            "IXFR {:?} → {}: expected incremental, got {other:?}",
            from.serial(),
            model.serial
        ),
    };
    assert_eq!(zone.serial(), Some(model.serial));
    eprintln!(
        "IXFR {:?} → {}: {}",
        from.serial(),
        model.serial,
        diffs
            .iter()
            .map(|d| format!(
                "{}→{} −{} +{}",
                d.from_serial,
                d.to_serial,
                d.removed.len() - 1,
                d.added.len() - 1
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // the diffs chain from our serial to the new one
    assert_eq!(diffs.first().map(|d| d.from_serial), from.serial());
    assert_eq!(diffs.last().map(|d| d.to_serial), Some(model.serial));
    for w in diffs.windows(2) {
        assert_eq!(w[0].to_serial, w[1].from_serial);
    }
    let fresh = axfr(port, key).await;
    assert_eq!(
        norm(&zone),
        norm(&fresh),
        "IXFR result differs from AXFR at serial {}",
        model.serial
    );
    assert_eq!(
        norm(&zone),
        norm(&model.zone()),
        "IXFR result differs from the primary's zone text at serial {}",
        model.serial
    );
    (zone, diffs.len())
}

// ------------------------------------------------------------------------------------------------
// knotd

#[tokio::test]
async fn knot_soa_axfr_ixfr_rounds() {
    require!("knotd", "knotc", "dig");
    let tmp = TempDir::new("loader-knot");
    let tk = TsigKey::generate("xfr-key");
    let key = signet_key(&tk);
    let mut rng = Rng(seed());
    let mut model = Model::new(1, 40);
    let knot = KnotPrimary::builder(&tk)
        .zone(ZONE, &model.text())
        .start(&tmp);
    let port = knot.port();
    let limits = Limits::default();

    // SOA query, signed and unsigned (knotd answers SOA queries to anyone)
    assert_eq!(
        query_soa(addr(port), &origin(), Some(&key), &limits).await,
        Ok(1)
    );
    assert_eq!(query_soa(addr(port), &origin(), None, &limits).await, Ok(1));

    // AXFR: exactly the content of the zone file
    let v1 = axfr(port, &key).await;
    assert_eq!(norm(&v1), norm(&model.zone()));
    assert_eq!(v1.serial(), Some(1));

    // a small change: one record removed, one added
    let old_model = model.clone();
    let removed = model
        .rrs
        .iter()
        .position(|r| r.owner == "h1" && r.rtype == "A")
        .expect("h1 A");
    let gone = model.rrs.remove(removed);
    model.rrs.push(Rr {
        owner: "added".into(),
        ttl: 300,
        rtype: "A",
        rdata: "198.51.100.7".into(),
    });
    model.serial = 2;
    knot.update_zone(ZONE, &model.text()).unwrap();
    knot.wait_serial(ZONE, 2, Duration::from_secs(10)).unwrap();
    assert_eq!(
        query_soa(addr(port), &origin(), Some(&key), &limits).await,
        Ok(2)
    );
    let got = transfer(addr(port), &origin(), Some(&key), Some(&v1), false, &limits)
        .await
        .unwrap();
    let Fetched::Incremental { zone: v2, diffs } = got else {
        panic!("expected an incremental transfer, got {got:?}")
    };
    assert_eq!(diffs.len(), 1);
    let d = &diffs[0];
    assert_eq!((d.from_serial, d.to_serial), (1, 2));
    assert_eq!(d.removed[0].rtype, t::SOA);
    assert_eq!(d.added[0].rtype, t::SOA);
    let one = |text: String| norm_records(zone_records(&text));
    assert_eq!(
        norm_records(d.removed[1..].to_vec()),
        one(format!(
            "{} {} IN {} {}",
            gone.owner, gone.ttl, gone.rtype, gone.rdata
        ))
    );
    assert_eq!(
        norm_records(d.added[1..].to_vec()),
        one("added 300 IN A 198.51.100.7".into())
    );
    assert_eq!(norm(&v2), norm(&axfr(port, &key).await));
    assert_eq!(norm(&v2), norm(&model.zone()));
    // the old version is untouched
    assert_eq!(norm(&v1), norm(&old_model.zone()));

    // nothing new: the single-SOA answer
    assert_eq!(
        transfer(addr(port), &origin(), Some(&key), Some(&v2), false, &limits).await,
        Ok(Fetched::UpToDate { serial: 2 })
    );

    // random rounds, each an IXFR equal to AXFR and to the zone text
    let mut cur = v2;
    for round in 0..6 {
        model.edit(&mut rng, 3 + round * 2);
        knot.update_zone(ZONE, &model.text()).unwrap();
        knot.wait_serial(ZONE, model.serial, Duration::from_secs(10))
            .unwrap();
        cur = ixfr_round(port, &key, &cur, &model).await.0;
    }

    // two versions behind: Knot sends one difference sequence per version
    model.edit(&mut rng, 5);
    knot.update_zone(ZONE, &model.text()).unwrap();
    knot.wait_serial(ZONE, model.serial, Duration::from_secs(10))
        .unwrap();
    model.edit(&mut rng, 5);
    knot.update_zone(ZONE, &model.text()).unwrap();
    knot.wait_serial(ZONE, model.serial, Duration::from_secs(10))
        .unwrap();
    let (latest, n) = ixfr_round(port, &key, &cur, &model).await;
    assert_eq!(n, 2, "one diff per version from knotd");

    // a serial knotd has no journal for: AXFR-style IXFR answer
    let mut unknown = latest.clone();
    unknown.set_serial(model.serial.wrapping_sub(1 << 30));
    match transfer(
        addr(port),
        &origin(),
        Some(&key),
        Some(&unknown),
        false,
        &limits,
    )
    .await
    {
        Ok(Fetched::Full {
            zone,
            via_ixfr: true,
        }) => assert_eq!(norm(&zone), norm(&model.zone())),
        other => panic!("expected an AXFR-style IXFR answer, got {other:?}"),
    }
    // our copy of version 1 diverged from the primary's (a record missing): the first diff
    // removes it, the IXFR is refused as not applicable, and the AXFR fallback works
    let mut diverged = v1.clone();
    let h1 = Name::parse("h1.example.test.", None).unwrap();
    assert!(diverged.nodes.remove(&h1).is_some());
    let e = transfer(
        addr(port),
        &origin(),
        Some(&key),
        Some(&diverged),
        false,
        &limits,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, XfrError::Ixfr(_)), "{e}");
    assert!(e.ixfr_fallback());
    assert!(e.to_string().contains("h1.example.test."), "{e}");
    eprintln!("diverged copy: {e}");
    // force_axfr: AXFR although a current version is given
    match transfer(
        addr(port),
        &origin(),
        Some(&key),
        Some(&latest),
        true,
        &limits,
    )
    .await
    {
        Ok(Fetched::Full {
            zone,
            via_ixfr: false,
        }) => assert_eq!(norm(&zone), norm(&model.zone())),
        other => panic!("expected AXFR, got {other:?}"),
    }
    // knotd's log shows the incremental transfers
    let log = knot.proc().log();
    assert!(
        log.matches("IXFR, outgoing").count() >= 8,
        "knotd should have served IXFRs:\n{}",
        knot.proc().log_tail(40)
    );
}

/// Records of zone-file text (no SOA needed).
fn zone_records(text: &str) -> Vec<Record> {
    signet::zonefile::parse_str(text, Path::new("line"), &origin())
        .unwrap()
        .records
}

#[tokio::test]
async fn knot_refusals_and_limits() {
    require!("knotd", "knotc", "dig");
    let tmp = TempDir::new("loader-knot-err");
    let tk = TsigKey::generate("xfr-key");
    let key = signet_key(&tk);
    let model = Model::new(7, 300);
    let knot = KnotPrimary::builder(&tk)
        .zone(ZONE, &model.text())
        .start(&tmp);
    let port = knot.port();
    let limits = Limits::default();

    // a wrong secret: knotd answers NOTAUTH/BADSIG, for the SOA query and the transfer
    let wrong = Arc::new(Key::new(
        key.name.clone(),
        TsigAlgorithm::HmacSha256,
        b"not the secret at all, not at all",
    ));
    let e = query_soa(addr(port), &origin(), Some(&wrong), &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Tsig(_)), "{e}");
    let e = transfer(addr(port), &origin(), Some(&wrong), None, false, &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Tsig(_)), "{e}");
    assert!(e.to_string().contains("BADSIG"), "{e}");
    // an unknown key name: BADKEY
    let stranger = Arc::new(Key::new(
        Name::parse("stranger.", None).unwrap(),
        TsigAlgorithm::HmacSha256,
        b"0123456789abcdef0123456789abcdef",
    ));
    let e = transfer(addr(port), &origin(), Some(&stranger), None, false, &limits)
        .await
        .unwrap_err();
    assert!(
        matches!(e, XfrError::Tsig(_)) && e.to_string().contains("BADKEY"),
        "{e}"
    );
    // no key where the primary requires one: refused
    let e = transfer(addr(port), &origin(), None, None, false, &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Refused { .. }), "{e}");
    eprintln!("no key: {e}");
    // a zone the primary does not serve
    let other = Name::parse("other.test.", None).unwrap();
    let e = query_soa(addr(port), &other, Some(&key), &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Refused { .. }), "{e}");
    let e = transfer(addr(port), &other, Some(&key), None, false, &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Refused { .. }), "{e}");

    // above max_records / max_bytes: aborted
    let small = Limits {
        max_records: 100,
        ..Limits::default()
    };
    let e = transfer(addr(port), &origin(), Some(&key), None, false, &small)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Limit(_)), "{e}");
    assert!(e.to_string().contains("max_records"), "{e}");
    let small = Limits {
        max_bytes: 2000,
        ..Limits::default()
    };
    let e = transfer(addr(port), &origin(), Some(&key), None, false, &small)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Limit(_)), "{e}");
    assert!(e.to_string().contains("max_bytes"), "{e}");
    // the same zone within the limits
    let z = axfr(port, &key).await;
    assert_eq!(norm(&z), norm(&model.zone()));

    // nobody listening: a connection error, quickly
    let closed = common::free_port();
    let fast = Limits {
        connect_timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    let started = std::time::Instant::now();
    let e = query_soa(addr(closed), &origin(), Some(&key), &fast)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Connect(_)), "{e}");
    let e = transfer(addr(closed), &origin(), Some(&key), None, false, &fast)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Connect(_)), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

// ------------------------------------------------------------------------------------------------
// BIND named

#[tokio::test]
async fn named_soa_axfr_ixfr_rounds() {
    require!("named", "dig");
    let tmp = TempDir::new("loader-named");
    let tk = TsigKey::generate("xfr-key");
    let key = signet_key(&tk);
    let mut rng = Rng(seed());
    let mut model = Model::new(100, 30);
    let named = NamedPrimary::builder(&tk)
        .zone(ZONE, &model.text())
        .start(&tmp);
    let port = named.port();
    let limits = Limits::default();

    assert_eq!(
        query_soa(addr(port), &origin(), Some(&key), &limits).await,
        Ok(100)
    );
    let v1 = axfr(port, &key).await;
    assert_eq!(norm(&v1), norm(&model.zone()));
    assert_eq!(
        transfer(addr(port), &origin(), Some(&key), Some(&v1), false, &limits).await,
        Ok(Fetched::UpToDate { serial: 100 })
    );
    let mut cur = v1;
    for round in 0..4 {
        model.edit(&mut rng, 4 + round * 3);
        named.update_zone(ZONE, &model.text());
        named
            .wait_serial(ZONE, model.serial, Duration::from_secs(15))
            .unwrap();
        assert_eq!(
            query_soa(addr(port), &origin(), Some(&key), &limits).await,
            Ok(model.serial)
        );
        cur = ixfr_round(port, &key, &cur, &model).await.0;
    }
    // two versions at once
    for _ in 0..2 {
        model.edit(&mut rng, 4);
        named.update_zone(ZONE, &model.text());
        named
            .wait_serial(ZONE, model.serial, Duration::from_secs(15))
            .unwrap();
    }
    let (_, n) = ixfr_round(port, &key, &cur, &model).await;
    eprintln!("named sent {n} difference sequence(s) for two versions");
    // wrong secret, no key
    let wrong = Arc::new(Key::new(
        key.name.clone(),
        TsigAlgorithm::HmacSha256,
        b"not the secret at all, not at all",
    ));
    let e = transfer(addr(port), &origin(), Some(&wrong), None, false, &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Tsig(_)), "{e}");
    let e = transfer(addr(port), &origin(), None, None, false, &limits)
        .await
        .unwrap_err();
    assert!(matches!(e, XfrError::Refused { .. }), "{e}");
    let log = named.proc().log();
    assert!(
        log.contains("IXFR"),
        "named should log IXFR:\n{}",
        named.proc().log_tail(40)
    );
}
