//! RDATA: presentation format ⇄ uncompressed wire form, canonical form, and decompression.
//!
//! Every record's RDATA is kept as uncompressed wire bytes with case preserved. A per-type
//! field list ([`spec`]) drives the codecs:
//!
//! * presentation → wire ([`parse`]), RFC 1035 §5 and the RFCs of each type; any type also
//!   accepts the RFC 3597 generic form `\# len hex`;
//! * wire → presentation ([`to_text`]); types without a field list print as `\# len hex`;
//! * received wire (possibly compressed) → uncompressed ([`read_wire`]): names are decompressed in
//!   every type whose layout we know (RFC 3597 §4 requires it for RFC 1035 types);
//! * canonical form ([`canonical`]): the embedded names of the types listed in RFC 4034 §6.2
//!   (as amended by RFC 6840 §5.1: not NSEC) are lowercased;
//! * segments for compression on output ([`segments`]): only RFC 1035 types compress (RFC 3597 §4).

use super::name::{unescape, Name};
use super::rtype::{self, t};
use super::wire;
use data_encoding::{BASE32HEX_NOPAD, BASE64, HEXLOWER_PERMISSIVE, HEXUPPER};
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A token of presentation input: its raw text (escapes not yet decoded, quotes removed) and
/// whether it was quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// A slice of the input text: tokens are not copied.
    pub text: &'a [u8],
    pub quoted: bool,
}

impl<'a> Token<'a> {
    pub fn plain(s: &'a str) -> Token<'a> {
        Token {
            text: s.as_bytes(),
            quoted: false,
        }
    }
    pub fn as_str(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.text)
    }
}

/// One field of an RDATA layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F {
    U8,
    U16,
    U32,
    /// A 32-bit value that accepts TTL units on input (`1h`): SOA timers.
    Ttl,
    /// An embedded domain name: (compressible on output, lowercased in canonical form).
    Name(bool, bool),
    A,
    Aaaa,
    /// A `<character-string>`.
    Str,
    /// One or more `<character-string>`s up to the end (TXT, SPF).
    Strs,
    /// Base64 up to the end, whitespace allowed between chunks.
    B64,
    /// Hex up to the end, whitespace allowed between chunks.
    Hex,
    /// Hex up to the end; may be empty (written `-` … not used) — ZONEMD/TLSA need data.
    /// A length-prefixed hex string, `-` when empty (NSEC3 salt).
    Salt,
    /// A length-prefixed base32hex string (NSEC3 next hashed owner).
    B32,
    /// A type bitmap up to the end (NSEC, NSEC3, CSYNC).
    Bitmap,
    /// RRSIG time: `YYYYMMDDHHmmSS` or seconds.
    Time,
    /// A 16-bit type number written as a mnemonic (RRSIG type covered).
    Type,
    /// An 8-bit DNSSEC algorithm (mnemonics accepted on input).
    Alg,
    Eui48,
    Eui64,
}

use F::*;

const NAME_CL: F = Name(true, true);
const NAME_L: F = Name(false, true);
const NAME_PLAIN: F = Name(false, false);

/// The field list of a type, or `None` when we only know it as opaque bytes.
pub fn spec(rtype: u16) -> Option<&'static [F]> {
    Some(match rtype {
        t::A => &[A],
        t::NS | t::MD | t::MF | t::CNAME | t::MB | t::MG | t::MR | t::PTR => &[NAME_CL],
        t::SOA => &[NAME_CL, NAME_CL, U32, Ttl, Ttl, Ttl, Ttl],
        t::HINFO => &[Str, Str],
        t::MINFO => &[NAME_CL, NAME_CL],
        t::MX => &[U16, NAME_CL],
        t::TXT | t::SPF => &[Strs],
        t::RP => &[NAME_L, NAME_L],
        t::AFSDB | t::RT | t::KX => &[U16, NAME_L],
        t::X25 => &[Str],
        t::KEY => &[U16, U8, Alg, B64],
        t::PX => &[U16, NAME_L, NAME_L],
        t::AAAA => &[Aaaa],
        t::SRV => &[U16, U16, U16, NAME_L],
        t::NAPTR => &[U16, U16, Str, Str, Str, NAME_L],
        t::CERT => &[U16, U16, Alg, B64],
        t::DNAME => &[NAME_L],
        t::DS | t::CDS => &[U16, Alg, U8, Hex],
        t::SSHFP => &[U8, U8, Hex],
        t::RRSIG | t::SIG => &[Type, Alg, U8, U32, Time, Time, U16, NAME_L, B64],
        t::NSEC => &[NAME_PLAIN, Bitmap],
        t::DNSKEY | t::CDNSKEY => &[U16, U8, Alg, B64],
        t::DHCID | t::OPENPGPKEY => &[B64],
        t::NSEC3 => &[U8, U8, U16, Salt, B32, Bitmap],
        t::NSEC3PARAM => &[U8, U8, U16, Salt],
        t::TLSA | t::SMIMEA => &[U8, U8, U8, Hex],
        t::CSYNC => &[U32, U16, Bitmap],
        t::ZONEMD => &[U32, U8, U8, Hex],
        t::EUI48 => &[Eui48],
        t::EUI64 => &[Eui64],
        _ => return None,
    })
}

/// Types with a hand-written presentation codec (wire layout opaque to the generic walker).
fn special(rtype: u16) -> bool {
    matches!(rtype, t::CAA | t::URI | t::LOC | t::SVCB | t::HTTPS)
}

/// The first name embedded in RDATA whose layout is `[U16?, Name]` etc. — the target of
/// NS/CNAME/DNAME/MX/SRV/PTR, used for additional-section processing and glue detection.
pub fn target_name(rtype: u16, rdata: &[u8]) -> Option<Name> {
    let mut found = None;
    let _ = walk(rtype, rdata, &mut |seg| {
        if let Seg::Name { wire, .. } = seg {
            if found.is_none() {
                found = Name::from_wire(wire).ok();
            }
        }
    });
    match rtype {
        t::NS | t::CNAME | t::DNAME | t::MX | t::SRV | t::PTR => found,
        t::SVCB | t::HTTPS => {
            let end = wire::name_len(rdata, 2)?;
            Name::from_wire(rdata.get(2..end)?).ok()
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// wire walking

/// A piece of uncompressed RDATA.
pub enum Seg<'a> {
    Bytes(&'a [u8]),
    Name {
        wire: &'a [u8],
        compress: bool,
        lower: bool,
    },
}

/// Walks uncompressed RDATA field by field. Types without a layout are one `Bytes` segment.
pub fn walk<'a>(rtype: u16, rdata: &'a [u8], f: &mut dyn FnMut(Seg<'a>)) -> Result<(), String> {
    let Some(fields) = spec(rtype) else {
        f(Seg::Bytes(rdata));
        return Ok(());
    };
    let mut pos = 0usize;
    let mut start = 0usize;
    for field in fields {
        match field {
            Name(c, l) => {
                if pos > start {
                    f(Seg::Bytes(&rdata[start..pos]));
                }
                let end = wire::name_len(rdata, pos).ok_or("bad embedded name")?;
                f(Seg::Name {
                    wire: &rdata[pos..end],
                    compress: *c,
                    lower: *l,
                });
                pos = end;
                start = pos;
            }
            other => {
                pos = skip_field(*other, rdata, pos)?;
            }
        }
    }
    if pos != rdata.len() {
        return Err("RDATA longer than its type's layout".into());
    }
    if pos > start {
        f(Seg::Bytes(&rdata[start..pos]));
    }
    Ok(())
}

fn skip_field(field: F, rdata: &[u8], pos: usize) -> Result<usize, String> {
    let need = |n: usize| -> Result<usize, String> {
        if pos + n <= rdata.len() {
            Ok(pos + n)
        } else {
            Err("RDATA too short".into())
        }
    };
    match field {
        U8 | Alg => need(1),
        U16 | Type => need(2),
        U32 | Ttl | Time | A => need(4),
        Aaaa => need(16),
        Eui48 => need(6),
        Eui64 => need(8),
        Str | Salt | B32 => {
            let l = *rdata.get(pos).ok_or("RDATA too short")? as usize;
            need(1 + l)
        }
        Strs => {
            let mut p = pos;
            if p >= rdata.len() {
                return Err("TXT RDATA needs at least one string".into());
            }
            while p < rdata.len() {
                p += 1 + rdata[p] as usize;
            }
            if p > rdata.len() {
                return Err("character-string runs past RDATA".into());
            }
            Ok(p)
        }
        B64 | Hex => Ok(rdata.len()),
        Bitmap => {
            check_bitmap(&rdata[pos..])?;
            Ok(rdata.len())
        }
        Name(..) => Err("internal: name in skip_field".into()),
    }
}

fn check_bitmap(b: &[u8]) -> Result<(), String> {
    let mut p = 0;
    let mut last: Option<u8> = None;
    while p < b.len() {
        let win = b[p];
        let len = *b.get(p + 1).ok_or("truncated type bitmap")? as usize;
        if len == 0 || len > 32 {
            return Err("bad type bitmap block length".into());
        }
        if let Some(l) = last {
            if win <= l {
                return Err("type bitmap windows out of order".into());
            }
        }
        last = Some(win);
        p += 2 + len;
    }
    if p != b.len() {
        return Err("truncated type bitmap".into());
    }
    Ok(())
}

/// Reads RDATA of `len` bytes at `start` of a received message, decompressing embedded names of
/// known types, and checks it against the type's layout.
pub fn read_wire(rtype: u16, msg: &[u8], start: usize, len: usize) -> Result<Vec<u8>, String> {
    let end = start + len;
    let raw = msg.get(start..end).ok_or("RDATA runs past the message")?;
    let Some(fields) = spec(rtype) else {
        return Ok(raw.to_vec());
    };
    if !fields.iter().any(|f| matches!(f, Name(..))) {
        // no names: validate layout and copy
        let v = raw.to_vec();
        walk(rtype, &v, &mut |_| {})?;
        return Ok(v);
    }
    let mut out = Vec::with_capacity(len + 32);
    let mut pos = start;
    for field in fields {
        match field {
            Name(..) => {
                let (name, next) = wire::read_name(msg, pos)?;
                if next > end {
                    return Err("embedded name runs past RDATA".into());
                }
                out.extend_from_slice(name.as_wire());
                pos = next;
            }
            other => {
                let rel = skip_field(*other, &msg[..end], pos)?;
                out.extend_from_slice(&msg[pos..rel]);
                pos = rel;
            }
        }
    }
    if pos != end {
        return Err("RDATA longer than its type's layout".into());
    }
    Ok(out)
}

/// The canonical form of RDATA (RFC 4034 §6.2, RFC 6840 §5.1).
pub fn canonical(rtype: u16, rdata: &[u8]) -> Cow<'_, [u8]> {
    let Some(fields) = spec(rtype) else {
        return Cow::Borrowed(rdata);
    };
    if !fields.iter().any(|f| matches!(f, Name(_, true))) {
        return Cow::Borrowed(rdata);
    }
    if !rdata.iter().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(rdata);
    }
    let mut out = Vec::with_capacity(rdata.len());
    let ok = walk(rtype, rdata, &mut |seg| match seg {
        Seg::Bytes(b) => out.extend_from_slice(b),
        Seg::Name { wire, lower, .. } => {
            if lower {
                out.extend(wire.iter().map(|b| b.to_ascii_lowercase()))
            } else {
                out.extend_from_slice(wire)
            }
        }
    });
    match ok {
        Ok(()) => Cow::Owned(out),
        Err(_) => Cow::Borrowed(rdata),
    }
}

// ---------------------------------------------------------------------------------------------
// presentation → wire

/// Parses the RDATA tokens of one record of type `rtype`.
pub fn parse(rtype: u16, toks: &[Token], origin: &Name) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    parse_into(&mut out, rtype, toks, origin)?;
    Ok(out)
}

/// As [`parse`], appending to `out` (a buffer reused across records: the zone file reader
/// then copies each RDATA once, at its exact size). On error `out` holds an unspecified part.
pub fn parse_into(
    out: &mut Vec<u8>,
    rtype: u16,
    toks: &[Token],
    origin: &Name,
) -> Result<(), String> {
    if let Some(first) = toks.first() {
        if !first.quoted && first.text == b"\\#" {
            out.extend_from_slice(&parse_generic(rtype, &toks[1..])?);
            return Ok(());
        }
    }
    if special(rtype) {
        let v = match rtype {
            t::CAA => parse_caa(toks),
            t::URI => parse_uri(toks),
            t::LOC => super::loc::parse(toks),
            _ => super::svcb::parse(toks, origin),
        }?;
        out.extend_from_slice(&v);
        return Ok(());
    }
    let start = out.len();
    let fields = spec(rtype).ok_or_else(|| {
        format!(
            "type {} has no known presentation format: use the RFC 3597 form \\# LEN HEX",
            rtype::type_name(rtype)
        )
    })?;
    let mut i = 0usize;
    for (fi, field) in fields.iter().enumerate() {
        let last = fi + 1 == fields.len();
        let tok = |i: usize| -> Result<&Token<'_>, String> {
            toks.get(i)
                .ok_or_else(|| format!("{} RDATA: too few fields", rtype::type_name(rtype)))
        };
        match field {
            U8 => {
                out.push(num(tok(i)?, u8::MAX as u64)? as u8);
                i += 1;
            }
            Alg => {
                let s = tok(i)?.as_str();
                out.push(
                    rtype::algorithm_from_str(&s).ok_or_else(|| format!("bad algorithm '{s}'"))?,
                );
                i += 1;
            }
            U16 => {
                out.extend_from_slice(&(num(tok(i)?, u16::MAX as u64)? as u16).to_be_bytes());
                i += 1;
            }
            Type => {
                let s = tok(i)?.as_str();
                let v = rtype::type_from_str(&s).ok_or_else(|| format!("unknown type '{s}'"))?;
                out.extend_from_slice(&v.to_be_bytes());
                i += 1;
            }
            U32 => {
                out.extend_from_slice(&(num(tok(i)?, u32::MAX as u64)? as u32).to_be_bytes());
                i += 1;
            }
            Ttl => {
                let s = tok(i)?.as_str();
                out.extend_from_slice(&parse_ttl(&s)?.to_be_bytes());
                i += 1;
            }
            Time => {
                let s = tok(i)?.as_str();
                out.extend_from_slice(&parse_time(&s)?.to_be_bytes());
                i += 1;
            }
            Name(..) => {
                let tk = tok(i)?;
                let n = super::name::Name::parse_bytes(tk.text, Some(origin))?;
                out.extend_from_slice(n.as_wire());
                i += 1;
            }
            A => {
                let s = tok(i)?.as_str();
                let a: Ipv4Addr = s.parse().map_err(|_| format!("bad IPv4 address '{s}'"))?;
                out.extend_from_slice(&a.octets());
                i += 1;
            }
            Aaaa => {
                let s = tok(i)?.as_str();
                let a: Ipv6Addr = s.parse().map_err(|_| format!("bad IPv6 address '{s}'"))?;
                out.extend_from_slice(&a.octets());
                i += 1;
            }
            Str => {
                push_charstring(out, tok(i)?)?;
                i += 1;
            }
            Strs => {
                if i >= toks.len() {
                    return Err("TXT needs at least one string".into());
                }
                while i < toks.len() {
                    push_charstring(out, &toks[i])?;
                    i += 1;
                }
            }
            B64 => {
                let s: String = toks[i.min(toks.len())..]
                    .iter()
                    .map(|t| t.as_str().into_owned())
                    .collect();
                if s.is_empty() {
                    return Err("missing base64 data".into());
                }
                let v = BASE64
                    .decode(s.as_bytes())
                    .map_err(|e| format!("bad base64: {e}"))?;
                out.extend_from_slice(&v);
                i = toks.len();
            }
            Hex => {
                let s: String = toks[i.min(toks.len())..]
                    .iter()
                    .map(|t| t.as_str().into_owned())
                    .collect();
                if s.is_empty() {
                    return Err("missing hex data".into());
                }
                out.extend_from_slice(&hex_decode(&s)?);
                i = toks.len();
            }
            Salt => {
                let s = tok(i)?.as_str();
                if s == "-" {
                    out.push(0);
                } else {
                    let v = hex_decode(&s)?;
                    if v.len() > 255 {
                        return Err("salt longer than 255 octets".into());
                    }
                    out.push(v.len() as u8);
                    out.extend_from_slice(&v);
                }
                i += 1;
            }
            B32 => {
                let s = tok(i)?.as_str().to_ascii_uppercase();
                let v = BASE32HEX_NOPAD
                    .decode(s.as_bytes())
                    .map_err(|e| format!("bad base32hex: {e}"))?;
                if v.len() > 255 {
                    return Err("hash longer than 255 octets".into());
                }
                out.push(v.len() as u8);
                out.extend_from_slice(&v);
                i += 1;
            }
            Bitmap => {
                let mut types = Vec::new();
                for tk in &toks[i.min(toks.len())..] {
                    let s = tk.as_str();
                    types.push(
                        rtype::type_from_str(&s).ok_or_else(|| format!("unknown type '{s}'"))?,
                    );
                }
                out.extend_from_slice(&encode_bitmap(&mut types));
                i = toks.len();
            }
            Eui48 | Eui64 => {
                let s = tok(i)?.as_str();
                let n = if *field == Eui48 { 6 } else { 8 };
                let parts: Vec<&str> = s.split('-').collect();
                if parts.len() != n || parts.iter().any(|p| p.len() != 2) {
                    return Err(format!("bad EUI address '{s}'"));
                }
                for p in parts {
                    out.push(
                        u8::from_str_radix(p, 16).map_err(|_| format!("bad EUI address '{s}'"))?,
                    );
                }
                i += 1;
            }
        }
        if last && i < toks.len() {
            return Err(format!(
                "{} RDATA: unexpected extra field '{}'",
                rtype::type_name(rtype),
                toks[i].as_str()
            ));
        }
    }
    if out.len() - start > u16::MAX as usize {
        return Err("RDATA longer than 65535 octets".into());
    }
    Ok(())
}

fn parse_generic(rtype: u16, toks: &[Token]) -> Result<Vec<u8>, String> {
    let len_tok = toks.first().ok_or("\\# needs a length")?;
    let len: usize = len_tok
        .as_str()
        .parse()
        .map_err(|_| format!("bad \\# length '{}'", len_tok.as_str()))?;
    let hex: String = toks[1..].iter().map(|t| t.as_str().into_owned()).collect();
    let v = if hex.is_empty() {
        Vec::new()
    } else {
        hex_decode(&hex)?
    };
    if v.len() != len {
        return Err(format!("\\# says {len} octets but {} were given", v.len()));
    }
    if len > u16::MAX as usize {
        return Err("RDATA longer than 65535 octets".into());
    }
    // A known type given in generic form must still fit its layout (RFC 3597 §5).
    if spec(rtype).is_some() {
        walk(rtype, &v, &mut |_| {})
            .map_err(|e| format!("\\# data is not valid {}: {e}", rtype::type_name(rtype)))?;
    }
    Ok(v)
}

fn num(tk: &Token, max: u64) -> Result<u64, String> {
    let s = tk.as_str();
    let v: u64 = s.parse().map_err(|_| format!("bad number '{s}'"))?;
    if v > max {
        return Err(format!("number {v} larger than {max}"));
    }
    Ok(v)
}

/// Parses a TTL: seconds, or BIND units (`1w2d3h4m5s`, case-insensitive).
pub fn parse_ttl(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Err("empty TTL".into());
    }
    if let Ok(v) = s.parse::<u64>() {
        return u32::try_from(v).map_err(|_| format!("TTL {s} too large"));
    }
    let mut total: u64 = 0;
    let mut cur: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            cur = Some(cur.unwrap_or(0).saturating_mul(10).saturating_add(d as u64));
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return Err(format!("bad TTL '{s}'")),
        };
        let v = cur.take().ok_or_else(|| format!("bad TTL '{s}'"))?;
        total = total.saturating_add(v.saturating_mul(mult));
    }
    if cur.is_some() {
        return Err(format!("bad TTL '{s}'"));
    }
    u32::try_from(total).map_err(|_| format!("TTL {s} too large"))
}

fn push_charstring(out: &mut Vec<u8>, tk: &Token) -> Result<(), String> {
    let v = decode_escapes(tk.text)?;
    if v.len() > 255 {
        return Err(format!(
            "character-string of {} octets (at most 255; split it into several quoted strings)",
            v.len()
        ));
    }
    out.push(v.len() as u8);
    out.extend_from_slice(&v);
    Ok(())
}

/// Decodes `\X` and `\DDD` escapes.
pub fn decode_escapes(s: &[u8]) -> Result<Vec<u8>, String> {
    let mut v = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            let (b, used) = unescape(&s[i..])?;
            v.push(b);
            i += used;
        } else {
            v.push(s[i]);
            i += 1;
        }
    }
    Ok(v)
}

fn hex_decode(s: &str) -> Result<Vec<u8>, String> {
    HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .map_err(|e| format!("bad hex '{s}': {e}"))
}

/// Encodes a set of types as an RFC 4034 §4.1.2 type bitmap (sorts and dedups `types`).
pub fn encode_bitmap(types: &mut Vec<u16>) -> Vec<u8> {
    types.sort_unstable();
    types.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < types.len() {
        let win = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut maxb = 0usize;
        while i < types.len() && (types[i] >> 8) as u8 == win {
            let lo = (types[i] & 0xff) as usize;
            bits[lo / 8] |= 0x80 >> (lo % 8);
            maxb = maxb.max(lo / 8 + 1);
            i += 1;
        }
        out.push(win);
        out.push(maxb as u8);
        out.extend_from_slice(&bits[..maxb]);
    }
    out
}

/// Decodes a type bitmap into type numbers.
pub fn decode_bitmap(b: &[u8]) -> Vec<u16> {
    let mut v = Vec::new();
    for_each_bitmap_type(b, |t| v.push(t));
    v
}

/// Calls `f` with each type of a type bitmap, in order.
pub fn for_each_bitmap_type(b: &[u8], mut f: impl FnMut(u16)) {
    let mut p = 0;
    while p + 2 <= b.len() {
        let win = b[p] as u16;
        let len = b[p + 1] as usize;
        let Some(bits) = b.get(p + 2..p + 2 + len) else {
            break;
        };
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    f((win << 8) | (i * 8 + bit) as u16);
                }
            }
        }
        p += 2 + len;
    }
}

// ---------------------------------------------------------------------------------------------
// wire → presentation

/// Presentation form of RDATA. Unknown types, or data that does not fit the type's layout, are
/// written in the RFC 3597 generic form, which always re-parses to the same bytes.
pub fn to_text(rtype: u16, rdata: &[u8]) -> String {
    let mut s = String::new();
    write_text(&mut s, rtype, rdata);
    s
}

/// Appends the presentation form of RDATA ([`to_text`]) to `out`, without allocating for the
/// common types: the zone writer formats millions of records with it.
pub fn write_text(out: &mut String, rtype: u16, rdata: &[u8]) {
    if special(rtype) {
        let r = match rtype {
            t::CAA => caa_text(rdata),
            t::URI => uri_text(rdata),
            t::LOC => super::loc::to_text(rdata),
            _ => super::svcb::to_text(rdata),
        };
        match r {
            Some(text) => out.push_str(&text),
            None => write_generic(out, rdata),
        }
        return;
    }
    let start = out.len();
    if spec(rtype).is_none() || fields_text(out, rtype, rdata).is_none() {
        out.truncate(start);
        write_generic(out, rdata);
    }
}

/// The RFC 3597 generic form.
pub fn generic_text(rdata: &[u8]) -> String {
    let mut s = String::new();
    write_generic(&mut s, rdata);
    s
}

fn write_generic(out: &mut String, rdata: &[u8]) {
    out.push_str("\\# ");
    push_decimal(out, rdata.len() as u64);
    if !rdata.is_empty() {
        out.push(' ');
        HEXUPPER.encode_append(rdata, out);
    }
}

/// Appends `v` in decimal.
pub fn push_decimal(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(d as char);
    }
}

/// Appends the fields of RDATA of a type with a field list, separated by spaces; `None` (with
/// `out` partly written: the caller truncates) when the bytes do not fit the layout.
fn fields_text(out: &mut String, rtype: u16, rdata: &[u8]) -> Option<()> {
    use std::fmt::Write as _;
    let fields = spec(rtype)?;
    let mut pos = 0usize;
    let mut first = true;
    // every part is preceded by a space except the first (as `parts.join(" ")` would)
    let mut sep = |out: &mut String| {
        if !first {
            out.push(' ');
        }
        first = false;
    };
    for field in fields {
        let rest = rdata.get(pos..)?;
        match field {
            U8 | Alg => {
                sep(out);
                push_decimal(out, *rest.first()? as u64);
                pos += 1;
            }
            U16 => {
                sep(out);
                push_decimal(
                    out,
                    u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as u64,
                );
                pos += 2;
            }
            Type => {
                sep(out);
                rtype::write_type_name(out, u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
                pos += 2;
            }
            U32 | Ttl => {
                sep(out);
                push_decimal(
                    out,
                    u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as u64,
                );
                pos += 4;
            }
            Time => {
                sep(out);
                write_time(out, u32::from_be_bytes(rest.get(..4)?.try_into().ok()?));
                pos += 4;
            }
            Name(..) => {
                let end = wire::name_len(rest, 0)?;
                sep(out);
                super::name::write_wire_name(out, &rest[..end])?;
                pos += end;
            }
            A => {
                let o: [u8; 4] = rest.get(..4)?.try_into().ok()?;
                sep(out);
                let _ = write!(out, "{}", Ipv4Addr::from(o));
                pos += 4;
            }
            Aaaa => {
                let o: [u8; 16] = rest.get(..16)?.try_into().ok()?;
                sep(out);
                let _ = write!(out, "{}", Ipv6Addr::from(o));
                pos += 16;
            }
            Str => {
                let l = *rest.first()? as usize;
                let v = rest.get(1..1 + l)?;
                sep(out);
                quote_into(out, v);
                pos += 1 + l;
            }
            Strs => {
                let mut p = 0;
                if rest.is_empty() {
                    return None;
                }
                while p < rest.len() {
                    let l = rest[p] as usize;
                    let v = rest.get(p + 1..p + 1 + l)?;
                    sep(out);
                    quote_into(out, v);
                    p += 1 + l;
                }
                pos += p;
            }
            B64 => {
                if rest.is_empty() {
                    return None;
                }
                sep(out);
                BASE64.encode_append(rest, out);
                pos = rdata.len();
            }
            Hex => {
                if rest.is_empty() {
                    return None;
                }
                sep(out);
                HEXUPPER.encode_append(rest, out);
                pos = rdata.len();
            }
            Salt => {
                let l = *rest.first()? as usize;
                let v = rest.get(1..1 + l)?;
                sep(out);
                if v.is_empty() {
                    out.push('-');
                } else {
                    HEXUPPER.encode_append(v, out);
                }
                pos += 1 + l;
            }
            B32 => {
                let l = *rest.first()? as usize;
                let v = rest.get(1..1 + l)?;
                sep(out);
                let at = out.len();
                BASE32HEX_NOPAD.encode_append(v, out);
                out[at..].make_ascii_lowercase();
                pos += 1 + l;
            }
            Bitmap => {
                check_bitmap(rest).ok()?;
                for_each_bitmap_type(rest, |ty| {
                    sep(out);
                    rtype::write_type_name(out, ty);
                });
                pos = rdata.len();
            }
            Eui48 | Eui64 => {
                let n = if *field == Eui48 { 6 } else { 8 };
                let v = rest.get(..n)?;
                sep(out);
                for (i, b) in v.iter().enumerate() {
                    if i > 0 {
                        out.push('-');
                    }
                    let _ = write!(out, "{b:02x}");
                }
                pos += n;
            }
        }
    }
    if pos != rdata.len() {
        return None;
    }
    Some(())
}

/// Quotes a character-string for presentation, escaping `"`, `\` and non-printables.
pub fn quote(s: &[u8]) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    quote_into(&mut o, s);
    o
}

/// Appends the quoted form of a character-string ([`quote`]).
pub fn quote_into(o: &mut String, s: &[u8]) {
    o.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                o.push('\\');
                o.push(b as char);
            }
            0x20..=0x7e => o.push(b as char),
            _ => {
                o.push('\\');
                push_decimal3(o, b);
            }
        }
    }
    o.push('"');
}

/// Appends an octet as three decimal digits (the `\DDD` escape's digits).
pub fn push_decimal3(o: &mut String, b: u8) {
    o.push((b'0' + b / 100) as char);
    o.push((b'0' + (b / 10) % 10) as char);
    o.push((b'0' + b % 10) as char);
}

// ---------------------------------------------------------------------------------------------
// CAA (RFC 8659) and URI (RFC 7553)

fn parse_caa(toks: &[Token]) -> Result<Vec<u8>, String> {
    if toks.len() != 3 {
        return Err("CAA needs: flags tag \"value\"".into());
    }
    let flags = num(&toks[0], 255)? as u8;
    let tag = decode_escapes(toks[1].text)?;
    if tag.is_empty() || tag.len() > 255 || !tag.iter().all(|b| b.is_ascii_alphanumeric()) {
        return Err("CAA tag must be 1-255 letters and digits".into());
    }
    let value = decode_escapes(toks[2].text)?;
    let mut out = vec![flags, tag.len() as u8];
    out.extend_from_slice(&tag);
    out.extend_from_slice(&value);
    Ok(out)
}

fn caa_text(rdata: &[u8]) -> Option<String> {
    let flags = *rdata.first()?;
    let tl = *rdata.get(1)? as usize;
    let tag = rdata.get(2..2 + tl)?;
    if tag.is_empty() || !tag.iter().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let value = rdata.get(2 + tl..)?;
    Some(format!(
        "{flags} {} {}",
        String::from_utf8_lossy(tag),
        quote(value)
    ))
}

fn parse_uri(toks: &[Token]) -> Result<Vec<u8>, String> {
    if toks.len() != 3 {
        return Err("URI needs: priority weight \"target\"".into());
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(num(&toks[0], 65535)? as u16).to_be_bytes());
    out.extend_from_slice(&(num(&toks[1], 65535)? as u16).to_be_bytes());
    out.extend_from_slice(&decode_escapes(toks[2].text)?);
    Ok(out)
}

fn uri_text(rdata: &[u8]) -> Option<String> {
    let p = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let w = u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]);
    Some(format!("{p} {w} {}", quote(rdata.get(4..)?)))
}

// ---------------------------------------------------------------------------------------------
// RRSIG times (RFC 4034 §3.2): YYYYMMDDHHmmSS in UTC, or a plain number of seconds.

/// Parses an RRSIG time field.
pub fn parse_time(s: &str) -> Result<u32, String> {
    if s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit()) {
        let n = |a: usize, b: usize| s[a..b].parse::<i64>().unwrap_or(0);
        let (y, mo, d, h, mi, se) = (n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14));
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return Err(format!("bad time '{s}'"));
        }
        let days = days_from_civil(y, mo as u32, d as u32);
        let secs = days * 86400 + h * 3600 + mi * 60 + se;
        // serial arithmetic: times wrap modulo 2^32 (RFC 4034 §3.1.5)
        return Ok(secs.rem_euclid(1 << 32) as u32);
    }
    s.parse::<u32>().map_err(|_| format!("bad time '{s}'"))
}

/// Formats an RRSIG time field as YYYYMMDDHHmmSS (interpreted in the 1970–2106 window).
pub fn format_time(v: u32) -> String {
    let mut s = String::with_capacity(14);
    write_time(&mut s, v);
    s
}

/// Appends an RRSIG time field as YYYYMMDDHHmmSS ([`format_time`]).
pub fn write_time(out: &mut String, v: u32) {
    let secs = v as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    let two = |out: &mut String, x: i64| {
        out.push((b'0' + (x / 10) as u8) as char);
        out.push((b'0' + (x % 10) as u8) as char);
    };
    // the window 1970-2106 keeps the year at four digits
    two(out, y / 100);
    two(out, y % 100);
    two(out, m as i64);
    two(out, d as i64);
    two(out, rem / 3600);
    two(out, (rem % 3600) / 60);
    two(out, rem % 60);
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The civil date of a day number since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token<'_>> {
        s.split_whitespace().map(Token::plain).collect()
    }
    fn origin() -> super::super::name::Name {
        super::super::name::Name::parse("example.com.", None).unwrap()
    }
    fn rt(ty: u16, s: &str) -> String {
        let w = parse(ty, &toks(s), &origin()).unwrap();
        to_text(ty, &w)
    }

    #[test]
    fn round_trips() {
        assert_eq!(rt(t::A, "192.0.2.1"), "192.0.2.1");
        assert_eq!(rt(t::MX, "10 Mail"), "10 Mail.example.com.");
        assert_eq!(
            rt(t::SOA, "ns hostmaster 2024010101 1h 15m 1w 300"),
            "ns.example.com. hostmaster.example.com. 2024010101 3600 900 604800 300"
        );
        assert_eq!(
            rt(t::DS, "20326 8 2 E06D44B80B8F1D39 A95C0B0D"),
            "20326 8 2 E06D44B80B8F1D39A95C0B0D"
        );
        assert_eq!(
            rt(t::NSEC, "b.example.com. A NS TYPE65534"),
            "b.example.com. A NS TYPE65534"
        );
        assert_eq!(
            rt(t::NSEC3, "1 1 0 - 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG"),
            "1 1 0 - 2t7b4g4vsa5smi47k61mv5bv1a22bojr A RRSIG"
        );
        assert_eq!(rt(t::NSEC3PARAM, "1 0 0 AABB"), "1 0 0 AABB");
        assert_eq!(rt(t::CSYNC, "66 3 A NS AAAA"), "66 3 A NS AAAA");
        assert_eq!(rt(t::DNSKEY, "257 3 ECDSAP256SHA256 AAAA"), "257 3 13 AAAA");
        assert_eq!(
            rt(
                t::RRSIG,
                "A 13 3 300 20240101000000 20231201000000 12345 example.com. AAAA"
            ),
            "A 13 3 300 20240101000000 20231201000000 12345 example.com. AAAA"
        );
        assert_eq!(rt(t::EUI48, "00-00-5e-00-53-2a"), "00-00-5e-00-53-2a");
        assert_eq!(rt(65534, "\\# 4 0A0B0C0D"), "\\# 4 0A0B0C0D");
        assert_eq!(rt(t::A, "\\# 4 C0000201"), "192.0.2.1");
        assert_eq!(rt(t::NULL, "\\# 0"), "\\# 0");
    }

    #[test]
    fn txt_and_escapes() {
        let tk = vec![
            Token {
                text: b"v=DKIM1; k=rsa; ",
                quoted: true,
            },
            Token {
                text: b"p=\\059\\\"x",
                quoted: true,
            },
        ];
        let w = parse(t::TXT, &tk, &origin()).unwrap();
        assert_eq!(to_text(t::TXT, &w), "\"v=DKIM1; k=rsa; \" \"p=;\\\"x\"");
        let a256 = [b'a'; 256];
        let long = Token {
            text: &a256,
            quoted: true,
        };
        assert!(parse(t::TXT, &[long], &origin()).is_err());
    }

    #[test]
    fn canonical_lowercases_listed_types_only() {
        let o = origin();
        let w = parse(t::NS, &toks("B.Iana-Servers.NET."), &o).unwrap();
        assert_eq!(to_text(t::NS, &canonical(t::NS, &w)), "b.iana-servers.net.");
        let w = parse(t::NSEC, &toks("B.example.com. A"), &o).unwrap();
        assert_eq!(
            to_text(t::NSEC, &canonical(t::NSEC, &w)),
            "B.example.com. A"
        );
        let w = parse(t::DNAME, &toks("Target.Example."), &o).unwrap();
        assert_eq!(
            to_text(t::DNAME, &canonical(t::DNAME, &w)),
            "target.example."
        );
    }

    #[test]
    fn errors() {
        let o = origin();
        assert!(parse(t::A, &toks("300.1.1.1"), &o).is_err());
        assert!(parse(t::A, &toks("1.1.1.1 2"), &o).is_err());
        assert!(parse(t::MX, &toks("10"), &o).is_err());
        assert!(parse(t::A, &toks("\\# 3 C00002"), &o).is_err());
        assert!(parse(t::A, &toks("\\# 4 C00002"), &o).is_err());
        assert!(parse(t::SOA, &toks("a b 1 2 3 4 x"), &o).is_err());
    }

    #[test]
    fn time_format() {
        assert_eq!(parse_time("20240101000000").unwrap(), 1704067200);
        assert_eq!(format_time(1704067200), "20240101000000");
        assert_eq!(format_time(0), "19700101000000");
    }
}
