//! Zone files: the presentation format of RFC 1035 §5 with RFC 3597 unknown types.
//!
//! Reader: `$ORIGIN`, `$TTL`, `$INCLUDE file [origin]`, `@` anywhere a name goes, relative
//! names, blank owners (the previous owner), TTL and class in either order, parentheses over
//! several lines with quoted strings and comments inside, `\X` and `\DDD` escapes, case kept.
//! Every error names the file and line.
//!
//! Writer: one record per line, absolute names, tab-separated; its output re-parses to the same
//! records (RDATA codecs in [`crate::dns::rdata`]).

use crate::dns::name::Name;
use crate::dns::rdata::{self, Token};
use crate::dns::record::Record;
use crate::dns::rtype::{self, t};
use crate::zone::data::{soa_field, Zone, ZoneProblem};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

mod load;

/// `$INCLUDE` nesting limit: an include loop must end in an error, not a stack overflow.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// A zone file error with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Records read from a zone file, with the place each came from.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub places: Vec<(usize /* file index */, usize /* line */)>,
    pub files: Vec<PathBuf>,
}

/// A zero-copy lexer over zone file text: splits it into logical entries (lines, with
/// parenthesised continuations joined) of raw tokens (escapes kept, quotes removed), one entry
/// at a time into a caller's token buffer.
struct Lexer<'a> {
    text: &'a [u8],
    i: usize,
    line: usize,
}

/// One logical entry found by [`Lexer::next_entry`].
struct EntryInfo {
    /// Line where the entry starts.
    line: usize,
    /// The entry began with blank space: its owner is the previous record's.
    leading_ws: bool,
    /// Byte offset of the entry's first character (its first token, or the blank space).
    start: usize,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a [u8], line: usize) -> Lexer<'a> {
        Lexer { text, i: 0, line }
    }

    /// The next entry with at least one token, its tokens in `toks` (cleared first); `Ok(None)`
    /// at the end; `Err((line, message))` for `)` without `(`, an unterminated quoted string or
    /// a `(` still open at the end.
    fn next_entry(
        &mut self,
        toks: &mut Vec<Token<'a>>,
    ) -> Result<Option<EntryInfo>, (usize, String)> {
        let text = self.text;
        let n = text.len();
        let mut paren = 0usize;
        let mut cur: Option<EntryInfo> = None;
        let mut at_line_start = true;
        toks.clear();
        let open = |cur: &mut Option<EntryInfo>, line: usize, start: usize| {
            if cur.is_none() {
                *cur = Some(EntryInfo {
                    line,
                    leading_ws: false,
                    start,
                });
            }
        };
        while self.i < n {
            let i = self.i;
            match text[i] {
                b'\n' => {
                    self.line += 1;
                    self.i += 1;
                    if paren == 0 {
                        if let Some(e) = cur.take() {
                            if !toks.is_empty() {
                                return Ok(Some(e));
                            }
                        }
                        at_line_start = true;
                    }
                }
                b' ' | b'\t' | b'\r' => {
                    if at_line_start && paren == 0 && cur.is_none() {
                        cur = Some(EntryInfo {
                            line: self.line,
                            leading_ws: true,
                            start: i,
                        });
                    }
                    at_line_start = false;
                    self.i += 1;
                }
                b';' => match memchr_newline(&text[i..]) {
                    Some(k) => self.i = i + k,
                    None => self.i = n,
                },
                b'(' => {
                    paren += 1;
                    at_line_start = false;
                    open(&mut cur, self.line, i);
                    self.i += 1;
                }
                b')' => {
                    if paren == 0 {
                        return Err((self.line, "')' without '('".into()));
                    }
                    paren -= 1;
                    self.i += 1;
                }
                b'"' => {
                    at_line_start = false;
                    open(&mut cur, self.line, i);
                    let start_line = self.line;
                    let mut j = i + 1;
                    let s = j;
                    loop {
                        if j >= n {
                            return Err((start_line, "unterminated quoted string".into()));
                        }
                        match text[j] {
                            b'\\' => j += 2,
                            b'"' => break,
                            b'\n' => {
                                self.line += 1;
                                j += 1;
                            }
                            _ => j += 1,
                        }
                    }
                    let end = j.min(n);
                    toks.push(Token {
                        text: &text[s..end],
                        quoted: true,
                    });
                    self.i = end + 1;
                }
                _ => {
                    at_line_start = false;
                    open(&mut cur, self.line, i);
                    let mut j = i;
                    while j < n {
                        match text[j] {
                            b'\\' => j += 2,
                            b' ' | b'\t' | b'\r' | b'\n' | b';' | b'(' | b')' | b'"' => break,
                            _ => j += 1,
                        }
                    }
                    let end = j.min(n);
                    toks.push(Token {
                        text: &text[i..end],
                        quoted: false,
                    });
                    self.i = end;
                }
            }
        }
        if paren > 0 {
            return Err((self.line, "unclosed '(' at end of file".into()));
        }
        match cur {
            Some(e) if !toks.is_empty() => Ok(Some(e)),
            _ => Ok(None),
        }
    }
}

/// Offset of the first newline in `s`.
fn memchr_newline(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// The parser's state between entries.
#[derive(Clone)]
struct State {
    origin: Option<Name>,
    default_ttl: Option<u32>,
    last_owner: Option<Name>,
    /// The owner token `last_owner` was parsed from, under the current origin: a record with
    /// the same owner text reuses it instead of parsing it again.
    last_owner_text: Option<Vec<u8>>,
    /// Counts the owners parsed: changes whenever `last_owner` is replaced.
    owner_gen: u64,
    last_ttl: Option<u32>,
}

impl State {
    fn new(origin: &Name) -> State {
        State {
            origin: Some(origin.clone()),
            default_ttl: None,
            last_owner: None,
            last_owner_text: None,
            owner_gen: 0,
            last_ttl: None,
        }
    }
}

/// Parses zone file text. `origin` is the zone's name (the initial `$ORIGIN`).
pub fn parse_str(text: &str, file: &Path, origin: &Name) -> Result<Parsed, Vec<ParseError>> {
    let mut p = Parsed::default();
    let mut st = State::new(origin);
    let mut errs = Vec::new();
    parse_into(text.as_bytes(), file, &mut st, &mut p, &mut errs, 0);
    finish(p, errs)
}

fn read_file(path: &Path) -> Result<Vec<u8>, Vec<ParseError>> {
    std::fs::read(path).map_err(|e| {
        vec![ParseError {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        }]
    })
}

/// Reads and parses a zone file.
pub fn parse_file(path: &Path, origin: &Name) -> Result<Parsed, Vec<ParseError>> {
    let text = read_file(path)?;
    let mut p = Parsed::default();
    let mut st = State::new(origin);
    let mut errs = Vec::new();
    parse_into(&text, path, &mut st, &mut p, &mut errs, 0);
    finish(p, errs)
}

fn finish(mut p: Parsed, errs: Vec<ParseError>) -> Result<Parsed, Vec<ParseError>> {
    if !errs.is_empty() {
        return Err(errs);
    }
    // RFC 2308 §4 / BIND: records before any $TTL without an explicit TTL took the SOA minimum
    // (handled inline); nothing more to do.
    p.records.shrink_to_fit();
    Ok(p)
}

/// Stop collecting after this many errors: a binary file fed by mistake should not print
/// millions of lines.
const MAX_ERRORS: usize = 100;

/// An `$INCLUDE` to be read: the file as written and the origin argument.
struct Include {
    file: String,
    origin: Option<String>,
}

/// True when the entry is a `$` directive.
fn is_directive(leading_ws: bool, toks: &[Token<'_>]) -> bool {
    !leading_ws && !toks[0].quoted && toks[0].text.first() == Some(&b'$')
}

/// Applies `$ORIGIN` or `$TTL` to `st`; returns an `$INCLUDE` for the caller to read.
fn directive(toks: &[Token<'_>], st: &mut State) -> Result<Option<Include>, String> {
    let arg = |i: usize| toks.get(i).map(|t| t.as_str().into_owned());
    let first = toks[0].as_str();
    match first.to_ascii_uppercase().as_str() {
        "$ORIGIN" => match arg(1) {
            Some(o) => match Name::parse(&o, st.origin.as_ref()) {
                Ok(n) => {
                    st.origin = Some(n);
                    st.last_owner_text = None;
                    Ok(None)
                }
                Err(m) => Err(format!("$ORIGIN: {m}")),
            },
            None => Err("$ORIGIN needs a name".into()),
        },
        "$TTL" => match arg(1).map(|s| rdata::parse_ttl(&s)) {
            Some(Ok(v)) => {
                st.default_ttl = Some(v);
                Ok(None)
            }
            Some(Err(m)) => Err(format!("$TTL: {m}")),
            None => Err("$TTL needs a value".into()),
        },
        "$INCLUDE" => match arg(1) {
            Some(file) => Ok(Some(Include {
                file,
                origin: arg(2),
            })),
            None => Err("$INCLUDE needs a file name".into()),
        },
        other => Err(format!("unsupported directive {other}")),
    }
}

fn parse_into(
    text: &[u8],
    file: &Path,
    st: &mut State,
    p: &mut Parsed,
    errs: &mut Vec<ParseError>,
    depth: usize,
) {
    // a lexical error anywhere in the file is its only error, and nothing of it is kept
    let (records0, errs0, files0, st0) = (p.records.len(), errs.len(), p.files.len(), st.clone());
    let file_idx = p.files.len();
    p.files.push(file.to_path_buf());
    let err = |line: usize, message: String| ParseError {
        file: file.to_path_buf(),
        line,
        message,
    };
    let mut lexer = Lexer::new(text, 1);
    let mut toks = Vec::with_capacity(16);
    let mut scratch = Vec::with_capacity(256);
    loop {
        let e = match lexer.next_entry(&mut toks) {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err((line, m)) => {
                p.records.truncate(records0);
                p.places.truncate(records0);
                p.files.truncate(files0);
                p.files.push(file.to_path_buf());
                errs.truncate(errs0);
                *st = st0;
                errs.push(err(line, m));
                return;
            }
        };
        if errs.len() >= MAX_ERRORS {
            // the rest is only lexed, for a lexical error (which would replace the others)
            continue;
        }
        if is_directive(e.leading_ws, &toks) {
            let inc = match directive(&toks, st) {
                Ok(Some(inc)) => inc,
                Ok(None) => continue,
                Err(m) => {
                    errs.push(err(e.line, m));
                    continue;
                }
            };
            if depth >= MAX_INCLUDE_DEPTH {
                errs.push(err(
                    e.line,
                    format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH}"),
                ));
                continue;
            }
            let path = {
                let fp = PathBuf::from(&inc.file);
                if fp.is_absolute() {
                    fp
                } else {
                    file.parent().unwrap_or(Path::new(".")).join(fp)
                }
            };
            let saved_origin = st.origin.clone();
            if let Some(o) = inc.origin {
                match Name::parse(&o, st.origin.as_ref()) {
                    Ok(n) => {
                        st.origin = Some(n);
                        st.last_owner_text = None;
                    }
                    Err(m) => {
                        errs.push(err(e.line, format!("$INCLUDE origin: {m}")));
                        continue;
                    }
                }
            }
            match std::fs::read(&path) {
                Ok(t) => parse_into(&t, &path, st, p, errs, depth + 1),
                Err(er) => errs.push(err(e.line, format!("$INCLUDE {}: {er}", path.display()))),
            }
            // RFC 1035 §5.1: the origin reverts after an include
            st.origin = saved_origin;
            st.last_owner_text = None;
            continue;
        }
        match parse_record(&toks, e.leading_ws, st, &mut scratch) {
            Ok(r) => {
                let Some(owner) = st.last_owner.clone() else {
                    continue;
                };
                p.records.push(Record {
                    owner,
                    rtype: r.rtype,
                    class: r.class,
                    ttl: r.ttl,
                    rdata: r.rdata,
                });
                p.places.push((file_idx, e.line));
            }
            Err(m) => errs.push(err(e.line, m)),
        }
    }
}

/// A record's fields except its owner, which is `State::last_owner` after [`parse_record`].
struct Fields {
    rtype: u16,
    class: u16,
    ttl: u32,
    rdata: Vec<u8>,
}

/// Parses one record entry. Its owner is left in `st.last_owner`.
fn parse_record(
    toks: &[Token<'_>],
    leading_ws: bool,
    st: &mut State,
    scratch: &mut Vec<u8>,
) -> Result<Fields, String> {
    let mut i = 0;
    if leading_ws {
        if st.last_owner.is_none() {
            return Err("record without owner and no previous owner".into());
        }
    } else {
        i = 1;
        let text = toks[0].text;
        if st.last_owner.is_none() || st.last_owner_text.as_deref() != Some(text) {
            let o = Name::parse_bytes(text, st.origin.as_ref())?;
            st.last_owner = Some(o);
            st.owner_gen += 1;
            let t = st.last_owner_text.get_or_insert_with(Vec::new);
            t.clear();
            t.extend_from_slice(text);
        }
    }
    let mut ttl: Option<u32> = None;
    let mut class: Option<u16> = None;
    let rtype;
    loop {
        let tk = toks.get(i).ok_or("missing record type")?;
        if tk.quoted {
            return Err(format!("expected a type, found \"{}\"", tk.as_str()));
        }
        let s = tk.as_str();
        if ttl.is_none() && s.as_bytes()[0].is_ascii_digit() {
            ttl = Some(rdata::parse_ttl(&s)?);
            i += 1;
            continue;
        }
        if class.is_none() {
            if let Some(c) = rtype::class_from_str(&s) {
                class = Some(c);
                i += 1;
                continue;
            }
        }
        rtype = rtype::type_from_str(&s).ok_or_else(|| format!("unknown type '{s}'"))?;
        i += 1;
        break;
    }
    let origin = st.origin.as_ref().ok_or("no origin")?;
    scratch.clear();
    rdata::parse_into(scratch, rtype, &toks[i..], origin).map_err(|m| {
        let owner = st
            .last_owner
            .as_ref()
            .map(|o| o.to_string())
            .unwrap_or_default();
        format!("{} {}: {m}", owner, rtype::type_name(rtype))
    })?;
    let rd = scratch.as_slice().to_vec();
    let ttl = match ttl {
        Some(v) => v,
        None => match st.default_ttl {
            Some(v) => v,
            // the SOA's own TTL defaults to its MINIMUM (BIND, RFC 2308 §4)
            None if rtype == t::SOA => soa_field(&rd, 4).unwrap_or(0),
            None => st
                .last_ttl
                .ok_or("no TTL given and no $TTL or earlier TTL to default to")?,
        },
    };
    st.last_ttl = Some(ttl);
    Ok(Fields {
        rtype,
        class: class.unwrap_or(rtype::class::IN),
        ttl,
        rdata: rd,
    })
}

/// Loads a zone file into a checked [`Zone`]; errors are `FILE:LINE: message` strings. A large
/// file is parsed on all cores ([`load`]), with the same result as the sequential path.
pub fn load_zone(path: &Path, origin: &Name) -> Result<(Zone, Vec<String>), Vec<String>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    load_zone_with(path, origin, threads, load::CHUNK_BYTES)
}

/// [`load_zone`] with a given thread count and chunk size (tests use small chunks).
pub fn load_zone_with(
    path: &Path,
    origin: &Name,
    threads: usize,
    chunk_bytes: usize,
) -> Result<(Zone, Vec<String>), Vec<String>> {
    let mut phases = crate::signer::phase::Phases::new("load");
    let text =
        read_file(path).map_err(|es| es.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    phases.mark("read");
    if threads > 1 {
        if let Some(chunks) = load::plan(&text, origin, chunk_bytes) {
            phases.mark("plan");
            let z = load::load_chunks(&text, path, origin, &chunks, threads);
            phases.mark("parse+build");
            return z;
        }
    }
    let mut p = Parsed::default();
    let mut st = State::new(origin);
    let mut errs = Vec::new();
    parse_into(&text, path, &mut st, &mut p, &mut errs, 0);
    drop(text);
    let parsed =
        finish(p, errs).map_err(|es| es.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    phases.mark("parse");
    let z = zone_from_parsed(parsed, origin);
    phases.mark("build");
    z
}

/// The zone-wide rules `Zone::from_records` checks after taking the records in, with its
/// messages, for the parallel loader (which builds the nodes itself).
fn zone_rules(zone: &Zone) -> Vec<String> {
    zone.rule_problems()
        .into_iter()
        .map(|p| p.message)
        .collect()
}

/// Builds a checked [`Zone`] from parsed records.
pub fn zone_from_parsed(parsed: Parsed, origin: &Name) -> Result<(Zone, Vec<String>), Vec<String>> {
    let lines: Vec<usize> = (0..parsed.records.len()).collect();
    let mut warnings = Vec::new();
    let Parsed {
        records,
        places,
        files,
    } = parsed;
    let place = |p: Option<usize>| -> String {
        match p.and_then(|i| places.get(i)) {
            Some((f, l)) => format!("{}:{}: ", files[*f].display(), l),
            None => match files.first() {
                Some(f) => format!("{}: ", f.display()),
                None => String::new(),
            },
        }
    };
    match Zone::from_records(origin.clone(), records, Some(&lines), &mut warnings) {
        Ok(z) => Ok((
            z,
            warnings
                .iter()
                .map(|w: &ZoneProblem| format!("{}{}", place(w.line), w.message))
                .collect(),
        )),
        Err(ps) => Err(ps
            .iter()
            .map(|w| format!("{}{}", place(w.line), w.message))
            .collect()),
    }
}

/// Writes records as a zone file (one per line, absolute names).
pub fn write_records<W: Write>(out: &mut W, records: &[Record]) -> std::io::Result<()> {
    for r in records {
        writeln!(out, "{r}")?;
    }
    Ok(())
}

/// Nodes formatted per batch by the parallel writer: large enough that handing batches around
/// costs nothing, small enough that the text of one batch (about 600 octets per signed node)
/// stays a few megabytes.
const WRITE_BATCH: usize = 4 * 1024;

/// Batches formatted ahead of the one being written, per formatting thread: bounds the memory
/// of text waiting to be written while a slow thread finishes its batch.
const WRITE_AHEAD: usize = 4;

fn format_record(line: &mut String, owner: &str, rtype: u16, ttl: u32, rd: &[u8]) {
    line.push_str(owner);
    line.push('\t');
    rdata::push_decimal(line, ttl as u64);
    line.push_str("\tIN\t");
    rtype::write_type_name(line, rtype);
    line.push('\t');
    rdata::write_text(line, rtype, rd);
    line.push('\n');
}

fn format_node(
    out: &mut String,
    owner: &mut String,
    zone: &Zone,
    name: &Name,
    node: &crate::zone::data::Node,
) {
    owner.clear();
    name.write_text(owner);
    let apex = name == &zone.origin;
    for set in &node.rrsets {
        if set.rtype == t::SOA && apex {
            continue;
        }
        for rd in &set.rdatas {
            format_record(out, owner, set.rtype, set.ttl, rd);
        }
    }
    for s in &node.sigs {
        format_record(out, owner, t::RRSIG, s.ttl, &s.rdata);
    }
}

/// Locks a mutex; a panicked holder's data is still used (a formatter thread's panic is
/// reported as a failed write by [`write_zone`]).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Writes a zone as a zone file, SOA first, then canonical order. Formatting runs on all cores
/// in batches of [`WRITE_BATCH`] nodes while this thread writes the finished batches in order.
pub fn write_zone<W: Write>(out: &mut W, zone: &Zone) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Condvar, Mutex};
    let mut head = String::new();
    if let Some(apex) = zone.nodes.get(&zone.origin) {
        if let Some(soa) = apex.get(t::SOA) {
            let owner = zone.origin.to_string();
            for rd in &soa.rdatas {
                format_record(&mut head, &owner, t::SOA, soa.ttl, rd);
            }
        }
    }
    out.write_all(head.as_bytes())?;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let nodes: Vec<(&Name, &crate::zone::data::Node)> = zone.nodes.iter().collect();
    let batches: Vec<&[(&Name, &crate::zone::data::Node)]> = nodes.chunks(WRITE_BATCH).collect();
    if batches.is_empty() {
        return Ok(());
    }
    let window = WRITE_AHEAD * threads;
    let next = AtomicUsize::new(0);
    // (batches written, stop) — formatters wait while they are `window` batches ahead
    let progress = (Mutex::new((0usize, false)), Condvar::new());
    // emptied text buffers for reuse: no fresh pages for every batch
    let pool: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, String)>();
        for _ in 0..threads.min(batches.len()) {
            let tx = tx.clone();
            let (next, progress, pool, batches) = (&next, &progress, &pool, &batches);
            s.spawn(move || {
                let mut owner = String::with_capacity(256);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    {
                        let mut g = lock(&progress.0);
                        while !g.1 && i >= g.0 + window {
                            g = match progress.1.wait(g) {
                                Ok(g) => g,
                                Err(p) => p.into_inner(),
                            };
                        }
                        if g.1 {
                            break;
                        }
                    }
                    let mut text = lock(pool).pop().unwrap_or_default();
                    for (name, node) in batch.iter() {
                        format_node(&mut text, &mut owner, zone, name, node);
                    }
                    if tx.send((i, text)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let stop = |err: std::io::Error| {
            lock(&progress.0).1 = true;
            progress.1.notify_all();
            Err(err)
        };
        let mut waiting: std::collections::BTreeMap<usize, String> = Default::default();
        let mut want = 0usize;
        for (i, text) in rx.iter() {
            waiting.insert(i, text);
            while let Some(mut text) = waiting.remove(&want) {
                if let Err(e) = out.write_all(text.as_bytes()) {
                    return stop(e);
                }
                text.clear();
                lock(&pool).push(text);
                want += 1;
                lock(&progress.0).0 = want;
                progress.1.notify_all();
            }
        }
        if want != batches.len() {
            return stop(std::io::Error::other("zone writer thread failed"));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::parse("example.com.", None).unwrap()
    }

    const ZONE: &str = r#"
$TTL 1h
@   IN SOA ns1 hostmaster ( 2024010101 ; serial
        1h 15m 1w 300 )
    IN NS ns1
    IN NS Ns2.Example.NET.
ns1 300 IN A 192.0.2.1
www CNAME @
txt TXT ( "v=DKIM1; k=rsa; "
          "p=MIGf" ) ; comment
esc TXT "a\"b\\c\059"
caf\195\169 A 192.0.2.2
$ORIGIN sub.example.com.
@ NS ns
ns A 192.0.2.3
$ORIGIN example.com.
unk TYPE65534 \# 3 010203
a.b.c AAAA 2001:db8::1
"#;

    #[test]
    fn parses_real_world_syntax() {
        let p = parse_str(ZONE, Path::new("t.zone"), &origin()).unwrap();
        let txt: Vec<String> = p.records.iter().map(|r| r.to_string()).collect();
        assert!(
            txt.contains(&"www.example.com.\t3600\tIN\tCNAME\texample.com.".to_string()),
            "{txt:#?}"
        );
        assert!(txt.contains(
            &"txt.example.com.\t3600\tIN\tTXT\t\"v=DKIM1; k=rsa; \" \"p=MIGf\"".to_string()
        ));
        assert!(txt.contains(&"esc.example.com.\t3600\tIN\tTXT\t\"a\\\"b\\\\c;\"".to_string()));
        assert!(txt.contains(&"caf\\195\\169.example.com.\t3600\tIN\tA\t192.0.2.2".to_string()));
        assert!(txt.contains(&"sub.example.com.\t3600\tIN\tNS\tns.sub.example.com.".to_string()));
        assert!(txt.contains(&"unk.example.com.\t3600\tIN\tTYPE65534\t\\# 3 010203".to_string()));
        assert!(txt.contains(&"example.com.\t3600\tIN\tNS\tNs2.Example.NET.".to_string()));
        assert!(txt.contains(&"ns1.example.com.\t300\tIN\tA\t192.0.2.1".to_string()));
        // round trip
        let mut out = Vec::new();
        write_records(&mut out, &p.records).unwrap();
        let again = parse_str(
            std::str::from_utf8(&out).unwrap(),
            Path::new("o"),
            &origin(),
        )
        .unwrap();
        assert_eq!(again.records, p.records);
        let (z, w) = zone_from_parsed(p, &origin()).unwrap();
        assert!(w.is_empty());
        assert_eq!(z.serial(), Some(2024010101));
    }

    #[test]
    fn errors_have_lines() {
        let e = parse_str(
            "@ SOA a b 1 2 3 4 5\nwww A 1.2.3\n",
            Path::new("z"),
            &origin(),
        )
        .unwrap_err();
        assert_eq!(e[0].line, 2);
        assert!(e[0].to_string().starts_with("z:2: "), "{}", e[0]);
        let e = parse_str("x TXT \"abc\n", Path::new("z"), &origin()).unwrap_err();
        assert!(e[0].message.contains("unterminated"));
        let e = parse_str("x A (1.2.3.4\n", Path::new("z"), &origin()).unwrap_err();
        assert!(e[0].message.contains("unclosed"));
    }

    #[test]
    fn zone_rules() {
        let base = "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n";
        let bad = |extra: &str| {
            let p = parse_str(&format!("{base}{extra}"), Path::new("z"), &origin()).unwrap();
            zone_from_parsed(p, &origin()).unwrap_err().join("\n")
        };
        assert!(bad("www.example.org. A 1.2.3.4\n").contains("outside the zone"));
        assert!(bad("www CNAME x\nwww A 1.2.3.4\n").contains("CNAME beside other data"));
        let p = parse_str("$TTL 1\nwww A 1.2.3.4\n", Path::new("z"), &origin()).unwrap();
        assert!(zone_from_parsed(p, &origin())
            .unwrap_err()
            .join("")
            .contains("no SOA"));
        assert!(parse_str("z:\n", Path::new("z"), &origin()).is_err());
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;

    /// The writer's output re-parses to the same records, for the zone that exercises every
    /// syntax and type we claim (tests/data/full.zone), and for garbage-free random RDATA of
    /// unknown types.
    #[test]
    fn full_zone_round_trips() {
        let origin = Name::parse("example.org.", None).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/full.zone");
        let p = parse_file(&path, &origin).unwrap();
        let mut out = Vec::new();
        write_records(&mut out, &p.records).unwrap();
        let again = parse_str(std::str::from_utf8(&out).unwrap(), Path::new("o"), &origin).unwrap();
        assert_eq!(again.records, p.records);
    }

    #[test]
    fn random_rdata_round_trips() {
        let origin = Name::parse("example.org.", None).unwrap();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..2000 {
            let len = (next() % 40) as usize;
            let rd: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // known types only round-trip when the bytes fit the layout; to_text falls back to
            // the generic form otherwise, which must re-parse to the same bytes either way
            for ty in [t::TXT, t::A, t::MX, t::NSEC, t::CAA, t::SVCB, t::LOC, 65000] {
                let owner = Name::parse(&format!("r{i}"), Some(&origin)).unwrap();
                let rec = Record::new(owner, ty, 60, rd.clone());
                let text = rec.to_string();
                let fits = rdata::spec(ty).is_none() || rdata::walk(ty, &rd, &mut |_| {}).is_ok();
                let back = parse_str(&text, Path::new("r"), &origin);
                if fits {
                    let back = back.unwrap_or_else(|e| panic!("{text}: {}", e[0]));
                    assert_eq!(back.records[0].rdata, rd, "{text}");
                } else {
                    // bytes that do not fit the type's layout are refused, not stored
                    assert!(back.is_err(), "{text}");
                }
            }
        }
    }
}
