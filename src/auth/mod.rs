//! Authentication of DNS messages: TSIG (RFC 8945) and address/key ACLs.
//!
//! One path for every transport and every message kind (DESIGN.md property 8): queries,
//! SOA/IXFR/AXFR out, NOTIFY in and out, and later UPDATE and the transfer client all call
//! [`tsig::verify_request`] / [`tsig::ResponseSigner`] / [`tsig::ResponseVerifier`] and
//! [`allowed`]. The vulnerability classes this module answers (research/reliability_style.md
//! B4): TSIG forgery and bypass (CVE-2017-3142/3143, Knot CVE-2017-11104: the time window is
//! checked on every message, the MAC is compared in constant time by `ring::hmac::verify`, an
//! unknown algorithm is BADKEY and never a panic), and transfers to unauthorised clients (an
//! empty ACL denies).
//!
//! ## ACL semantics
//!
//! An ACL is a list of alternatives, as in BIND's `allow-transfer { 192.0.2.10; key xfr; }`:
//! a request is allowed when **any** entry matches, an address entry by the source address
//! prefix, a `key:NAME` entry when the request carried a valid TSIG signature made with that key.
//! An empty list allows nobody (SPEC.md: "default: nobody").

pub mod tsig;

use crate::config::{AclEntry, TsigAlgorithm};
use crate::dns::name::Name;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A TSIG key ready for use: name, algorithm and the HMAC key.
pub struct Key {
    /// The key name as it appears as the TSIG owner (compared case-insensitively).
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    hmac: ring::hmac::Key,
}

/// Never print a secret.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl Key {
    pub fn new(name: Name, algorithm: TsigAlgorithm, secret: &[u8]) -> Key {
        let alg = match algorithm {
            TsigAlgorithm::HmacSha256 => ring::hmac::HMAC_SHA256,
            TsigAlgorithm::HmacSha384 => ring::hmac::HMAC_SHA384,
            TsigAlgorithm::HmacSha512 => ring::hmac::HMAC_SHA512,
        };
        Key {
            name,
            algorithm,
            hmac: ring::hmac::Key::new(alg, secret),
        }
    }

    /// From a `[tsig.NAME]` table of the configuration.
    pub fn from_config(k: &crate::config::TsigKey) -> Result<Key, String> {
        let name = Name::parse(&k.name, Some(&Name::root()))
            .map_err(|e| format!("TSIG key name {:?}: {e}", k.name))?;
        Ok(Key::new(name, k.algorithm, &k.secret))
    }

    /// The algorithm name as a DNS name (`hmac-sha256.`).
    pub fn algorithm_name(&self) -> Name {
        // the three wire names are valid constant names
        Name::parse(self.algorithm.wire_name(), None).unwrap_or_else(|_| Name::root())
    }

    /// Full MAC length of the algorithm, in octets.
    pub fn mac_len(&self) -> usize {
        self.hmac.algorithm().digest_algorithm().output_len()
    }

    pub(crate) fn sign(&self, data: &[u8]) -> Vec<u8> {
        ring::hmac::sign(&self.hmac, data).as_ref().to_vec()
    }

    /// Constant-time check of a full-length MAC.
    pub(crate) fn verify(&self, data: &[u8], mac: &[u8]) -> bool {
        ring::hmac::verify(&self.hmac, data, mac).is_ok()
    }
}

/// The TSIG keys the server knows, by name.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    keys: HashMap<Name, Arc<Key>>,
}

impl Keyring {
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// All `[tsig.*]` keys of a configuration.
    pub fn from_config<'a, I: IntoIterator<Item = &'a crate::config::TsigKey>>(
        keys: I,
    ) -> Result<Keyring, String> {
        let mut ring = Keyring::new();
        for k in keys {
            ring.insert(Key::from_config(k)?);
        }
        Ok(ring)
    }

    pub fn insert(&mut self, key: Key) {
        self.keys.insert(key.name.clone(), Arc::new(key));
    }

    pub fn get(&self, name: &Name) -> Option<&Arc<Key>> {
        self.keys.get(name)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Whether a request from `src`, signed with the verified key `key` (if any), passes `acl`.
/// See the module documentation: any matching entry allows, an empty ACL denies.
pub fn allowed(acl: &[AclEntry], src: IpAddr, key: Option<&Name>) -> bool {
    acl.iter().any(|entry| match entry {
        AclEntry::Addr(..) => entry.matches_addr(src),
        AclEntry::Key(k) => match (key, Name::parse(k, Some(&Name::root()))) {
            (Some(used), Ok(wanted)) => *used == wanted,
            _ => false,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_any_entry_matches_empty_denies() {
        let k = Name::parse("xfr.", None).unwrap();
        let other = Name::parse("other.", None).unwrap();
        let ip4: IpAddr = "192.0.2.10".parse().unwrap();
        let ip4b: IpAddr = "192.0.2.11".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.10".parse().unwrap();
        assert!(!allowed(&[], ip4, Some(&k)));
        let acl = vec![
            AclEntry::Addr("192.0.2.10".parse().unwrap(), 32),
            AclEntry::Key("xfr.".into()),
        ];
        assert!(allowed(&acl, ip4, None));
        assert!(allowed(&acl, mapped, None));
        assert!(!allowed(&acl, ip4b, None));
        assert!(allowed(&acl, ip4b, Some(&k)));
        assert!(allowed(
            &acl,
            ip4b,
            Some(&Name::parse("XFR.", None).unwrap())
        ));
        assert!(!allowed(&acl, ip4b, Some(&other)));
        let net = vec![AclEntry::Addr("192.0.2.0".parse().unwrap(), 24)];
        assert!(allowed(&net, ip4b, None));
        assert!(!allowed(&net, "198.51.100.1".parse().unwrap(), None));
    }
}
