//! The [`SigningKey`] trait and its ring implementation for soft keys.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaEncoding, RsaKeyPair};

use super::dnskey::{
    rsa_public_key_parts, rsa_public_key_rfc3110, ALG_ECDSAP256SHA256, ALG_ECDSAP384SHA384,
    ALG_ED25519, ALG_RSASHA256, ALG_RSASHA512,
};
use super::pkcs8::rsa_pkcs8_from_pkcs1;
use super::KeyError;

/// A private key that makes DNSSEC signatures. Shared by many signing threads at once.
pub trait SigningKey: Send + Sync {
    /// The DNSSEC algorithm number (8, 10, 13, 14, 15).
    fn algorithm(&self) -> u8;
    /// The DNSKEY public key field: `X||Y` for ECDSA (64/96 octets), 32 octets for Ed25519,
    /// RFC 3110 format for RSA.
    fn public_key(&self) -> &[u8];
    /// Signs `data` (the RRSIG signing input) and returns the signature in DNSSEC wire format:
    /// fixed-width `r||s` for ECDSA (RFC 6605), 64 octets for Ed25519, PKCS#1 v1.5 for RSA.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError>;
}

impl fmt::Debug for dyn SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("public_key_len", &self.public_key().len())
            .finish_non_exhaustive()
    }
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
}

/// A soft key held by ring. ring key pairs are `Sync`; signing takes `&self`, so one key can be
/// used from many threads at once without locking.
pub struct RingSigningKey {
    algorithm: u8,
    public_key: Vec<u8>,
    inner: Inner,
    rng: SystemRandom,
}

impl fmt::Debug for RingSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingSigningKey")
            .field("algorithm", &self.algorithm)
            .field("public_key_len", &self.public_key.len())
            .finish_non_exhaustive()
    }
}

/// Whether signet can sign with `algorithm` (8, 10, 13, 14, 15).
pub fn is_supported_algorithm(algorithm: u8) -> bool {
    matches!(
        algorithm,
        ALG_RSASHA256 | ALG_RSASHA512 | ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384 | ALG_ED25519
    )
}

fn ecdsa_signing_alg(algorithm: u8) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match algorithm {
        ALG_ECDSAP256SHA256 => Some(&signature::ECDSA_P256_SHA256_FIXED_SIGNING),
        ALG_ECDSAP384SHA384 => Some(&signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        _ => None,
    }
}

fn unsupported(algorithm: u8) -> KeyError {
    KeyError::Unsupported(format!(
        "DNSSEC algorithm {algorithm} is not supported (supported: 8, 10, 13, 14, 15)"
    ))
}

/// Generates a new private key with ring and returns its PKCS#8 DER (ECDSA P-256/P-384, Ed25519).
/// RSA generation is refused: RSA keys can only be imported.
pub fn generate_pkcs8(algorithm: u8) -> Result<Vec<u8>, KeyError> {
    let rng = SystemRandom::new();
    let doc = match algorithm {
        ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384 => {
            let alg = ecdsa_signing_alg(algorithm).ok_or_else(|| unsupported(algorithm))?;
            EcdsaKeyPair::generate_pkcs8(alg, &rng)
        }
        ALG_ED25519 => Ed25519KeyPair::generate_pkcs8(&rng),
        ALG_RSASHA256 | ALG_RSASHA512 => {
            return Err(KeyError::Unsupported(format!(
                "cannot generate keys for algorithm {algorithm}: RSA keys can only be imported \
                 (PKCS#8 or PKCS#1 DER, at least 2048 bits); use algorithm 13, 14 or 15"
            )))
        }
        _ => return Err(unsupported(algorithm)),
    };
    doc.map(|d| d.as_ref().to_vec())
        .map_err(|_| KeyError::Crypto(format!("key generation failed for algorithm {algorithm}")))
}

impl RingSigningKey {
    /// Loads a private key for `algorithm` from PKCS#8 DER (any algorithm; Ed25519 v1 documents as
    /// OpenSSL writes them are accepted) or, for RSA, from PKCS#1 `RSAPrivateKey` DER.
    /// The error text says why ring refused the key; the caller adds the file name.
    pub fn from_der(algorithm: u8, der: &[u8]) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let rejected =
            |what: &str, e: ring::error::KeyRejected| KeyError::Rejected(format!("{what}: {e}"));
        let inner =
            match algorithm {
                ALG_ECDSAP256SHA256 | ALG_ECDSAP384SHA384 => {
                    let alg = ecdsa_signing_alg(algorithm).ok_or_else(|| unsupported(algorithm))?;
                    let curve = if algorithm == ALG_ECDSAP256SHA256 {
                        "P-256"
                    } else {
                        "P-384"
                    };
                    Inner::Ecdsa(EcdsaKeyPair::from_pkcs8(alg, der, &rng).map_err(|e| {
                        rejected(&format!("not a PKCS#8 ECDSA {curve} private key"), e)
                    })?)
                }
                ALG_ED25519 => Inner::Ed25519(
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                        .map_err(|e| rejected("not a PKCS#8 Ed25519 private key", e))?,
                ),
                ALG_RSASHA256 | ALG_RSASHA512 => {
                    let kp = match RsaKeyPair::from_pkcs8(der) {
                        Ok(kp) => kp,
                        Err(e8) => RsaKeyPair::from_der(der).map_err(|e1| {
                            KeyError::Rejected(format!(
                                "not an RSA private key ring accepts (needs 2048 to 8192 bits): \
                             as PKCS#8: {e8}; as PKCS#1: {e1}"
                            ))
                        })?,
                    };
                    let enc: &'static dyn RsaEncoding = if algorithm == ALG_RSASHA256 {
                        &signature::RSA_PKCS1_SHA256
                    } else {
                        &signature::RSA_PKCS1_SHA512
                    };
                    Inner::Rsa(kp, enc)
                }
                _ => return Err(unsupported(algorithm)),
            };
        let public_key = match &inner {
            // Uncompressed point 0x04||X||Y; DNSKEY carries X||Y (RFC 6605 §4).
            Inner::Ecdsa(kp) => kp
                .public_key()
                .as_ref()
                .get(1..)
                .unwrap_or_default()
                .to_vec(),
            Inner::Ed25519(kp) => kp.public_key().as_ref().to_vec(),
            Inner::Rsa(kp, _) => {
                let c: ring::rsa::PublicKeyComponents<Vec<u8>> = kp.public().into();
                rsa_public_key_rfc3110(&c.e, &c.n)
            }
        };
        Ok(RingSigningKey {
            algorithm,
            public_key,
            inner,
            rng,
        })
    }
}

impl SigningKey for RingSigningKey {
    fn algorithm(&self) -> u8 {
        self.algorithm
    }

    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = || KeyError::Crypto(format!("signing failed (algorithm {})", self.algorithm));
        match &self.inner {
            Inner::Ecdsa(kp) => kp
                .sign(&self.rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
            Inner::Ed25519(kp) => Ok(kp.sign(data).as_ref().to_vec()),
            Inner::Rsa(kp, enc) => {
                let mut sig = vec![0u8; kp.public().modulus_len()];
                kp.sign(*enc, &self.rng, data, &mut sig)
                    .map_err(|_| failed())?;
                Ok(sig)
            }
        }
    }
}

/// Checks a DNSSEC signature against a DNSKEY public key field with ring. RSA keys from 1024 bits
/// are accepted for verification (legacy keys of other signers); signing needs 2048.
pub fn verify_signature(algorithm: u8, public_key: &[u8], data: &[u8], sig: &[u8]) -> bool {
    let ecdsa = |alg: &'static signature::EcdsaVerificationAlgorithm| {
        let mut point = Vec::with_capacity(public_key.len() + 1);
        point.push(0x04);
        point.extend_from_slice(public_key);
        signature::UnparsedPublicKey::new(alg, point)
            .verify(data, sig)
            .is_ok()
    };
    let rsa = |params: &'static signature::RsaParameters| match rsa_public_key_parts(public_key) {
        Some((e, n)) => signature::RsaPublicKeyComponents { n, e }
            .verify(params, data, sig)
            .is_ok(),
        None => false,
    };
    match algorithm {
        ALG_ECDSAP256SHA256 if public_key.len() == 64 => ecdsa(&signature::ECDSA_P256_SHA256_FIXED),
        ALG_ECDSAP384SHA384 if public_key.len() == 96 => ecdsa(&signature::ECDSA_P384_SHA384_FIXED),
        ALG_ED25519 => signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(data, sig)
            .is_ok(),
        ALG_RSASHA256 => rsa(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
        ALG_RSASHA512 => rsa(&signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
        _ => false,
    }
}

/// Loads PKCS#8 (or, for RSA, PKCS#1) DER and returns the key with its canonical PKCS#8 form for
/// storage: PKCS#1 input is wrapped in a PKCS#8 envelope, anything else is kept as given.
pub(crate) fn load_for_import(
    algorithm: u8,
    der: &[u8],
) -> Result<(RingSigningKey, Vec<u8>), KeyError> {
    let key = RingSigningKey::from_der(algorithm, der)?;
    let stored = if matches!(algorithm, ALG_RSASHA256 | ALG_RSASHA512)
        && RsaKeyPair::from_pkcs8(der).is_err()
    {
        let wrapped = rsa_pkcs8_from_pkcs1(der);
        RsaKeyPair::from_pkcs8(&wrapped).map_err(|e| {
            KeyError::Rejected(format!("PKCS#1 key could not be wrapped as PKCS#8: {e}"))
        })?;
        wrapped
    } else {
        der.to_vec()
    };
    Ok((key, stored))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::testkeys::*;
    use super::*;
    use data_encoding::{BASE64, HEXLOWER};
    use std::sync::Arc;

    /// Verification straight with ring's primitives, independent of `verify_signature`.
    pub(crate) fn ring_verify(alg: u8, pk: &[u8], data: &[u8], sig: &[u8]) -> bool {
        match alg {
            13 | 14 => {
                let mut point = vec![0x04];
                point.extend_from_slice(pk);
                let a: &signature::EcdsaVerificationAlgorithm = if alg == 13 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                signature::UnparsedPublicKey::new(a, point)
                    .verify(data, sig)
                    .is_ok()
            }
            15 => signature::UnparsedPublicKey::new(&signature::ED25519, pk)
                .verify(data, sig)
                .is_ok(),
            8 | 10 => {
                // RFC 3110 with a one-octet exponent length
                let elen = pk[0] as usize;
                let c = signature::RsaPublicKeyComponents {
                    e: &pk[1..1 + elen],
                    n: &pk[1 + elen..],
                };
                let p: &signature::RsaParameters = if alg == 8 {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA512
                };
                c.verify(p, data, sig).is_ok()
            }
            _ => false,
        }
    }

    fn check_sign(key: &dyn SigningKey, sig_len: usize) {
        let msg = b"signet test signing input";
        let sig = key.sign(msg).unwrap();
        assert_eq!(sig.len(), sig_len);
        assert!(ring_verify(key.algorithm(), key.public_key(), msg, &sig));
        assert!(verify_signature(
            key.algorithm(),
            key.public_key(),
            msg,
            &sig
        ));
        assert!(!ring_verify(
            key.algorithm(),
            key.public_key(),
            b"other",
            &sig
        ));
        assert!(!verify_signature(
            key.algorithm(),
            key.public_key(),
            b"other",
            &sig
        ));
    }

    #[test]
    fn generate_and_sign() {
        for (alg, pk_len, sig_len) in [(13u8, 64, 64), (14, 96, 96), (15, 32, 64)] {
            let der = generate_pkcs8(alg).unwrap();
            let key = RingSigningKey::from_der(alg, &der).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.public_key().len(), pk_len);
            check_sign(&key, sig_len);
        }
    }

    #[test]
    fn rsa_generation_refused() {
        for alg in [8, 10] {
            let e = generate_pkcs8(alg).unwrap_err().to_string();
            assert!(e.contains("RSA keys can only be imported"), "{e}");
        }
        assert!(generate_pkcs8(5)
            .unwrap_err()
            .to_string()
            .contains("not supported"));
    }

    #[test]
    fn rsa_import_pkcs8_and_pkcs1() {
        let p8 = BASE64.decode(RSA2048_PKCS8.as_bytes()).unwrap();
        let p1 = BASE64.decode(RSA2048_PKCS1.as_bytes()).unwrap();
        for alg in [8u8, 10] {
            for der in [&p8, &p1] {
                let (key, stored) = load_for_import(alg, der).unwrap();
                assert_eq!(stored, p8, "stored form is PKCS#8");
                assert_eq!(key.public_key().len(), 4 + 256);
                assert_eq!(&key.public_key()[..6], &[3, 1, 0, 1, 0xb3, 0xf7]);
                check_sign(&key, 256);
            }
        }
    }

    #[test]
    fn openssl_keys_load() {
        let ed = BASE64.decode(ED25519_PKCS8_V1.as_bytes()).unwrap();
        let key = RingSigningKey::from_der(15, &ed).unwrap();
        assert_eq!(HEXLOWER.encode(key.public_key()), ED25519_PUB_HEX);
        check_sign(&key, 64);
        let p256 = BASE64.decode(P256_PKCS8.as_bytes()).unwrap();
        let key = RingSigningKey::from_der(13, &p256).unwrap();
        assert_eq!(HEXLOWER.encode(key.public_key()), P256_Q_HEX[2..]);
        check_sign(&key, 64);
        let p384 = BASE64.decode(P384_PKCS8.as_bytes()).unwrap();
        let key = RingSigningKey::from_der(14, &p384).unwrap();
        assert_eq!(HEXLOWER.encode(key.public_key()), P384_Q_HEX[2..]);
        check_sign(&key, 96);
    }

    #[test]
    fn wrong_algorithm_or_garbage_rejected() {
        let p384 = BASE64.decode(P384_PKCS8.as_bytes()).unwrap();
        let e = RingSigningKey::from_der(13, &p384).unwrap_err().to_string();
        assert!(e.contains("P-256"), "{e}");
        assert!(RingSigningKey::from_der(15, &p384).is_err());
        assert!(RingSigningKey::from_der(8, &p384).is_err());
        assert!(RingSigningKey::from_der(13, b"garbage").is_err());
        assert!(RingSigningKey::from_der(7, b"garbage")
            .unwrap_err()
            .to_string()
            .contains("not supported"));
    }

    #[test]
    fn concurrent_signing() {
        let key: Arc<dyn SigningKey> =
            Arc::new(RingSigningKey::from_der(13, &generate_pkcs8(13).unwrap()).unwrap());
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let key = Arc::clone(&key);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        let msg = format!("thread {t} message {i}");
                        let sig = key.sign(msg.as_bytes()).unwrap();
                        assert!(ring_verify(13, key.public_key(), msg.as_bytes(), &sig));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn verify_rejects_malformed_keys() {
        assert!(!verify_signature(13, &[0; 10], b"x", &[0; 64]));
        assert!(!verify_signature(8, &[], b"x", &[0; 64]));
        assert!(!verify_signature(99, &[0; 64], b"x", &[0; 64]));
    }
}
