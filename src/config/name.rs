//! A small domain-name validator for names written in the configuration (zone names, TSIG key
//! names). It does not depend on the `dns` module so that the configuration can be checked on its
//! own.
//!
//! Rules (RFC 1035 §2.3.4, §3.1): a label is 1 to 63 octets, the whole name at most 255 octets in
//! wire form (each label plus its length octet, plus the root's zero octet). Names are relative to
//! the root: `example.com` and `example.com.` are the same name. Names are case-insensitive
//! (RFC 4343) and normalised to lowercase. Escapes (`\.`, `\065`) are not accepted in the
//! configuration: a zone name with a dot inside a label is almost certainly a mistake.

/// Longest label, RFC 1035 §2.3.4.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest name in wire form, RFC 1035 §2.3.4.
pub const MAX_NAME_LEN: usize = 255;

/// Normalises a name to lowercase absolute form with a trailing dot, or says why it is invalid.
pub fn normalise_name(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty name (write \".\" for the root)".into());
    }
    if t == "." {
        return Ok(".".into());
    }
    let body = t.strip_suffix('.').unwrap_or(t);
    let mut wire_len = 1; // the root label
    for label in body.split('.') {
        if label.is_empty() {
            return Err(format!(
                "{t:?} has an empty label (two dots in a row, or a leading dot)"
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "label {label:?} is {} octets long; a label is at most {MAX_LABEL_LEN} (RFC 1035 §2.3.4)",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !c.is_ascii_graphic() || *c == '\\' || *c == '"')
        {
            return Err(format!(
                "{t:?} contains {c:?}; names here are plain ASCII without escapes or spaces"
            ));
        }
        wire_len += label.len() + 1;
    }
    if wire_len > MAX_NAME_LEN {
        return Err(format!(
            "{t:?} is {wire_len} octets in wire form; a name is at most {MAX_NAME_LEN} (RFC 1035 §2.3.4)"
        ));
    }
    Ok(format!("{}.", body.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalise_name("example.com").as_deref(), Ok("example.com."));
        assert_eq!(
            normalise_name("Example.COM.").as_deref(),
            Ok("example.com.")
        );
        assert_eq!(normalise_name(".").as_deref(), Ok("."));
        assert_eq!(normalise_name("_xfr").as_deref(), Ok("_xfr."));
    }

    #[test]
    fn rejects() {
        assert!(normalise_name("").is_err());
        assert!(normalise_name("a..b").is_err());
        assert!(normalise_name(".a").is_err());
        assert!(normalise_name("a b.com").is_err());
        assert!(normalise_name("a\\.b").is_err());
        assert!(normalise_name(&"a".repeat(64)).is_err());
        assert!(normalise_name(&"a".repeat(63)).is_ok());
        // 4 labels of 63 = 4*64 + 1 = 257 > 255
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(normalise_name(&long).is_err());
        // 3*64 + 62 + 1 = 255: exactly the limit
        let edge = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "a".repeat(61));
        assert!(normalise_name(&edge).is_ok(), "{}", edge.len());
    }
}
