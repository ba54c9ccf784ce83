//! DNSKEY and DS helpers: pure functions on bytes (RFC 4034 §2, §5, Appendix B; RFC 3110).
//!
//! Nothing here depends on the rest of signet: the caller passes wire-format bytes.

use ring::digest;

/// DNSKEY flag bit: Zone Key (RFC 4034 §2.1.1). Set on every DNSSEC key.
pub const FLAG_ZONE: u16 = 0x0100;
/// DNSKEY flag bit: Secure Entry Point (RFC 4034 §2.1.1), set on KSKs and CSKs.
pub const FLAG_SEP: u16 = 0x0001;
/// DNSKEY flag bit: REVOKE (RFC 5011 §3).
pub const FLAG_REVOKE: u16 = 0x0080;
/// Flags of a zone-signing key.
pub const FLAGS_ZSK: u16 = FLAG_ZONE;
/// Flags of a key-signing or combined signing key.
pub const FLAGS_KSK: u16 = FLAG_ZONE | FLAG_SEP;
/// The DNSKEY protocol field, always 3 (RFC 4034 §2.1.2).
pub const PROTOCOL: u8 = 3;

/// DNSSEC algorithm numbers signet knows by name (IANA registry).
pub const ALG_RSASHA256: u8 = 8;
pub const ALG_RSASHA512: u8 = 10;
pub const ALG_ECDSAP256SHA256: u8 = 13;
pub const ALG_ECDSAP384SHA384: u8 = 14;
pub const ALG_ED25519: u8 = 15;

/// DS digest types (IANA registry).
pub const DIGEST_SHA1: u8 = 1;
pub const DIGEST_SHA256: u8 = 2;
pub const DIGEST_SHA384: u8 = 4;

const ALGORITHMS: [(u8, &str); 5] = [
    (ALG_RSASHA256, "rsasha256"),
    (ALG_RSASHA512, "rsasha512"),
    (ALG_ECDSAP256SHA256, "ecdsap256sha256"),
    (ALG_ECDSAP384SHA384, "ecdsap384sha384"),
    (ALG_ED25519, "ed25519"),
];

/// The algorithm number for a mnemonic (`"ecdsap256sha256"`, case-insensitive) or a decimal number
/// (`"13"`). Only the algorithms signet can sign with are known.
pub fn algorithm_from_name(name: &str) -> Option<u8> {
    let name = name.trim();
    if let Ok(n) = name.parse::<u8>() {
        return ALGORITHMS.iter().find(|(a, _)| *a == n).map(|(a, _)| *a);
    }
    ALGORITHMS
        .iter()
        .find(|(_, m)| m.eq_ignore_ascii_case(name))
        .map(|(a, _)| *a)
}

/// The lowercase mnemonic of an algorithm signet can sign with.
pub fn algorithm_name(algorithm: u8) -> Option<&'static str> {
    ALGORITHMS
        .iter()
        .find(|(a, _)| *a == algorithm)
        .map(|(_, m)| *m)
}

/// The DNSKEY RDATA: flags (256 ZSK, 257 KSK/CSK), protocol 3, algorithm, public key.
pub fn dnskey_rdata(flags: u16, algorithm: u8, public_key: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + public_key.len());
    v.extend_from_slice(&flags.to_be_bytes());
    v.push(PROTOCOL);
    v.push(algorithm);
    v.extend_from_slice(public_key);
    v
}

/// The key tag of a DNSKEY RDATA (RFC 4034 Appendix B, including the algorithm-1 special case).
pub fn key_tag(dnskey_rdata: &[u8]) -> u16 {
    if dnskey_rdata.len() >= 4 && dnskey_rdata[3] == 1 {
        // RSA/MD5 (Appendix B.1): the most significant 16 of the least significant 24 bits of
        // the modulus, i.e. the third- and second-to-last octets of the RDATA.
        let n = dnskey_rdata.len();
        if n >= 7 {
            return u16::from_be_bytes([dnskey_rdata[n - 3], dnskey_rdata[n - 2]]);
        }
        return 0;
    }
    let mut ac: u32 = 0;
    for (i, b) in dnskey_rdata.iter().enumerate() {
        if i & 1 == 0 {
            ac += u32::from(*b) << 8;
        } else {
            ac += u32::from(*b);
        }
    }
    ac += (ac >> 16) & 0xffff;
    (ac & 0xffff) as u16
}

/// The DS RDATA for a DNSKEY: key tag, algorithm, digest type, digest(owner || DNSKEY RDATA).
///
/// `owner_wire_lowercase` is the canonical (uncompressed, lowercase) wire form of the owner name,
/// `[0]` for the root. Digest types 1 (SHA-1), 2 (SHA-256) and 4 (SHA-384) are supported;
/// anything else, or an RDATA shorter than the 4-octet DNSKEY header, gives `None`.
pub fn ds_rdata(
    owner_wire_lowercase: &[u8],
    dnskey_rdata: &[u8],
    digest_type: u8,
) -> Option<Vec<u8>> {
    if dnskey_rdata.len() < 4 {
        return None;
    }
    let alg: &'static digest::Algorithm = match digest_type {
        DIGEST_SHA1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        DIGEST_SHA256 => &digest::SHA256,
        DIGEST_SHA384 => &digest::SHA384,
        _ => return None,
    };
    let mut ctx = digest::Context::new(alg);
    ctx.update(owner_wire_lowercase);
    ctx.update(dnskey_rdata);
    let d = ctx.finish();
    let mut v = Vec::with_capacity(4 + d.as_ref().len());
    v.extend_from_slice(&key_tag(dnskey_rdata).to_be_bytes());
    v.push(dnskey_rdata[3]);
    v.push(digest_type);
    v.extend_from_slice(d.as_ref());
    Some(v)
}

/// Strips leading zero octets (big-endian integers).
pub(crate) fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[first..]
}

/// Encodes an RSA public key in the DNSKEY format of RFC 3110 §2: exponent length (one octet,
/// or zero then two octets when longer than 255), exponent, modulus; no leading zeros.
pub fn rsa_public_key_rfc3110(exponent: &[u8], modulus: &[u8]) -> Vec<u8> {
    let e = strip_leading_zeros(exponent);
    let n = strip_leading_zeros(modulus);
    let mut v = Vec::with_capacity(3 + e.len() + n.len());
    if e.len() <= 255 {
        v.push(e.len() as u8);
    } else {
        v.push(0);
        v.extend_from_slice(&(e.len() as u16).to_be_bytes());
    }
    v.extend_from_slice(e);
    v.extend_from_slice(n);
    v
}

/// Splits an RFC 3110 RSA public key into `(exponent, modulus)`; `None` if malformed.
pub fn rsa_public_key_parts(public_key: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = public_key.split_first()?;
    let (elen, rest) = if first == 0 {
        if rest.len() < 2 {
            return None;
        }
        (
            usize::from(u16::from_be_bytes([rest[0], rest[1]])),
            &rest[2..],
        )
    } else {
        (usize::from(first), rest)
    };
    if elen == 0 || rest.len() <= elen {
        return None;
    }
    Some(rest.split_at(elen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::{BASE64, HEXUPPER};

    const ROOT_KSK_2017: &str = "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwNR1AkUTV74bU=";

    fn root_rdata() -> Vec<u8> {
        let pk = BASE64.decode(ROOT_KSK_2017.as_bytes()).unwrap();
        dnskey_rdata(257, 8, &pk)
    }

    #[test]
    fn root_ksk_key_tag() {
        let rd = root_rdata();
        assert_eq!(&rd[..4], &[1, 1, 3, 8]);
        assert_eq!(key_tag(&rd), 20326);
    }

    #[test]
    fn root_ds_sha256() {
        let ds = ds_rdata(&[0], &root_rdata(), DIGEST_SHA256).unwrap();
        assert_eq!(&ds[..4], &[0x4f, 0x66, 8, 2]);
        assert_eq!(
            HEXUPPER.encode(&ds[4..]),
            "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
        );
        assert_eq!(
            ds_rdata(&[0], &root_rdata(), DIGEST_SHA1).unwrap().len(),
            24
        );
        assert_eq!(
            ds_rdata(&[0], &root_rdata(), DIGEST_SHA384).unwrap().len(),
            52
        );
        assert_eq!(ds_rdata(&[0], &root_rdata(), 3), None);
        assert_eq!(ds_rdata(&[0], &[1, 1, 3], DIGEST_SHA256), None);
    }

    #[test]
    fn root_key_rsa_parts() {
        let pk = BASE64.decode(ROOT_KSK_2017.as_bytes()).unwrap();
        let (e, n) = rsa_public_key_parts(&pk).unwrap();
        assert_eq!(e, &[1, 0, 1]);
        assert_eq!(n.len(), 256);
        assert_eq!(rsa_public_key_rfc3110(e, n), pk);
        // leading zeros are stripped
        let mut n0 = vec![0];
        n0.extend_from_slice(n);
        assert_eq!(rsa_public_key_rfc3110(&[0, 1, 0, 1], &n0), pk);
        // long exponent form
        let long_e = vec![1u8; 300];
        let enc = rsa_public_key_rfc3110(&long_e, n);
        assert_eq!(&enc[..3], &[0, 1, 44]);
        assert_eq!(rsa_public_key_parts(&enc), Some((&long_e[..], n)));
        assert_eq!(rsa_public_key_parts(&[]), None);
        assert_eq!(rsa_public_key_parts(&[3, 1, 0, 1]), None);
        assert_eq!(rsa_public_key_parts(&[0, 1]), None);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(algorithm_from_name("ECDSAP256SHA256"), Some(13));
        assert_eq!(algorithm_from_name("ed25519"), Some(15));
        assert_eq!(algorithm_from_name("8"), Some(8));
        assert_eq!(algorithm_from_name("5"), None);
        assert_eq!(algorithm_from_name("rsasha1"), None);
        assert_eq!(algorithm_name(14), Some("ecdsap384sha384"));
        assert_eq!(algorithm_name(7), None);
    }

    #[test]
    fn rsamd5_key_tag() {
        // Appendix B.1: bytes n-3 and n-2 of the RDATA.
        let rd = [0, 0, 3, 1, 1, 3, 0xab, 0xcd, 0xef];
        assert_eq!(key_tag(&rd), 0xabcd);
    }
}
