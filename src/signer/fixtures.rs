//! Deterministic pieces for tests and benchmarks of the signer: a xorshift generator (no
//! random-number crate) and Ed25519 keys made from a seed (Ed25519 signatures are
//! deterministic, so two signings of the same data compare equal).

use super::{ActiveKey, SignError};
use crate::keystore::{dnskey_rdata, key_tag, pkcs8, RingSigningKey, SigningKey};
use std::sync::Arc;

/// xorshift64: reproducible "random" zones and edits. Not for anything secret.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// An Ed25519 key made from `seed`, published, with DNSKEY `flags` (257 KSK/CSK, 256 ZSK) and
/// the given roles.
pub fn ed25519_key(
    seed: u8,
    flags: u16,
    signs_keys: bool,
    signs_zone: bool,
) -> Result<ActiveKey, SignError> {
    let der = pkcs8::ed25519_pkcs8(&[seed; 32]);
    let k = RingSigningKey::from_der(15, &der).map_err(|e| SignError::Key(e.to_string()))?;
    let dnskey = dnskey_rdata(flags, 15, k.public_key());
    Ok(ActiveKey {
        tag: key_tag(&dnskey),
        dnskey,
        key: Arc::new(k),
        signs_keys,
        signs_zone,
        publish: true,
    })
}
