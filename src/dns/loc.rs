//! LOC RDATA presentation (RFC 1876 §3).

use super::rdata::Token;

fn enc_size(cm: u64) -> u8 {
    // mantissa (4 bits) and power of ten (4 bits), in centimetres
    let mut e = 0u8;
    let mut m = cm;
    while m >= 10 && e < 9 {
        m /= 10;
        e += 1;
    }
    ((m.min(9) as u8) << 4) | e
}

fn dec_size(b: u8) -> Option<u64> {
    let m = (b >> 4) as u64;
    let e = (b & 0x0f) as u32;
    if m > 9 || e > 9 {
        return None;
    }
    Some(m * 10u64.pow(e))
}

fn metres_cm(s: &str) -> Result<i64, String> {
    let s = s.strip_suffix(['m', 'M']).unwrap_or(s);
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (i, f) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if f.len() > 2 || (i.is_empty() && f.is_empty()) {
        return Err(format!("bad LOC distance '{s}'"));
    }
    let iv: i64 = if i.is_empty() {
        0
    } else {
        i.parse().map_err(|_| format!("bad LOC distance '{s}'"))?
    };
    let fv: i64 = if f.is_empty() {
        0
    } else {
        let v: i64 = f.parse().map_err(|_| format!("bad LOC distance '{s}'"))?;
        if f.len() == 1 {
            v * 10
        } else {
            v
        }
    };
    let cm = iv * 100 + fv;
    Ok(if neg { -cm } else { cm })
}

/// Parses a LOC record's fields.
pub fn parse(toks: &[Token]) -> Result<Vec<u8>, String> {
    let words: Vec<String> = toks.iter().map(|t| t.as_str().into_owned()).collect();
    let mut i = 0;
    let mut coord = |hemis: [&str; 2], maxdeg: u32| -> Result<u32, String> {
        let mut vals = [0f64; 3];
        let mut n = 0;
        while n < 3 {
            let w = words.get(i).ok_or("LOC: too few fields")?;
            if hemis.iter().any(|h| w.eq_ignore_ascii_case(h)) {
                break;
            }
            vals[n] = w
                .parse::<f64>()
                .map_err(|_| format!("LOC: bad number '{w}'"))?;
            n += 1;
            i += 1;
        }
        let h = words.get(i).ok_or("LOC: missing hemisphere")?;
        let sign = if h.eq_ignore_ascii_case(hemis[0]) {
            1i64
        } else if h.eq_ignore_ascii_case(hemis[1]) {
            -1
        } else {
            return Err(format!("LOC: expected {} or {}", hemis[0], hemis[1]));
        };
        i += 1;
        if n == 0 || vals[0] > maxdeg as f64 || vals[1] >= 60.0 || vals[2] >= 60.0 {
            return Err("LOC: coordinate out of range".into());
        }
        let ms = ((vals[0] * 3600.0 + vals[1] * 60.0 + vals[2]) * 1000.0).round() as i64;
        Ok((2_147_483_648i64 + sign * ms) as u32)
    };
    let lat = coord(["N", "S"], 90)?;
    let lon = coord(["E", "W"], 180)?;
    let rest = &words[i..];
    let alt = metres_cm(rest.first().ok_or("LOC: missing altitude")?)?;
    let size = rest
        .get(1)
        .map(|s| metres_cm(s))
        .transpose()?
        .unwrap_or(100);
    let hp = rest
        .get(2)
        .map(|s| metres_cm(s))
        .transpose()?
        .unwrap_or(1_000_000);
    let vp = rest
        .get(3)
        .map(|s| metres_cm(s))
        .transpose()?
        .unwrap_or(1000);
    if rest.len() > 4 {
        return Err("LOC: too many fields".into());
    }
    let mut out = vec![
        0u8,
        enc_size(size.max(0) as u64),
        enc_size(hp.max(0) as u64),
        enc_size(vp.max(0) as u64),
    ];
    out.extend_from_slice(&lat.to_be_bytes());
    out.extend_from_slice(&lon.to_be_bytes());
    let a = alt + 10_000_000;
    if !(0..=u32::MAX as i64).contains(&a) {
        return Err("LOC: altitude out of range".into());
    }
    out.extend_from_slice(&(a as u32).to_be_bytes());
    Ok(out)
}

fn fmt_coord(v: u32, hemis: [char; 2]) -> String {
    let d = v as i64 - 2_147_483_648;
    let h = if d < 0 { hemis[1] } else { hemis[0] };
    let a = d.abs();
    let deg = a / 3_600_000;
    let min = (a % 3_600_000) / 60_000;
    let ms = a % 60_000;
    format!("{deg} {min} {}.{:03} {h}", ms / 1000, ms % 1000)
}

fn fmt_cm(cm: i64) -> String {
    let sign = if cm < 0 { "-" } else { "" };
    let a = cm.abs();
    format!("{sign}{}.{:02}m", a / 100, a % 100)
}

/// Presentation form; `None` when malformed (or an unknown version).
pub fn to_text(r: &[u8]) -> Option<String> {
    if r.len() != 16 || r[0] != 0 {
        return None;
    }
    let size = dec_size(r[1])?;
    let hp = dec_size(r[2])?;
    let vp = dec_size(r[3])?;
    let lat = u32::from_be_bytes(r[4..8].try_into().ok()?);
    let lon = u32::from_be_bytes(r[8..12].try_into().ok()?);
    let alt = u32::from_be_bytes(r[12..16].try_into().ok()?) as i64 - 10_000_000;
    Some(format!(
        "{} {} {} {} {} {}",
        fmt_coord(lat, ['N', 'S']),
        fmt_coord(lon, ['E', 'W']),
        fmt_cm(alt),
        fmt_cm(size as i64),
        fmt_cm(hp as i64),
        fmt_cm(vp as i64)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let t: Vec<Token> = "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m"
            .split_whitespace()
            .map(Token::plain)
            .collect();
        let w = parse(&t).unwrap();
        assert_eq!(
            to_text(&w).unwrap(),
            "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000.00m 10.00m"
        );
        let t2: Vec<Token> = "42 21 54 N 71 06 18 W -24m 30m"
            .split_whitespace()
            .map(Token::plain)
            .collect();
        let w2 = parse(&t2).unwrap();
        let text = to_text(&w2).unwrap();
        let again: Vec<Token> = text.split_whitespace().map(Token::plain).collect();
        assert_eq!(parse(&again).unwrap(), w2);
    }
}
