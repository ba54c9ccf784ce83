//! Wire-format helpers: reading (possibly compressed) names from messages (RFC 1035 §4.1.4).
//!
//! Compression pointers must point strictly backwards (so no loop is possible) and the number
//! of hops is bounded by [`MAX_POINTER_HOPS`].

use super::name::{Name, MAX_NAME_LEN};

/// A name of at most 127 labels can need at most 127 pointers; anything beyond is an attack.
pub const MAX_POINTER_HOPS: usize = 128;

/// Length of the uncompressed name at `pos` in `buf` (no pointers allowed), or `None`.
pub fn name_len(buf: &[u8], pos: usize) -> Option<usize> {
    let mut p = pos;
    loop {
        let l = *buf.get(p)? as usize;
        if l > 63 {
            return None;
        }
        p += 1 + l;
        if p - pos > MAX_NAME_LEN || p > buf.len() {
            return None;
        }
        if l == 0 {
            return Some(p);
        }
    }
}

/// Reads a possibly compressed name at `pos` of message `msg`; returns it and the position
/// just after it in the original stream.
pub fn read_name(msg: &[u8], pos: usize) -> Result<(Name, usize), String> {
    let mut out: Vec<u8> = Vec::with_capacity(64);
    let mut p = pos;
    let mut after: Option<usize> = None;
    let mut hops = 0;
    // every pointer must go strictly below the lowest offset visited so far
    let mut limit = pos;
    loop {
        let b = *msg.get(p).ok_or("name runs past the end of the message")?;
        match b & 0xc0 {
            0x00 => {
                let l = b as usize;
                let label = msg
                    .get(p..p + 1 + l)
                    .ok_or("label runs past the end of the message")?;
                out.extend_from_slice(label);
                if out.len() > MAX_NAME_LEN {
                    return Err("name longer than 255 octets".into());
                }
                p += 1 + l;
                if l == 0 {
                    break;
                }
            }
            0xc0 => {
                let lo = *msg.get(p + 1).ok_or("truncated compression pointer")? as usize;
                let target = ((b as usize & 0x3f) << 8) | lo;
                if after.is_none() {
                    after = Some(p + 2);
                }
                if target >= limit {
                    return Err("compression pointer does not point backwards".into());
                }
                hops += 1;
                if hops > MAX_POINTER_HOPS {
                    return Err("too many compression pointers".into());
                }
                limit = target;
                p = target;
            }
            _ => return Err("unknown label type (RFC 6891 §5)".into()),
        }
    }
    let name = Name::from_wire(&out)?;
    Ok((name, after.unwrap_or(p)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        // "a." at 0, then pointer to 0 at 3
        let msg = [1, b'a', 0, 1, b'b', 0xc0, 0];
        let (n, next) = read_name(&msg, 3).unwrap();
        assert_eq!(n.to_string(), "b.a.");
        assert_eq!(next, 7);
        // self loop
        assert!(read_name(&[0xc0, 0], 0).is_err());
        // forward pointer
        assert!(read_name(&[0xc0, 2, 0], 0).is_err());
        // loop between two pointers
        let msg = [1, b'a', 0xc0, 4, 0xc0, 0];
        assert!(read_name(&msg, 4).is_err());
        assert!(read_name(&[0x40], 0).is_err());
        assert!(read_name(&[5, b'a'], 0).is_err());
    }
}
