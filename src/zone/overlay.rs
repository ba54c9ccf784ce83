//! The apex overlay (DESIGN.md property 6): records injected by RFC 2136 UPDATE for a
//! multi-signer setup (RFC 8901 model 2), kept apart from the upstream data.
//!
//! ```text
//!  upstream (AXFR/IXFR/file) ──▶ unsigned version ──┐
//!                                                    ├─ merge at signing time ─▶ signer ─▶ served
//!  UPDATE (TSIG) ──▶ overlay.json (temp+fsync+rename)┘
//! ```
//!
//! * Every injected record carries its origin: the TSIG key that added it, the client address,
//!   and when ([`Injected`]).
//! * The overlay lives in `state-dir/zones/NAME/overlay.json`, written with temp file + fsync +
//!   rename before the UPDATE is answered, and read back at start. A file that cannot be read is
//!   an error that stops signing (the last signed version keeps being served): signing without
//!   the other signers' keys would break validation for resolvers that reach them.
//! * It is merged into a **copy** of the unsigned zone just before signing ([`Overlay::merge`]):
//!   foreign DNSKEYs join the DNSKEY RRset (signed by signet's KSK/CSK, never used to sign),
//!   injected CDS/CDNSKEY are united with signet's own, NS with the upstream NS set, CSYNC is
//!   published as given. The unsigned copy kept in `state-dir` never contains them, a new
//!   upstream version cannot delete them, and the key state machine never sees them (so it can
//!   never remove a foreign key).

use crate::dns::rdata;
use crate::dns::rtype::{self, t};
use crate::keystore::{KeyError, SigningKey};
use crate::signer::ActiveKey;
use crate::zone::data::{RRset, Zone};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// The overlay file in the zone's state directory.
pub const OVERLAY_FILE: &str = "overlay.json";

/// Version of the overlay file format.
const FORMAT_VERSION: u32 = 1;

/// One injected record (always at the zone apex).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Injected {
    /// RR type number.
    pub rtype: u16,
    /// TTL as sent (the merged RRset takes signet's TTL for DNSKEY/CDS/CDNSKEY and upstream's
    /// for NS: one TTL per RRset, RFC 2181 §5.2).
    pub ttl: u32,
    /// RDATA, uncompressed wire format, base64.
    pub rdata: String,
    /// Presentation form, for people reading the file (not read back).
    #[serde(default)]
    pub text: String,
    /// The TSIG key that added it.
    pub key: String,
    /// The client address it came from.
    #[serde(default)]
    pub source: String,
    /// Unix time it was added.
    pub added: u64,
}

impl Injected {
    pub fn new(rtype: u16, ttl: u32, rdata: &[u8], key: &str, source: &str, now: u64) -> Injected {
        Injected {
            rtype,
            ttl,
            rdata: data_encoding::BASE64.encode(rdata),
            text: rdata::to_text(rtype, rdata),
            key: key.to_string(),
            source: source.to_string(),
            added: now,
        }
    }

    /// The RDATA in wire form (validated when the overlay is loaded).
    pub fn wire(&self) -> Vec<u8> {
        data_encoding::BASE64
            .decode(self.rdata.as_bytes())
            .unwrap_or_default()
    }

    /// Whether this is the record `rtype`/`rd` (RDATA compared in canonical form, RFC 4034
    /// §6.2, so case in embedded names does not matter).
    pub fn is(&self, rtype: u16, rd: &[u8]) -> bool {
        self.rtype == rtype && same_rdata(rtype, &self.wire(), rd)
    }

    /// Key tag of an injected DNSKEY.
    pub fn key_tag(&self) -> Option<u16> {
        (self.rtype == t::DNSKEY).then(|| crate::keystore::key_tag(&self.wire()))
    }
}

/// RDATA equality in canonical form.
pub fn same_rdata(rtype: u16, a: &[u8], b: &[u8]) -> bool {
    rdata::canonical(rtype, a) == rdata::canonical(rtype, b)
}

#[derive(Serialize, Deserialize)]
struct OverlayFile {
    version: u32,
    records: Vec<Injected>,
}

/// The injected records of one zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    pub records: Vec<Injected>,
}

impl Overlay {
    /// Reads `dir/overlay.json`; a missing file is an empty overlay. A file that exists but
    /// cannot be used is an error naming the file and what to do.
    pub fn load(dir: &Path) -> Result<Overlay, String> {
        let path = dir.join(OVERLAY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Overlay::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let bad = |why: String| {
            format!(
                "{}: {why}; fix or remove the file (removing it drops every injected record)",
                path.display()
            )
        };
        let f: OverlayFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if f.version != FORMAT_VERSION {
            return Err(bad(format!("unknown format version {}", f.version)));
        }
        for r in &f.records {
            let wire = data_encoding::BASE64
                .decode(r.rdata.as_bytes())
                .map_err(|e| bad(format!("record {:?}: bad base64: {e}", r.text)))?;
            rdata::read_wire(r.rtype, &wire, 0, wire.len()).map_err(|e| {
                bad(format!(
                    "record {} {:?}: {e}",
                    rtype::type_name(r.rtype),
                    r.text
                ))
            })?;
        }
        Ok(Overlay { records: f.records })
    }

    /// Writes `dir/overlay.json` crash-safely (temp file + fsync + rename).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let f = OverlayFile {
            version: FORMAT_VERSION,
            records: self.records.clone(),
        };
        let json = serde_json::to_vec_pretty(&f).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        crate::keystore::write_atomic(dir, OVERLAY_FILE, &json, 0o644)
            .map_err(|e| format!("cannot store the overlay: {e}"))
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn contains(&self, rtype: u16, rd: &[u8]) -> bool {
        self.records.iter().any(|r| r.is(rtype, rd))
    }

    /// Adds a record unless it is already there; returns whether it was added.
    pub fn add(&mut self, rec: Injected) -> bool {
        if self.contains(rec.rtype, &rec.wire()) {
            return false;
        }
        self.records.push(rec);
        true
    }

    /// Removes one record (RFC 2136 §2.5.4); returns whether it was there.
    pub fn remove_rr(&mut self, rtype: u16, rd: &[u8]) -> bool {
        let before = self.records.len();
        self.records.retain(|r| !r.is(rtype, rd));
        before != self.records.len()
    }

    /// Removes every injected record of `rtype` (RFC 2136 §2.5.2); returns how many.
    pub fn remove_type(&mut self, rtype: u16) -> usize {
        let before = self.records.len();
        self.records.retain(|r| r.rtype != rtype);
        before - self.records.len()
    }

    /// Removes every injected record (RFC 2136 §2.5.3); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.records.len();
        self.records.clear();
        n
    }

    /// The injected records of one type.
    pub fn of_type(&self, rtype: u16) -> impl Iterator<Item = &Injected> {
        self.records.iter().filter(move |r| r.rtype == rtype)
    }

    /// The foreign DNSKEYs.
    pub fn foreign_keys(&self) -> impl Iterator<Item = &Injected> {
        self.of_type(t::DNSKEY)
    }

    /// Merges the overlay into `zone` (a copy of the unsigned zone about to be signed, with
    /// signet's own CDS/CDNSKEY already at the apex) and `active` (signet's keys for this
    /// signing): see the module documentation. `dnskey_ttl` is the TTL of the DNSKEY, CDS and
    /// CDNSKEY RRsets. When signet's own CDS is the RFC 8078 DELETE record, injected CDS and
    /// CDNSKEY are left out: the zone is going insecure and a DELETE beside real records would
    /// contradict itself.
    pub fn merge(&self, zone: &mut Zone, active: &mut Vec<ActiveKey>, dnskey_ttl: u32) {
        if self.records.is_empty() {
            return;
        }
        for r in self.foreign_keys() {
            let rd = r.wire();
            if rd.len() < 4 || active.iter().any(|a| same_rdata(t::DNSKEY, &a.dnskey, &rd)) {
                continue;
            }
            let tag = crate::keystore::key_tag(&rd);
            active.push(ActiveKey {
                key: Arc::new(ForeignKey {
                    algorithm: rd[3],
                    public_key: rd[4..].to_vec(),
                }),
                dnskey: rd,
                tag,
                signs_keys: false,
                signs_zone: false,
                publish: true,
            });
        }
        let origin = zone.origin.clone();
        let ns_ttl = zone
            .nodes
            .get(&origin)
            .and_then(|n| n.get(t::NS))
            .map(|s| s.ttl);
        let apex = zone.nodes.entry(origin).or_default();
        let deleting = apex.get(t::CDS).is_some_and(|s| {
            s.rdatas
                .iter()
                .any(|r| r[..] == crate::kasp::CDS_DELETE_RDATA[..])
        });
        for rtype in [t::CDS, t::CDNSKEY, t::NS, t::CSYNC] {
            if deleting && matches!(rtype, t::CDS | t::CDNSKEY) {
                continue;
            }
            let injected: Vec<&Injected> = self.of_type(rtype).collect();
            let Some(first) = injected.first() else {
                continue;
            };
            let mut set = apex.get(rtype).cloned().unwrap_or(RRset {
                rtype,
                ttl: match rtype {
                    t::CDS | t::CDNSKEY => dnskey_ttl,
                    t::NS => ns_ttl.unwrap_or(first.ttl),
                    _ => first.ttl,
                },
                rdatas: Vec::new(),
            });
            for r in injected {
                let rd = r.wire();
                if !set.rdatas.iter().any(|x| same_rdata(rtype, x, &rd)) {
                    set.rdatas.push(rd);
                }
            }
            apex.put(set);
        }
    }
}

/// A foreign DNSKEY taking part in signing only as a published key: signet has no private key
/// for it and never signs with it (`signs_keys` and `signs_zone` are false).
struct ForeignKey {
    algorithm: u8,
    public_key: Vec<u8>,
}

impl SigningKey for ForeignKey {
    fn algorithm(&self) -> u8 {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, _data: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::Unsupported(
            "a foreign DNSKEY (injected by UPDATE) has no private key here".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::name::Name;
    use crate::zone::data::Node;

    fn dnskey(flags: u16, seed: u8) -> Vec<u8> {
        crate::keystore::dnskey_rdata(flags, 13, &[seed; 64])
    }

    #[test]
    fn persist_roundtrip_and_bad_file() {
        let dir = std::env::temp_dir().join(format!("signet-overlay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(Overlay::load(&dir).unwrap(), Overlay::default());
        let mut o = Overlay::default();
        assert!(o.add(Injected::new(
            t::DNSKEY,
            3600,
            &dnskey(256, 1),
            "ctl.",
            "127.0.0.1",
            5
        )));
        assert!(!o.add(Injected::new(
            t::DNSKEY,
            60,
            &dnskey(256, 1),
            "ctl.",
            "127.0.0.1",
            6
        )));
        o.save(&dir).unwrap();
        assert_eq!(Overlay::load(&dir).unwrap(), o);
        std::fs::write(dir.join(OVERLAY_FILE), b"{\"version\":1,\"records\":[{").unwrap();
        let e = Overlay::load(&dir).unwrap_err();
        assert!(e.contains("overlay.json"), "{e}");
        // RDATA that is not a DNSKEY
        std::fs::write(
            dir.join(OVERLAY_FILE),
            br#"{"version":1,"records":[{"rtype":48,"ttl":1,"rdata":"AQ==","key":"k","added":1}]}"#,
        )
        .unwrap();
        assert!(Overlay::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn merge_unites_and_never_signs_with_foreign_keys() {
        let origin = Name::parse("example.", None).unwrap();
        let mut zone = Zone::new(origin.clone());
        let mut apex = Node::default();
        apex.put(RRset {
            rtype: t::NS,
            ttl: 300,
            rdatas: vec![Name::parse("ns1.example.", None)
                .unwrap()
                .as_wire()
                .to_vec()],
        });
        apex.put(RRset {
            rtype: t::CDS,
            ttl: 3600,
            rdatas: vec![vec![0, 1, 13, 2, 9]],
        });
        zone.nodes.insert(origin.clone(), apex);
        let mut o = Overlay::default();
        o.add(Injected::new(t::DNSKEY, 1, &dnskey(256, 7), "k", "", 0));
        o.add(Injected::new(t::CDS, 1, &[0, 2, 13, 2, 8], "k", "", 0));
        o.add(Injected::new(
            t::NS,
            1,
            Name::parse("ns.other.", None).unwrap().as_wire(),
            "k",
            "",
            0,
        ));
        let mut active = Vec::new();
        o.merge(&mut zone, &mut active, 3600);
        assert_eq!(active.len(), 1);
        assert!(active[0].publish && !active[0].signs_keys && !active[0].signs_zone);
        assert!(active[0].key.sign(b"x").is_err());
        let apex = &zone.nodes[&origin];
        assert_eq!(apex.get(t::CDS).unwrap().rdatas.len(), 2);
        assert_eq!(apex.get(t::CDS).unwrap().ttl, 3600);
        assert_eq!(apex.get(t::NS).unwrap().rdatas.len(), 2);
        assert_eq!(apex.get(t::NS).unwrap().ttl, 300);
    }
}
