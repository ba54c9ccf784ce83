//! Record types and classes: numbers and mnemonics (IANA registry; RFC 3597 §5 `TYPEnnn`).

/// Record type numbers used by name in the code.
#[allow(missing_docs)]
pub mod t {
    pub const A: u16 = 1;
    pub const NS: u16 = 2;
    pub const MD: u16 = 3;
    pub const MF: u16 = 4;
    pub const CNAME: u16 = 5;
    pub const SOA: u16 = 6;
    pub const MB: u16 = 7;
    pub const MG: u16 = 8;
    pub const MR: u16 = 9;
    pub const NULL: u16 = 10;
    pub const WKS: u16 = 11;
    pub const PTR: u16 = 12;
    pub const HINFO: u16 = 13;
    pub const MINFO: u16 = 14;
    pub const MX: u16 = 15;
    pub const TXT: u16 = 16;
    pub const RP: u16 = 17;
    pub const AFSDB: u16 = 18;
    pub const X25: u16 = 19;
    pub const RT: u16 = 21;
    pub const SIG: u16 = 24;
    pub const KEY: u16 = 25;
    pub const PX: u16 = 26;
    pub const AAAA: u16 = 28;
    pub const LOC: u16 = 29;
    pub const NXT: u16 = 30;
    pub const SRV: u16 = 33;
    pub const NAPTR: u16 = 35;
    pub const KX: u16 = 36;
    pub const CERT: u16 = 37;
    pub const A6: u16 = 38;
    pub const DNAME: u16 = 39;
    pub const OPT: u16 = 41;
    pub const APL: u16 = 42;
    pub const DS: u16 = 43;
    pub const SSHFP: u16 = 44;
    pub const IPSECKEY: u16 = 45;
    pub const RRSIG: u16 = 46;
    pub const NSEC: u16 = 47;
    pub const DNSKEY: u16 = 48;
    pub const DHCID: u16 = 49;
    pub const NSEC3: u16 = 50;
    pub const NSEC3PARAM: u16 = 51;
    pub const TLSA: u16 = 52;
    pub const SMIMEA: u16 = 53;
    pub const HIP: u16 = 55;
    pub const CDS: u16 = 59;
    pub const CDNSKEY: u16 = 60;
    pub const OPENPGPKEY: u16 = 61;
    pub const CSYNC: u16 = 62;
    pub const ZONEMD: u16 = 63;
    pub const SVCB: u16 = 64;
    pub const HTTPS: u16 = 65;
    pub const SPF: u16 = 99;
    pub const EUI48: u16 = 108;
    pub const EUI64: u16 = 109;
    pub const TKEY: u16 = 249;
    pub const TSIG: u16 = 250;
    pub const IXFR: u16 = 251;
    pub const AXFR: u16 = 252;
    pub const ANY: u16 = 255;
    pub const URI: u16 = 256;
    pub const CAA: u16 = 257;
}

/// Class numbers.
pub mod class {
    pub const IN: u16 = 1;
    pub const CH: u16 = 3;
    pub const HS: u16 = 4;
    pub const NONE: u16 = 254;
    pub const ANY: u16 = 255;
}

const NAMES: &[(u16, &str)] = &[
    (t::A, "A"),
    (t::NS, "NS"),
    (t::MD, "MD"),
    (t::MF, "MF"),
    (t::CNAME, "CNAME"),
    (t::SOA, "SOA"),
    (t::MB, "MB"),
    (t::MG, "MG"),
    (t::MR, "MR"),
    (t::NULL, "NULL"),
    (t::WKS, "WKS"),
    (t::PTR, "PTR"),
    (t::HINFO, "HINFO"),
    (t::MINFO, "MINFO"),
    (t::MX, "MX"),
    (t::TXT, "TXT"),
    (t::RP, "RP"),
    (t::AFSDB, "AFSDB"),
    (t::X25, "X25"),
    (t::RT, "RT"),
    (t::SIG, "SIG"),
    (t::KEY, "KEY"),
    (t::PX, "PX"),
    (t::AAAA, "AAAA"),
    (t::LOC, "LOC"),
    (t::NXT, "NXT"),
    (t::SRV, "SRV"),
    (t::NAPTR, "NAPTR"),
    (t::KX, "KX"),
    (t::CERT, "CERT"),
    (t::A6, "A6"),
    (t::DNAME, "DNAME"),
    (t::OPT, "OPT"),
    (t::APL, "APL"),
    (t::DS, "DS"),
    (t::SSHFP, "SSHFP"),
    (t::IPSECKEY, "IPSECKEY"),
    (t::RRSIG, "RRSIG"),
    (t::NSEC, "NSEC"),
    (t::DNSKEY, "DNSKEY"),
    (t::DHCID, "DHCID"),
    (t::NSEC3, "NSEC3"),
    (t::NSEC3PARAM, "NSEC3PARAM"),
    (t::TLSA, "TLSA"),
    (t::SMIMEA, "SMIMEA"),
    (t::HIP, "HIP"),
    (t::CDS, "CDS"),
    (t::CDNSKEY, "CDNSKEY"),
    (t::OPENPGPKEY, "OPENPGPKEY"),
    (t::CSYNC, "CSYNC"),
    (t::ZONEMD, "ZONEMD"),
    (t::SVCB, "SVCB"),
    (t::HTTPS, "HTTPS"),
    (t::SPF, "SPF"),
    (t::EUI48, "EUI48"),
    (t::EUI64, "EUI64"),
    (t::TKEY, "TKEY"),
    (t::TSIG, "TSIG"),
    (t::IXFR, "IXFR"),
    (t::AXFR, "AXFR"),
    (t::ANY, "ANY"),
    (t::URI, "URI"),
    (t::CAA, "CAA"),
];

/// The mnemonic of a type, or `TYPEnnn` (RFC 3597 §5).
pub fn type_name(rtype: u16) -> String {
    let mut s = String::new();
    write_type_name(&mut s, rtype);
    s
}

/// The mnemonic of a type, if it has one.
pub fn mnemonic(rtype: u16) -> Option<&'static str> {
    // the common types first: the zone writer asks for every record
    match rtype {
        t::A => Some("A"),
        t::AAAA => Some("AAAA"),
        t::RRSIG => Some("RRSIG"),
        t::NSEC => Some("NSEC"),
        t::NSEC3 => Some("NSEC3"),
        _ => NAMES.iter().find(|(n, _)| *n == rtype).map(|(_, s)| *s),
    }
}

/// Appends [`type_name`] to `out`.
pub fn write_type_name(out: &mut String, rtype: u16) {
    match mnemonic(rtype) {
        Some(s) => out.push_str(s),
        None => {
            out.push_str("TYPE");
            super::rdata::push_decimal(out, rtype as u64);
        }
    }
}

/// Parses a type mnemonic or `TYPEnnn`, case-insensitively.
pub fn type_from_str(s: &str) -> Option<u16> {
    if let Some(n) = NAMES.iter().find(|(_, m)| m.eq_ignore_ascii_case(s)) {
        return Some(n.0);
    }
    if s.len() > 4 && s[..4].eq_ignore_ascii_case("TYPE") {
        return s[4..].parse::<u16>().ok();
    }
    None
}

/// The mnemonic of a class, or `CLASSnnn`.
pub fn class_name(c: u16) -> String {
    match c {
        class::IN => "IN".into(),
        class::CH => "CH".into(),
        class::HS => "HS".into(),
        class::NONE => "NONE".into(),
        class::ANY => "ANY".into(),
        n => format!("CLASS{n}"),
    }
}

/// Parses a class mnemonic or `CLASSnnn`.
pub fn class_from_str(s: &str) -> Option<u16> {
    match s.to_ascii_uppercase().as_str() {
        "IN" => Some(class::IN),
        "CH" | "CHAOS" => Some(class::CH),
        "HS" => Some(class::HS),
        "NONE" => Some(class::NONE),
        "ANY" => Some(class::ANY),
        u if u.len() > 5 && u.starts_with("CLASS") => u[5..].parse::<u16>().ok(),
        _ => None,
    }
}

/// DNSSEC algorithm mnemonics (RFC 8624 registry) accepted on input.
pub fn algorithm_from_str(s: &str) -> Option<u8> {
    let m = match s.to_ascii_uppercase().as_str() {
        "RSAMD5" => 1,
        "DH" => 2,
        "DSA" => 3,
        "RSASHA1" => 5,
        "DSA-NSEC3-SHA1" => 6,
        "RSASHA1-NSEC3-SHA1" => 7,
        "RSASHA256" => 8,
        "RSASHA512" => 10,
        "ECC-GOST" => 12,
        "ECDSAP256SHA256" => 13,
        "ECDSAP384SHA384" => 14,
        "ED25519" => 15,
        "ED448" => 16,
        "INDIRECT" => 252,
        "PRIVATEDNS" => 253,
        "PRIVATEOID" => 254,
        other => return other.parse::<u8>().ok(),
    };
    Some(m)
}

/// Types that may only appear at a zone cut's parent side or apex and are DNSSEC
/// machinery produced by the signer (never taken from unsigned input).
pub fn is_dnssec_generated(rtype: u16) -> bool {
    matches!(rtype, t::RRSIG | t::NSEC | t::NSEC3 | t::NSEC3PARAM)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn names_round_trip() {
        assert_eq!(type_from_str("aaaa"), Some(28));
        assert_eq!(type_from_str("TYPE65534"), Some(65534));
        assert_eq!(type_name(65534), "TYPE65534");
        assert_eq!(type_name(t::HTTPS), "HTTPS");
        assert_eq!(type_from_str("TYPE"), None);
        assert_eq!(class_from_str("class1"), Some(1));
        assert_eq!(algorithm_from_str("ecdsap256sha256"), Some(13));
        assert_eq!(algorithm_from_str("8"), Some(8));
    }
}
