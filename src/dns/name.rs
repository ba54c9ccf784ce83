//! Domain names (RFC 1035 §3.1, §5.1; RFC 4034 §6.1 canonical order).
//!
//! A [`Name`] holds the uncompressed wire form with its case preserved (RFC 4343: case is
//! kept for output, ignored for comparison). Equality and hashing ignore ASCII case; `Ord` is
//! the DNSSEC canonical order: labels compared right to left as lowercase octet strings, a
//! shorter label before a longer one with the same prefix.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// RFC 1035 §2.3.4: a name is at most 255 octets on the wire.
pub const MAX_NAME_LEN: usize = 255;
/// RFC 1035 §2.3.4: a label is at most 63 octets.
pub const MAX_LABEL_LEN: usize = 63;

/// A domain name in uncompressed wire format, case preserved.
///
/// Beside the wire form it carries its canonical sort key (see [`sort_key`]), so that ordering
/// and equality are one `memcmp`: a zone of a million names is sorted and searched many times.
#[derive(Clone)]
pub struct Name {
    /// `wire || key`
    buf: Box<[u8]>,
    wire_len: u8,
}

/// The canonical sort key of a wire name: labels right to left, each lowercased, with the
/// octets 0x00 and 0x01 escaped as `01 01` and `01 02`, and each label followed by `00`.
/// Comparing keys as octet strings is exactly the RFC 4034 §6.1 order, and equal keys mean
/// equal names ignoring ASCII case.
pub fn sort_key(wire: &[u8], out: &mut Vec<u8>) {
    let mut offs = [0u8; 128];
    let n = label_offsets(wire, &mut offs);
    for i in (0..n).rev() {
        let p = offs[i] as usize;
        let len = wire[p] as usize;
        for &b in &wire[p + 1..p + 1 + len] {
            match b {
                0 => out.extend_from_slice(&[1, 1]),
                1 => out.extend_from_slice(&[1, 2]),
                b => out.push(b.to_ascii_lowercase()),
            }
        }
        out.push(0);
    }
}

impl Name {
    /// Builds a name from wire bytes already known to be well-formed.
    fn make(wire: &[u8]) -> Name {
        let mut buf = Vec::with_capacity(wire.len() * 2);
        buf.extend_from_slice(wire);
        sort_key(wire, &mut buf);
        Name {
            buf: buf.into_boxed_slice(),
            wire_len: wire.len() as u8,
        }
    }

    fn key(&self) -> &[u8] {
        &self.buf[self.wire_len as usize..]
    }

    /// The root name `.`.
    pub fn root() -> Name {
        Name::make(&[0u8])
    }

    /// Builds a name from uncompressed wire bytes, checking the structure.
    pub fn from_wire(wire: &[u8]) -> Result<Name, String> {
        let mut pos = 0;
        loop {
            let len = *wire.get(pos).ok_or("name runs past its end")? as usize;
            if len > MAX_LABEL_LEN {
                return Err(format!(
                    "label of {len} octets (RFC 1035 allows at most 63)"
                ));
            }
            pos += 1 + len;
            if pos > MAX_NAME_LEN {
                return Err("name longer than 255 octets".into());
            }
            if len == 0 {
                break;
            }
        }
        if pos != wire.len() {
            return Err("trailing bytes after the root label".into());
        }
        Ok(Name::make(wire))
    }

    /// Builds a name from labels (left to right, without the root label).
    pub fn from_labels<'a, I: IntoIterator<Item = &'a [u8]>>(labels: I) -> Result<Name, String> {
        let mut w = Vec::with_capacity(32);
        for l in labels {
            if l.is_empty() {
                return Err("empty label".into());
            }
            if l.len() > MAX_LABEL_LEN {
                return Err(format!("label of {} octets (at most 63)", l.len()));
            }
            w.push(l.len() as u8);
            w.extend_from_slice(l);
        }
        w.push(0);
        if w.len() > MAX_NAME_LEN {
            return Err("name longer than 255 octets".into());
        }
        Ok(Name::make(&w))
    }

    /// The uncompressed wire form, case preserved.
    pub fn as_wire(&self) -> &[u8] {
        &self.buf[..self.wire_len as usize]
    }

    /// Wire length in octets.
    pub fn wire_len(&self) -> usize {
        self.wire_len as usize
    }

    /// The canonical wire form (RFC 4034 §6.2): lowercase ASCII.
    pub fn canonical_wire(&self) -> Vec<u8> {
        self.as_wire().to_ascii_lowercase()
    }

    /// A lowercased copy.
    pub fn to_lowercase(&self) -> Name {
        Name::make(&self.as_wire().to_ascii_lowercase())
    }

    pub fn is_root(&self) -> bool {
        self.wire_len == 1
    }

    /// Labels left to right, without the root label.
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            wire: self.as_wire(),
            pos: 0,
        }
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// The RRSIG Labels field (RFC 4034 §3.1.3): labels without the root and a leading `*`.
    pub fn rrsig_labels(&self) -> u8 {
        let n = self.label_count();
        if self.is_wildcard() {
            (n - 1) as u8
        } else {
            n as u8
        }
    }

    /// True when the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        let w = self.as_wire();
        w.len() >= 2 && w[0] == 1 && w[1] == b'*'
    }

    /// The first (leftmost) label, if any.
    pub fn first_label(&self) -> Option<&[u8]> {
        self.labels().next()
    }

    /// The name with the leftmost label removed; `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let w = self.as_wire();
        let skip = 1 + w[0] as usize;
        Some(Name::make(&w[skip..]))
    }

    /// Removes `n` labels from the left.
    pub fn strip_left(&self, n: usize) -> Option<Name> {
        let w = self.as_wire();
        let mut pos = 0;
        for _ in 0..n {
            let len = *w.get(pos)? as usize;
            if len == 0 {
                return None;
            }
            pos += 1 + len;
        }
        Some(Name::make(&w[pos..]))
    }

    /// `label.self`.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, String> {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(format!("bad label length {}", label.len()));
        }
        if self.wire_len() + 1 + label.len() > MAX_NAME_LEN {
            return Err("name longer than 255 octets".into());
        }
        let mut w = Vec::with_capacity(self.wire_len() + 1 + label.len());
        w.push(label.len() as u8);
        w.extend_from_slice(label);
        w.extend_from_slice(self.as_wire());
        Ok(Name::make(&w))
    }

    /// `*.self`.
    pub fn wildcard_child(&self) -> Result<Name, String> {
        self.prepend(b"*")
    }

    /// True if `self` is `other` or below it (case-insensitive).
    pub fn is_subdomain_of(&self, other: &Name) -> bool {
        // the sort key lists labels right to left, each terminated: a suffix of labels is a
        // prefix of the key
        self.key().starts_with(other.key())
    }

    /// Parses a name in presentation format (RFC 1035 §5.1): `\X` and `\DDD` escapes, `@` for the
    /// origin, relative names completed with `origin`.
    pub fn parse(text: &str, origin: Option<&Name>) -> Result<Name, String> {
        Self::parse_bytes(text.as_bytes(), origin)
    }

    /// As [`Name::parse`], on raw bytes.
    pub fn parse_bytes(text: &[u8], origin: Option<&Name>) -> Result<Name, String> {
        if text == b"@" {
            return origin
                .cloned()
                .ok_or_else(|| "'@' used but no origin is known".to_string());
        }
        if text == b"." {
            return Ok(Name::root());
        }
        if text.is_empty() {
            return Err("empty name".into());
        }
        let mut wire: Vec<u8> = Vec::with_capacity(text.len() + 2);
        let mut label: Vec<u8> = Vec::with_capacity(63);
        let mut absolute = false;
        let mut i = 0;
        while i < text.len() {
            let c = text[i];
            match c {
                b'.' => {
                    if label.is_empty() {
                        return Err(format!(
                            "empty label in '{}'",
                            String::from_utf8_lossy(text)
                        ));
                    }
                    push_label(&mut wire, &label)?;
                    label.clear();
                    if i + 1 == text.len() {
                        absolute = true;
                    }
                    i += 1;
                }
                b'\\' => {
                    let (b, used) = unescape(&text[i..])?;
                    label.push(b);
                    i += used;
                }
                _ => {
                    label.push(c);
                    i += 1;
                }
            }
        }
        if !label.is_empty() {
            push_label(&mut wire, &label)?;
        }
        if absolute {
            wire.push(0);
        } else {
            let origin = origin.ok_or_else(|| {
                format!(
                    "relative name '{}' but no origin is known",
                    String::from_utf8_lossy(text)
                )
            })?;
            wire.extend_from_slice(origin.as_wire());
        }
        if wire.len() > MAX_NAME_LEN {
            return Err(format!(
                "name '{}' longer than 255 octets",
                String::from_utf8_lossy(text)
            ));
        }
        Ok(Name::make(&wire))
    }

    /// Presentation form relative to `origin` when below it (`@` for the origin itself).
    pub fn to_relative_string(&self, origin: &Name) -> String {
        if self == origin {
            return "@".into();
        }
        if self.is_subdomain_of(origin) {
            let n = self.label_count() - origin.label_count();
            let mut s = String::new();
            for (i, l) in self.labels().take(n).enumerate() {
                if i > 0 {
                    s.push('.');
                }
                write_label(&mut s, l);
            }
            return s;
        }
        self.to_string()
    }
}

fn push_label(wire: &mut Vec<u8>, label: &[u8]) -> Result<(), String> {
    if label.len() > MAX_LABEL_LEN {
        return Err(format!(
            "label '{}' has {} octets (at most 63)",
            String::from_utf8_lossy(label),
            label.len()
        ));
    }
    wire.push(label.len() as u8);
    wire.extend_from_slice(label);
    Ok(())
}

/// Decodes one escape at the start of `s` (which begins with `\`): returns the byte and the
/// number of input bytes used. RFC 1035 §5.1: `\X` is X literally, `\DDD` a decimal octet.
pub fn unescape(s: &[u8]) -> Result<(u8, usize), String> {
    let c = *s.get(1).ok_or("lone backslash at the end")?;
    if c.is_ascii_digit() {
        let d = s.get(1..4).ok_or("\\DDD escape needs three digits")?;
        if !d.iter().all(|b| b.is_ascii_digit()) {
            return Err("\\DDD escape needs three digits".into());
        }
        let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
        if v > 255 {
            return Err(format!("\\{v:03} is not an octet"));
        }
        Ok((v as u8, 4))
    } else {
        Ok((c, 2))
    }
}

fn write_label(s: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                s.push('\\');
                s.push(b as char);
            }
            0x21..=0x7e => s.push(b as char),
            _ => {
                s.push('\\');
                super::rdata::push_decimal3(s, b);
            }
        }
    }
}

/// Appends the presentation form of the wire name `wire` (as [`Name`]'s `Display`) to `out`;
/// `None` when `wire` is not exactly one well-formed uncompressed name.
pub fn write_wire_name(out: &mut String, wire: &[u8]) -> Option<()> {
    if super::wire::name_len(wire, 0)? != wire.len() {
        return None;
    }
    if wire.len() == 1 {
        out.push('.');
        return Some(());
    }
    for l in (Labels { wire, pos: 0 }) {
        write_label(out, l);
        out.push('.');
    }
    Some(())
}

impl Name {
    /// Appends the presentation form (as `Display`) to `out`.
    pub fn write_text(&self, out: &mut String) {
        if self.is_root() {
            out.push('.');
            return;
        }
        for l in self.labels() {
            write_label(out, l);
            out.push('.');
        }
    }
}

/// Iterator over the labels of a [`Name`], left to right.
pub struct Labels<'a> {
    wire: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.get(self.pos)? as usize;
        if len == 0 {
            return None;
        }
        let l = self.wire.get(self.pos + 1..self.pos + 1 + len)?;
        self.pos += 1 + len;
        Some(l)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        let mut s = String::with_capacity(self.wire_len() + 4);
        self.write_text(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Name {}

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.key());
    }
}

/// Label start offsets of a wire name, left to right (at most 128 labels).
fn label_offsets(w: &[u8], out: &mut [u8; 128]) -> usize {
    let mut n = 0;
    let mut pos = 0usize;
    while pos < w.len() && w[pos] != 0 && n < 128 {
        out[n] = pos as u8;
        n += 1;
        pos += 1 + w[pos] as usize;
    }
    n
}

/// RFC 4034 §6.1 canonical ordering of two wire names.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut ao = [0u8; 128];
    let mut bo = [0u8; 128];
    let na = label_offsets(a, &mut ao);
    let nb = label_offsets(b, &mut bo);
    let (mut i, mut j) = (na, nb);
    while i > 0 && j > 0 {
        i -= 1;
        j -= 1;
        let pa = ao[i] as usize;
        let pb = bo[j] as usize;
        let la = &a[pa + 1..pa + 1 + a[pa] as usize];
        let lb = &b[pb + 1..pb + 1 + b[pb] as usize];
        let c = cmp_label(la, lb);
        if c != Ordering::Equal {
            return c;
        }
    }
    na.cmp(&nb)
}

fn cmp_label(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b.iter()) {
        let c = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
        if c != Ordering::Equal {
            return c;
        }
    }
    a.len().cmp(&b.len())
}

impl Ord for Name {
    fn cmp(&self, other: &Name) -> Ordering {
        self.key().cmp(other.key())
    }
}
impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Name) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn parse_and_display() {
        let o = n("example.com.");
        assert_eq!(
            Name::parse("www", Some(&o)).unwrap().to_string(),
            "www.example.com."
        );
        assert_eq!(Name::parse("@", Some(&o)).unwrap(), o);
        assert_eq!(n("a\\.b.example.").label_count(), 2);
        assert_eq!(n("a\\.b.example.").to_string(), "a\\.b.example.");
        assert_eq!(
            n("caf\\195\\169.example.").to_string(),
            "caf\\195\\169.example."
        );
        assert_eq!(
            n("caf\\195\\169.example.").first_label().unwrap(),
            &[b'c', b'a', b'f', 195, 169]
        );
        assert!(Name::parse("www", None).is_err());
        assert!(Name::parse("a..b.", None).is_err());
        assert!(Name::parse(&format!("{}.", "a".repeat(64)), None).is_err());
        assert!(Name::parse("\\256.", None).is_err());
        assert_eq!(n("Mixed.Case.").to_string(), "Mixed.Case.");
    }

    #[test]
    fn canonical_order_rfc4034() {
        // RFC 4034 §6.1 example, in order.
        let names = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        for w in names.windows(2) {
            assert_eq!(n(w[0]).cmp(&n(w[1])), Ordering::Less, "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn subdomains_and_labels() {
        assert!(n("a.b.example.").is_subdomain_of(&n("EXAMPLE.")));
        assert!(!n("aexample.").is_subdomain_of(&n("example.")));
        assert!(n("example.").is_subdomain_of(&n("example.")));
        assert_eq!(n("*.a.example.").rrsig_labels(), 2);
        assert_eq!(n("a.example.").parent().unwrap(), n("example."));
        assert_eq!(
            n("www.example.com.").to_relative_string(&n("example.com.")),
            "www"
        );
    }

    #[test]
    fn from_wire_rejects_bad() {
        assert!(Name::from_wire(&[3, b'a', b'b']).is_err());
        assert!(Name::from_wire(&[64]).is_err());
        assert!(Name::from_wire(&[0, 0]).is_err());
        assert!(Name::from_wire(&[1, b'a', 0]).is_ok());
    }
}
