//! SVCB and HTTPS RDATA presentation (RFC 9460 §2.1, §7).

use super::name::Name;
use super::rdata::{decode_escapes, quote, Token};
use data_encoding::BASE64;
use std::net::{Ipv4Addr, Ipv6Addr};

const KEYS: &[(u16, &str)] = &[
    (0, "mandatory"),
    (1, "alpn"),
    (2, "no-default-alpn"),
    (3, "port"),
    (4, "ipv4hint"),
    (5, "ech"),
    (6, "ipv6hint"),
];

fn key_from_str(s: &str) -> Result<u16, String> {
    if let Some((k, _)) = KEYS.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)) {
        return Ok(*k);
    }
    if s.len() > 3 && s[..3].eq_ignore_ascii_case("key") {
        return s[3..]
            .parse::<u16>()
            .map_err(|_| format!("bad SvcParamKey '{s}'"));
    }
    Err(format!("unknown SvcParamKey '{s}'"))
}

fn key_name(k: u16) -> String {
    KEYS.iter()
        .find(|(n, _)| *n == k)
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| format!("key{k}"))
}

/// Splits a value on unescaped commas, decoding escapes in each item.
fn split_list(v: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut items = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' => {
                let (b, used) = super::name::unescape(&v[i..])?;
                cur.push(b);
                i += used;
            }
            b',' => {
                items.push(std::mem::take(&mut cur));
                i += 1;
            }
            c => {
                cur.push(c);
                i += 1;
            }
        }
    }
    items.push(cur);
    Ok(items)
}

/// Parses `priority target key=value...`.
pub fn parse(toks: &[Token], origin: &Name) -> Result<Vec<u8>, String> {
    if toks.len() < 2 {
        return Err("SVCB/HTTPS needs: priority target [params]".into());
    }
    let prio: u16 = toks[0]
        .as_str()
        .parse()
        .map_err(|_| "bad SVCB priority".to_string())?;
    let target = Name::parse_bytes(toks[1].text, Some(origin))?;
    let mut out = prio.to_be_bytes().to_vec();
    out.extend_from_slice(target.as_wire());
    let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
    let mut i = 2;
    while i < toks.len() {
        let tk = &toks[i];
        i += 1;
        let text = tk.text;
        let (k, mut val): (&[u8], Option<Vec<u8>>) = match text.iter().position(|&b| b == b'=') {
            Some(p) => (&text[..p], Some(text[p + 1..].to_vec())),
            None => (text, None),
        };
        // `key= "value"`: the value is the next (quoted) token
        if let Some(v) = &val {
            if v.is_empty() {
                if let Some(next) = toks.get(i) {
                    if next.quoted {
                        val = Some(next.text.to_vec());
                        i += 1;
                    }
                }
            }
        }
        let key = key_from_str(&String::from_utf8_lossy(k))?;
        let wire = match (key, val) {
            (2, None) => Vec::new(),
            (2, Some(_)) => return Err("no-default-alpn takes no value".into()),
            (_, None) => return Err(format!("SvcParam {} needs a value", key_name(key))),
            (0, Some(v)) => {
                let mut w = Vec::new();
                for item in split_list(&v)? {
                    let k = key_from_str(&String::from_utf8_lossy(&item))?;
                    w.extend_from_slice(&k.to_be_bytes());
                }
                w
            }
            (1, Some(v)) => {
                let mut w = Vec::new();
                for item in split_list(&v)? {
                    if item.is_empty() || item.len() > 255 {
                        return Err("bad alpn id".into());
                    }
                    w.push(item.len() as u8);
                    w.extend_from_slice(&item);
                }
                w
            }
            (3, Some(v)) => {
                let p: u16 = String::from_utf8_lossy(&v)
                    .parse()
                    .map_err(|_| "bad port".to_string())?;
                p.to_be_bytes().to_vec()
            }
            (4, Some(v)) => {
                let mut w = Vec::new();
                for item in split_list(&v)? {
                    let a: Ipv4Addr = String::from_utf8_lossy(&item)
                        .parse()
                        .map_err(|_| "bad ipv4hint".to_string())?;
                    w.extend_from_slice(&a.octets());
                }
                w
            }
            (5, Some(v)) => BASE64.decode(&v).map_err(|e| format!("bad ech: {e}"))?,
            (6, Some(v)) => {
                let mut w = Vec::new();
                for item in split_list(&v)? {
                    let a: Ipv6Addr = String::from_utf8_lossy(&item)
                        .parse()
                        .map_err(|_| "bad ipv6hint".to_string())?;
                    w.extend_from_slice(&a.octets());
                }
                w
            }
            (_, Some(v)) => decode_escapes(&v)?,
        };
        if params.iter().any(|(k, _)| *k == key) {
            return Err(format!("SvcParam {} given twice", key_name(key)));
        }
        params.push((key, wire));
    }
    params.sort_by_key(|(k, _)| *k);
    for (k, v) in params {
        if v.len() > u16::MAX as usize {
            return Err("SvcParam too long".into());
        }
        out.extend_from_slice(&k.to_be_bytes());
        out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        out.extend_from_slice(&v);
    }
    Ok(out)
}

fn escape_item(v: &[u8]) -> String {
    let mut s = String::new();
    for &b in v {
        match b {
            b',' | b'\\' | b'"' => {
                s.push('\\');
                s.push(b as char);
            }
            0x21..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03}")),
        }
    }
    s
}

/// Presentation form; `None` if the RDATA is malformed.
pub fn to_text(rdata: &[u8]) -> Option<String> {
    let prio = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let end = super::wire::name_len(rdata, 2)?;
    let target = Name::from_wire(&rdata[2..end]).ok()?;
    let mut s = format!("{prio} {target}");
    let mut p = end;
    let mut last: Option<u16> = None;
    while p < rdata.len() {
        let k = u16::from_be_bytes([*rdata.get(p)?, *rdata.get(p + 1)?]);
        let l = u16::from_be_bytes([*rdata.get(p + 2)?, *rdata.get(p + 3)?]) as usize;
        let v = rdata.get(p + 4..p + 4 + l)?;
        if last.is_some_and(|x| k <= x) {
            return None;
        }
        last = Some(k);
        p += 4 + l;
        s.push(' ');
        s.push_str(&key_name(k));
        match k {
            2 => {
                if !v.is_empty() {
                    return None;
                }
            }
            0 => {
                if v.len() % 2 != 0 {
                    return None;
                }
                let keys: Vec<String> = v
                    .chunks(2)
                    .map(|c| key_name(u16::from_be_bytes([c[0], c[1]])))
                    .collect();
                s.push_str(&format!("={}", keys.join(",")));
            }
            1 => {
                let mut items = Vec::new();
                let mut q = 0;
                while q < v.len() {
                    let n = v[q] as usize;
                    items.push(escape_item(v.get(q + 1..q + 1 + n)?));
                    q += 1 + n;
                }
                s.push_str(&format!("=\"{}\"", items.join(",")));
            }
            3 => {
                if v.len() != 2 {
                    return None;
                }
                s.push_str(&format!("={}", u16::from_be_bytes([v[0], v[1]])));
            }
            4 => {
                if v.len() % 4 != 0 || v.is_empty() {
                    return None;
                }
                let a: Vec<String> = v
                    .chunks(4)
                    .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                    .collect();
                s.push_str(&format!("={}", a.join(",")));
            }
            5 => s.push_str(&format!("={}", BASE64.encode(v))),
            6 => {
                if v.len() % 16 != 0 || v.is_empty() {
                    return None;
                }
                let a: Vec<String> = v
                    .chunks(16)
                    .map(|c| {
                        let o: [u8; 16] = c.try_into().unwrap_or([0; 16]);
                        Ipv6Addr::from(o).to_string()
                    })
                    .collect();
                s.push_str(&format!("={}", a.join(",")));
            }
            _ => s.push_str(&format!("={}", quote(v))),
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn round_trip() {
        let o = Name::parse("example.com.", None).unwrap();
        let toks: Vec<Token> = "1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1,192.0.2.2 mandatory=alpn,port no-default-alpn key65000=abc"
            .split_whitespace()
            .map(Token::plain)
            .collect();
        let w = parse(&toks, &o).unwrap();
        let s = to_text(&w).unwrap();
        assert_eq!(
            s,
            "1 . mandatory=alpn,port alpn=\"h2,h3\" no-default-alpn port=8443 ipv4hint=192.0.2.1,192.0.2.2 key65000=\"abc\""
        );
        let toks2: Vec<Token> = vec![
            Token::plain("1"),
            Token::plain("."),
            Token::plain("mandatory=alpn,port"),
            Token {
                text: b"alpn=h2,h3",
                quoted: true,
            },
            Token::plain("no-default-alpn"),
            Token::plain("port=8443"),
            Token::plain("ipv4hint=192.0.2.1,192.0.2.2"),
            Token {
                text: b"key65000=abc",
                quoted: true,
            },
        ];
        assert_eq!(parse(&toks2, &o).unwrap(), w);
    }
}
