//! Minimal DER builders that turn raw private key components into PKCS#8 documents ring loads.
//!
//! They serve importers: a BIND `.private` file carries the ECDSA scalar, the Ed25519 seed, or the
//! RSA CRT components, and a PKCS#1 `RSAPrivateKey` has no algorithm identifier. Each builder's
//! output is what OpenSSL's `pkcs8 -topk8 -nocrypt` writes for the same key.

use super::dnskey::{strip_leading_zeros, ALG_ECDSAP256SHA256, ALG_ECDSAP384SHA384};

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_1: u8 = 0xa1;

/// rsaEncryption, 1.2.840.113549.1.1.1
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1, 1.2.840.10045.3.1.7
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1, 1.3.132.0.34
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// id-Ed25519, 1.3.101.112
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(content.len() + 6);
    v.push(tag);
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let bytes = (n as u64).to_be_bytes();
        let len = strip_leading_zeros(&bytes);
        v.push(0x80 | len.len() as u8);
        v.extend_from_slice(len);
    }
    v.extend_from_slice(content);
    v
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(TAG_SEQUENCE, &parts.concat())
}

/// A DER INTEGER holding a non-negative big-endian value.
fn uint(be: &[u8]) -> Vec<u8> {
    let b = strip_leading_zeros(be);
    if b.is_empty() {
        return tlv(TAG_INTEGER, &[0]);
    }
    if b[0] & 0x80 != 0 {
        let mut c = Vec::with_capacity(b.len() + 1);
        c.push(0);
        c.extend_from_slice(b);
        tlv(TAG_INTEGER, &c)
    } else {
        tlv(TAG_INTEGER, b)
    }
}

/// Wraps a PKCS#1 `RSAPrivateKey` DER in a PKCS#8 `PrivateKeyInfo` (rsaEncryption, NULL params).
pub fn rsa_pkcs8_from_pkcs1(pkcs1_der: &[u8]) -> Vec<u8> {
    seq(&[
        &uint(&[0]),
        &seq(&[&tlv(TAG_OID, OID_RSA_ENCRYPTION), &tlv(TAG_NULL, &[])]),
        &tlv(TAG_OCTET_STRING, pkcs1_der),
    ])
}

/// The RSA private key components, named as in BIND's `.private` files. Big-endian, unsigned.
#[derive(Clone, Copy)]
pub struct RsaPrivateComponents<'a> {
    pub modulus: &'a [u8],
    pub public_exponent: &'a [u8],
    pub private_exponent: &'a [u8],
    pub prime1: &'a [u8],
    pub prime2: &'a [u8],
    pub exponent1: &'a [u8],
    pub exponent2: &'a [u8],
    pub coefficient: &'a [u8],
}

impl std::fmt::Debug for RsaPrivateComponents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateComponents")
            .field("modulus_len", &self.modulus.len())
            .finish_non_exhaustive()
    }
}

/// A PKCS#1 `RSAPrivateKey` (two-prime, version 0) from its components.
pub fn rsa_pkcs1_from_components(c: &RsaPrivateComponents<'_>) -> Vec<u8> {
    seq(&[
        &uint(&[0]),
        &uint(c.modulus),
        &uint(c.public_exponent),
        &uint(c.private_exponent),
        &uint(c.prime1),
        &uint(c.prime2),
        &uint(c.exponent1),
        &uint(c.exponent2),
        &uint(c.coefficient),
    ])
}

/// A PKCS#8 document for an ECDSA key (algorithm 13 or 14) from the private scalar and the public
/// point, given either as the DNSKEY `X||Y` or as the uncompressed `0x04||X||Y`.
/// `None` for another algorithm or wrong lengths. ring checks that the two halves match on load.
pub fn ecdsa_pkcs8(algorithm: u8, private_scalar: &[u8], public_point: &[u8]) -> Option<Vec<u8>> {
    let (curve, len) = match algorithm {
        ALG_ECDSAP256SHA256 => (OID_P256, 32),
        ALG_ECDSAP384SHA384 => (OID_P384, 48),
        _ => return None,
    };
    let d = strip_leading_zeros(private_scalar);
    if d.is_empty() || d.len() > len {
        return None;
    }
    let mut scalar = vec![0u8; len - d.len()];
    scalar.extend_from_slice(d);
    let mut point = vec![0u8, 0x04]; // BIT STRING: no unused bits, uncompressed point
    if public_point.len() == 2 * len {
        point.extend_from_slice(public_point);
    } else if public_point.len() == 2 * len + 1 && public_point[0] == 0x04 {
        point.extend_from_slice(&public_point[1..]);
    } else {
        return None;
    }
    let ec_private_key = seq(&[
        &uint(&[1]),
        &tlv(TAG_OCTET_STRING, &scalar),
        &tlv(TAG_CONTEXT_1, &tlv(TAG_BIT_STRING, &point)),
    ]);
    Some(seq(&[
        &uint(&[0]),
        &seq(&[&tlv(TAG_OID, OID_EC_PUBLIC_KEY), &tlv(TAG_OID, curve)]),
        &tlv(TAG_OCTET_STRING, &ec_private_key),
    ]))
}

/// A PKCS#8 v1 document for an Ed25519 key from its 32-octet seed (RFC 8410 §7).
/// Load it with `Ed25519KeyPair::from_pkcs8_maybe_unchecked`, as the keystore does.
pub fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    seq(&[
        &uint(&[0]),
        &seq(&[&tlv(TAG_OID, OID_ED25519)]),
        &tlv(TAG_OCTET_STRING, &tlv(TAG_OCTET_STRING, seed)),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testkeys::*;
    use super::*;
    use data_encoding::{BASE64, HEXLOWER};

    #[test]
    fn rsa_wrap_matches_openssl() {
        let p1 = BASE64.decode(RSA2048_PKCS1.as_bytes()).unwrap();
        let p8 = BASE64.decode(RSA2048_PKCS8.as_bytes()).unwrap();
        assert_eq!(rsa_pkcs8_from_pkcs1(&p1), p8);
    }

    #[test]
    fn rsa_components_roundtrip() {
        // Take the OpenSSL PKCS#1 apart with a tiny reader and rebuild it.
        let p1 = BASE64.decode(RSA2048_PKCS1.as_bytes()).unwrap();
        fn read(b: &[u8]) -> (u8, &[u8], &[u8]) {
            let tag = b[0];
            let (len, hdr) = if b[1] < 0x80 {
                (b[1] as usize, 2)
            } else {
                let n = (b[1] & 0x7f) as usize;
                (
                    b[2..2 + n].iter().fold(0usize, |a, x| a << 8 | *x as usize),
                    2 + n,
                )
            };
            (tag, &b[hdr..hdr + len], &b[hdr + len..])
        }
        let (_, mut body, _) = read(&p1);
        let mut ints = vec![];
        while !body.is_empty() {
            let (t, v, rest) = read(body);
            assert_eq!(t, TAG_INTEGER);
            ints.push(v);
            body = rest;
        }
        assert_eq!(ints.len(), 9);
        let c = RsaPrivateComponents {
            modulus: ints[1],
            public_exponent: ints[2],
            private_exponent: ints[3],
            prime1: ints[4],
            prime2: ints[5],
            exponent1: ints[6],
            exponent2: ints[7],
            coefficient: ints[8],
        };
        assert_eq!(rsa_pkcs1_from_components(&c), p1);
        assert!(format!("{c:?}").contains("modulus_len: 257"));
    }

    #[test]
    fn ecdsa_builder_matches_openssl() {
        let d = HEXLOWER.decode(P256_D_HEX.as_bytes()).unwrap();
        let q = HEXLOWER.decode(P256_Q_HEX.as_bytes()).unwrap();
        let want = BASE64.decode(P256_PKCS8.as_bytes()).unwrap();
        assert_eq!(ecdsa_pkcs8(13, &d, &q).unwrap(), want);
        assert_eq!(ecdsa_pkcs8(13, &d, &q[1..]).unwrap(), want);
        let d = HEXLOWER.decode(P384_D_HEX.as_bytes()).unwrap();
        let q = HEXLOWER.decode(P384_Q_HEX.as_bytes()).unwrap();
        let want = BASE64.decode(P384_PKCS8.as_bytes()).unwrap();
        assert_eq!(ecdsa_pkcs8(14, &d, &q).unwrap(), want);
        assert_eq!(ecdsa_pkcs8(13, &d, &q), None);
        assert_eq!(ecdsa_pkcs8(15, &d, &q), None);
    }

    #[test]
    fn ed25519_builder_matches_openssl() {
        let want = BASE64.decode(ED25519_PKCS8_V1.as_bytes()).unwrap();
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&want[16..48]);
        assert_eq!(ed25519_pkcs8(&seed), want);
    }

    #[test]
    fn long_lengths() {
        assert_eq!(&tlv(4, &[0u8; 200])[..3], &[4, 0x81, 200]);
        assert_eq!(&tlv(4, &[0u8; 300])[..4], &[4, 0x82, 1, 44]);
        assert_eq!(uint(&[0, 0]), vec![2, 1, 0]);
        assert_eq!(uint(&[0x80]), vec![2, 2, 0, 0x80]);
    }
}
