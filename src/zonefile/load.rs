//! Loading a large zone file on all cores, with exactly the result of the sequential path
//! ([`super::parse_file`] then [`super::zone_from_parsed`], i.e. `Zone::from_records`): the same
//! zone, the same warnings, the same errors in the same order.
//!
//! 1. One sequential pass of the lexer over the file finds chunk boundaries: lines that start
//!    a record with an explicit owner, outside parentheses and quotes, after a `$TTL` (so no
//!    record of a chunk takes its TTL from the previous chunk's last record), with the `$ORIGIN`
//!    and `$TTL` in force there. A file with `$INCLUDE` or a lexical error is left to the
//!    sequential path (which reports the error).
//! 2. The chunks are parsed in parallel into runs (consecutive records of one owner, as
//!    `Zone::from_records` groups them), each chunk's runs sorted by owner.
//! 3. A merge of the sorted runs builds each node from its runs in file order, applying the
//!    rules of `Zone::from_records` record by record (duplicates, TTL differences, RRSIGs).
//!    The owner space is cut at pivot names into ranges that are merged on all threads; all
//!    runs of one owner are in one range, so each node is built exactly as sequentially.

use super::{directive, is_directive, parse_record, Lexer, ParseError, State, Token, MAX_ERRORS};
use crate::dns::name::Name;
use crate::dns::rdata;
use crate::dns::rtype::{self, t};
use crate::zone::data::{Node, RRset, Sig, Zone};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::path::Path;

/// Target size of a chunk: large enough that a chunk's setup is noise, small enough that the
/// threads share the work evenly.
pub const CHUNK_BYTES: usize = 1 << 20;

/// Where a chunk starts and the parser state there.
pub(super) struct ChunkStart {
    offset: usize,
    line: usize,
    origin: Name,
    default_ttl: Option<u32>,
}

/// Finds chunk boundaries of about `target` bytes; `None` when the file must be parsed
/// sequentially (`$INCLUDE`, a lexical error) or is a single chunk.
pub(super) fn plan(text: &[u8], origin: &Name, target: usize) -> Option<Vec<ChunkStart>> {
    let mut st = State::new(origin);
    let mut lexer = Lexer::new(text, 1);
    let mut toks: Vec<Token<'_>> = Vec::with_capacity(16);
    let mut chunks = vec![ChunkStart {
        offset: 0,
        line: 1,
        origin: origin.clone(),
        default_ttl: None,
    }];
    let mut last = 0usize;
    loop {
        let e = match lexer.next_entry(&mut toks) {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(_) => return None,
        };
        if is_directive(e.leading_ws, &toks) {
            // errors are reported by the chunk's own parse of the same line
            if let Ok(Some(_include)) = directive(&toks, &mut st) {
                return None;
            }
            continue;
        }
        if e.leading_ws
            || e.start - last < target
            || st.default_ttl.is_none()
            || matches!(text[e.start], b'(' | b'"' | b'$')
        {
            continue;
        }
        let Some(o) = st.origin.clone() else { continue };
        chunks.push(ChunkStart {
            offset: e.start,
            line: e.line,
            origin: o,
            default_ttl: st.default_ttl,
        });
        last = e.start;
    }
    (chunks.len() > 1).then_some(chunks)
}

/// One record of a run.
struct Raw {
    /// Index of its owner's spelling in `ChunkOut::owners` (messages name the record's own).
    owner: u32,
    rtype: u16,
    ttl: u32,
    line: u32,
    rdata: Vec<u8>,
}

/// Consecutive records of one owner.
struct Run {
    owner: u32,
    start: u32,
    end: u32,
}

/// What a chunk's parse gives.
#[derive(Default)]
struct ChunkOut {
    owners: Vec<Option<Name>>,
    runs: Vec<Run>,
    /// Run indices in owner order (stable: equal owners keep file order).
    order: Vec<u32>,
    recs: Vec<Raw>,
    /// `Zone::from_records` problems of single records: (line, message).
    problems: Vec<(usize, String)>,
    errors: Vec<ParseError>,
}

fn owner_of<'a>(c: &'a ChunkOut, run: &Run) -> &'a Name {
    match &c.owners[run.owner as usize] {
        Some(n) => n,
        None => unreachable_owner(),
    }
}

#[cold]
fn unreachable_owner() -> ! {
    // owners are taken only after every comparison is done
    panic!("zone loader: owner taken before use")
}

fn parse_chunk(text: &[u8], file: &Path, zone_origin: &Name, start: &ChunkStart) -> ChunkOut {
    let mut out = ChunkOut::default();
    let mut st = State::new(&start.origin);
    st.default_ttl = start.default_ttl;
    let mut lexer = Lexer::new(text, start.line);
    let mut toks: Vec<Token<'_>> = Vec::with_capacity(16);
    let mut scratch = Vec::with_capacity(256);
    // st.last_owner as an index into out.owners, and the owner_gen it was taken at
    let mut owner_idx: Option<(u32, u64)> = None;
    let mut run_owner: Option<u32> = None;
    let err = |line: usize, message: String| ParseError {
        file: file.to_path_buf(),
        line,
        message,
    };
    loop {
        let e = match lexer.next_entry(&mut toks) {
            Ok(Some(e)) => e,
            Ok(None) => break,
            // plan() lexed the whole file without error
            Err((line, m)) => {
                out.errors.push(err(line, m));
                break;
            }
        };
        if out.errors.len() >= MAX_ERRORS {
            break;
        }
        if is_directive(e.leading_ws, &toks) {
            match directive(&toks, &mut st) {
                Ok(None) => {}
                Ok(Some(_)) => out.errors.push(err(e.line, "$INCLUDE in a chunk".into())),
                Err(m) => out.errors.push(err(e.line, m)),
            }
            continue;
        }
        let f = match parse_record(&toks, e.leading_ws, &mut st, &mut scratch) {
            Ok(f) => f,
            Err(m) => {
                out.errors.push(err(e.line, m));
                continue;
            }
        };
        if !out.errors.is_empty() {
            continue;
        }
        let Some(owner) = st.last_owner.as_ref() else {
            continue;
        };
        let idx = match owner_idx {
            Some((i, gen)) if gen == st.owner_gen => i,
            _ => {
                out.owners.push(Some(owner.clone()));
                let i = (out.owners.len() - 1) as u32;
                owner_idx = Some((i, st.owner_gen));
                i
            }
        };
        let line = e.line;
        let problem = if f.class != rtype::class::IN {
            Some(format!(
                "{}: class {} is not IN",
                owner,
                rtype::class_name(f.class)
            ))
        } else if !owner.is_subdomain_of(zone_origin) {
            Some(format!("{} is outside the zone {}", owner, zone_origin))
        } else if matches!(
            f.rtype,
            t::OPT | t::TSIG | t::TKEY | t::AXFR | t::IXFR | t::ANY
        ) {
            Some(format!(
                "{}: type {} cannot appear in a zone",
                owner,
                rtype::type_name(f.rtype)
            ))
        } else {
            None
        };
        if let Some(p) = problem {
            out.problems.push((line, p));
            continue;
        }
        let same_run = match run_owner {
            Some(r) if r == idx => true,
            Some(r) => {
                let a = out.owners[r as usize].as_ref();
                let b = out.owners[idx as usize].as_ref();
                a.is_some() && a == b
            }
            None => false,
        };
        let at = out.recs.len() as u32;
        if same_run {
            if let Some(run) = out.runs.last_mut() {
                run.end = at + 1;
            }
        } else {
            out.runs.push(Run {
                owner: idx,
                start: at,
                end: at + 1,
            });
            run_owner = Some(idx);
        }
        out.recs.push(Raw {
            owner: idx,
            rtype: f.rtype,
            ttl: f.ttl,
            line: line as u32,
            rdata: f.rdata,
        });
    }
    let mut order: Vec<u32> = (0..out.runs.len() as u32).collect();
    order.sort_by(|&a, &b| {
        owner_of(&out, &out.runs[a as usize]).cmp(owner_of(&out, &out.runs[b as usize]))
    });
    out.order = order;
    out
}

/// Parses `text` (the whole file `file`) in the chunks of `plan` on `threads` threads and builds
/// the zone. Errors and warnings are `FILE:LINE: message` strings as [`super::load_zone`] gives.
pub(super) fn load_chunks(
    text: &[u8],
    file: &Path,
    origin: &Name,
    chunks: &[ChunkStart],
    threads: usize,
) -> Result<(Zone, Vec<String>), Vec<String>> {
    let ends: Vec<usize> = chunks
        .iter()
        .skip(1)
        .map(|c| c.offset)
        .chain(std::iter::once(text.len()))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut outs: Vec<(usize, ChunkOut)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.clamp(1, chunks.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(c) = chunks.get(i) else { break };
                        let part = &text[c.offset..ends[i]];
                        mine.push((i, parse_chunk(part, file, origin, c)));
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    outs.sort_unstable_by_key(|o| o.0);
    let mut outs: Vec<ChunkOut> = outs.into_iter().map(|o| o.1).collect();
    let fname = file.display().to_string();
    let errors: Vec<String> = outs
        .iter()
        .flat_map(|o| o.errors.iter())
        .take(MAX_ERRORS)
        .map(|e| e.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut problems: Vec<String> = outs
        .iter()
        .flat_map(|o| o.problems.iter())
        .map(|(l, m)| format!("{fname}:{l}: {m}"))
        .collect();
    let mut ph = crate::signer::phase::Phases::new("load-merge");
    let (nodes, mut warnings) = merge(&mut outs, threads, &mut ph);
    drop(outs);
    ph.mark("drop");
    let mut zone = Zone::new(origin.clone());
    zone.nodes = nodes;
    ph.mark("zone");
    problems.extend(
        super::zone_rules(&zone)
            .into_iter()
            .map(|m| format!("{fname}: {m}")),
    );
    ph.mark("rules");
    if !problems.is_empty() {
        return Err(problems);
    }
    warnings.sort_by_key(|w| w.0);
    Ok((
        zone,
        warnings
            .into_iter()
            .map(|(l, m)| format!("{fname}:{l}: {m}"))
            .collect(),
    ))
}

/// A chunk's next run in owner order, for the k-way merge (smallest owner first, then the
/// earlier chunk).
struct Head<'a> {
    name: &'a Name,
    chunk: usize,
    pos: usize,
}

impl PartialEq for Head<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Head<'_> {}
impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Head<'_> {
    fn cmp(&self, o: &Self) -> Ordering {
        // reversed: BinaryHeap pops the largest
        o.name.cmp(self.name).then(o.chunk.cmp(&self.chunk))
    }
}

/// A chunk's share of one owner range: where its slice of `order` starts, and each of those
/// runs with its records.
type RangePart<'a> = (usize, Vec<(u32, &'a mut [Raw])>);

/// A range's nodes and TTL warnings (line, message).
type Built = (Vec<(Name, Node)>, Vec<(u32, String)>);

/// The merge is split into this many owner ranges per thread, so that the threads share it
/// evenly even when the names are not spread evenly.
const RANGES_PER_THREAD: usize = 4;

/// Builds the nodes from the chunks' sorted runs. The owner space is cut at pivot names into
/// ranges merged in parallel: all runs of one owner fall into the same range (a run goes to
/// the range whose first pivot is not greater than its owner), so every node is built by one
/// thread exactly as the sequential merge would build it.
fn merge(
    outs: &mut [ChunkOut],
    threads: usize,
    ph: &mut crate::signer::phase::Phases,
) -> (crate::zone::nodemap::NodeMap, Vec<(u32, String)>) {
    // global run numbers: runs adjacent in the file continue one another
    let mut base = Vec::with_capacity(outs.len());
    let mut total = 0usize;
    for o in outs.iter() {
        base.push(total);
        total += o.runs.len();
    }
    // pivots from the biggest chunk's sorted owners
    let nranges = (threads.max(1) * RANGES_PER_THREAD).max(1);
    // (duplicate pivots make empty ranges, which is harmless)
    let pivots: Vec<Name> = match outs.iter().max_by_key(|o| o.order.len()) {
        Some(big) if threads > 1 && big.order.len() >= 2 => {
            let n = nranges.min(big.order.len());
            (1..n)
                .map(|i| {
                    let r = big.order[big.order.len() * i / n] as usize;
                    owner_of(big, &big.runs[r]).clone()
                })
                .collect()
        }
        _ => Vec::new(),
    };
    // per range and chunk: the slice of the chunk's `order` it merges, with each of those
    // runs' records (disjoint mutable slices of the chunk's `recs`)
    let nparts = pivots.len() + 1;
    let mut parts: Vec<Vec<RangePart<'_>>> = (0..nparts).map(|_| Vec::new()).collect();
    let mut owners_of: Vec<&Vec<Option<Name>>> = Vec::with_capacity(outs.len());
    let mut runs_of: Vec<&Vec<Run>> = Vec::with_capacity(outs.len());
    for o in outs.iter_mut() {
        let ChunkOut {
            owners,
            runs,
            order,
            recs,
            ..
        } = o;
        // the records of each run, by run index
        let mut slots: Vec<Option<&mut [Raw]>> = Vec::with_capacity(runs.len());
        let mut rest: &mut [Raw] = recs.as_mut_slice();
        let mut at = 0usize;
        for run in runs.iter() {
            let (start, end) = (run.start as usize, run.end as usize);
            if start < at || end < start || end - at > rest.len() {
                unreachable_owner();
            }
            let (_, tail) = std::mem::take(&mut rest).split_at_mut(start - at);
            let (mine, tail) = tail.split_at_mut(end - start);
            slots.push(Some(mine));
            rest = tail;
            at = end;
        }
        let mut lo = 0usize;
        for (pi, part) in parts.iter_mut().enumerate() {
            let hi = match pivots.get(pi) {
                Some(p) => {
                    lo + order[lo..].partition_point(|&r| {
                        owners[runs[r as usize].owner as usize]
                            .as_ref()
                            .is_some_and(|n| n < p)
                    })
                }
                None => order.len(),
            };
            let mut v = Vec::with_capacity(hi - lo);
            for &r in &order[lo..hi] {
                match slots[r as usize].take() {
                    Some(sl) => v.push((r, sl)),
                    None => unreachable_owner(),
                }
            }
            part.push((lo, v));
            lo = hi;
        }
        owners_of.push(owners);
        runs_of.push(runs);
    }
    ph.mark("split");
    let base = &base;
    let owners_of = &owners_of;
    let runs_of = &runs_of;
    let results: Vec<Built> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| s.spawn(move || merge_range(part, base, owners_of, runs_of)))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    });
    ph.mark("ranges");
    let mut warnings = Vec::new();
    let mut nodes = Vec::with_capacity(results.iter().map(|r| r.0.len()).sum());
    for (n, w) in results {
        nodes.extend(n);
        warnings.extend(w);
    }
    let map = crate::zone::nodemap::NodeMap::from_sorted(nodes);
    ph.mark("map");
    (map, warnings)
}

/// The sequential k-way merge of one owner range: `part[c]` is chunk `c`'s slice of its
/// `order` (starting at position `.0`) with the records of each run.
fn merge_range(
    mut part: Vec<RangePart<'_>>,
    base: &[usize],
    owners_of: &[&Vec<Option<Name>>],
    runs_of: &[&Vec<Run>],
) -> Built {
    let owner = |c: usize, r: u32| -> &Name {
        match &owners_of[c][runs_of[c][r as usize].owner as usize] {
            Some(n) => n,
            None => unreachable_owner(),
        }
    };
    // the merge order first (shared borrows), then the nodes (moving the records out)
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut bounds: Vec<usize> = Vec::new();
    {
        let mut heap = BinaryHeap::with_capacity(part.len());
        for (ci, (_, v)) in part.iter().enumerate() {
            if let Some((r, _)) = v.first() {
                heap.push(Head {
                    name: owner(ci, *r),
                    chunk: ci,
                    pos: 0,
                });
            }
        }
        let mut prev: Option<&Name> = None;
        while let Some(h) = heap.pop() {
            if prev != Some(h.name) {
                bounds.push(groups.len());
                prev = Some(h.name);
            }
            groups.push((h.chunk, h.pos));
            if let Some((r, _)) = part[h.chunk].1.get(h.pos + 1) {
                heap.push(Head {
                    name: owner(h.chunk, *r),
                    chunk: h.chunk,
                    pos: h.pos + 1,
                });
            }
        }
    }
    bounds.push(groups.len());
    let mut warnings = Vec::new();
    let mut nodes: Vec<(Name, Node)> = Vec::with_capacity(bounds.len().saturating_sub(1));
    for w in bounds.windows(2) {
        let group = &groups[w[0]..w[1]];
        let run_no = |&(c, pos): &(usize, usize)| base[c] + part[c].1[pos].0 as usize;
        // the key keeps the spelling of the first record of the last stretch of adjacent runs
        let mut key = group[0];
        for pair in group.windows(2) {
            if run_no(&pair[1]) != run_no(&pair[0]) + 1 {
                key = pair[1];
            }
        }
        let name = owner(key.0, part[key.0].1[key.1].0).clone();
        let mut node = Node::default();
        for &(ci, pos) in group {
            let recs = &mut part[ci].1[pos].1;
            for slot in recs.iter_mut() {
                let rec = std::mem::replace(
                    slot,
                    Raw {
                        owner: 0,
                        rtype: 0,
                        ttl: 0,
                        line: 0,
                        rdata: Vec::new(),
                    },
                );
                let rec_owner = match &owners_of[ci][rec.owner as usize] {
                    Some(n) => n,
                    None => unreachable_owner(),
                };
                add_record(&mut node, rec_owner, rec, &mut warnings);
            }
        }
        nodes.push((name, node));
    }
    (nodes, warnings)
}

/// `Zone::from_records` for one record of a node (after the per-record checks).
fn add_record(node: &mut Node, owner: &Name, rec: Raw, warnings: &mut Vec<(u32, String)>) {
    if rec.rtype == t::RRSIG {
        let covered = match rec.rdata.get(..2) {
            Some(b) => u16::from_be_bytes([b[0], b[1]]),
            None => 0,
        };
        node.sigs.push(Sig {
            covered,
            ttl: rec.ttl,
            rdata: rec.rdata,
        });
        return;
    }
    match node.rrsets.binary_search_by_key(&rec.rtype, |r| r.rtype) {
        Ok(j) => {
            let set = &mut node.rrsets[j];
            let canon = rdata::canonical(rec.rtype, &rec.rdata);
            if set
                .rdatas
                .iter()
                .any(|r| rdata::canonical(rec.rtype, r) == canon)
            {
                // RFC 2181 §5: duplicates are one record
                return;
            }
            if set.ttl != rec.ttl {
                warnings.push((
                    rec.line,
                    format!(
                        "{} {}: TTL {} differs from the RRset's TTL {} (RFC 2181 §5.2); using {}",
                        owner,
                        rtype::type_name(rec.rtype),
                        rec.ttl,
                        set.ttl,
                        set.ttl
                    ),
                ));
            }
            drop(canon);
            set.rdatas.push(rec.rdata);
        }
        Err(j) => node.rrsets.insert(
            j,
            RRset {
                rtype: rec.rtype,
                ttl: rec.ttl,
                rdatas: vec![rec.rdata],
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load_zone_with, parse_str, zone_from_parsed};
    use crate::dns::name::Name;

    fn origin() -> Name {
        Name::parse("example.com.", None).unwrap()
    }

    /// Loads `text` sequentially, through `Zone::from_records`, and in parallel with chunks of
    /// every size from 1 to 200 octets; all must give the same zone, warnings and errors.
    fn same_both_ways(text: &str) {
        let dir =
            std::env::temp_dir().join(format!("signet-load-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("z.zone");
        std::fs::write(&f, text).unwrap();
        let seq = load_zone_with(&f, &origin(), 1, usize::MAX);
        // the sequential path is parse + Zone::from_records
        let direct = match parse_str(text, &f, &origin()) {
            Ok(p) => zone_from_parsed(p, &origin()),
            Err(es) => Err(es.iter().map(|e| e.to_string()).collect()),
        };
        assert_eq!(seq, direct);
        for chunk in [1, 2, 3, 7, 20, 50, 200] {
            for threads in [2, 3] {
                let par = load_zone_with(&f, &origin(), threads, chunk);
                assert_eq!(par, seq, "chunk {chunk}, {threads} threads:\n{text}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parallel_load_equals_sequential() {
        let head = "$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n";
        for body in [
            // plain, blank owners, parentheses over lines, comments, quotes with newlines
            "a A 192.0.2.2\n  AAAA 2001:db8::1\nb TXT ( \"x\" ; c\n \"y\" )\nc MX 10 a\nd TXT \"l1\nl2\"\n",
            // the same owner in several places, in different case; duplicates; TTL differences
            "www A 192.0.2.1\nx A 192.0.2.9\nWWW A 192.0.2.1\nwww 60 A 192.0.2.3\nWwW TXT t\nx 60 A 192.0.2.8\nx A 192.0.2.9\n",
            "q A 192.0.2.1\nQ TXT a\nq 10 TXT b\nQ AAAA ::1\n",
            // $ORIGIN changes and relative names, $TTL changes, an RRSIG in the input
            "$ORIGIN sub.example.com.\n@ NS ns\nns A 192.0.2.4\n$ORIGIN example.com.\n$TTL 60\nz A 192.0.2.5\nz RRSIG A 13 3 60 20300101000000 20200101000000 1 example.com. AAAA\n",
            // problems: outside the zone, CNAME beside data, class, forbidden type
            "www.example.org. A 1.2.3.4\nc CNAME x\nc A 1.2.3.4\nk CH A 1.2.3.4\nm A 1.2.3.4\n",
            // parse errors in several places
            "a A 1.2.3\nb A 192.0.2.1\nc BOGUS x\nd A 192.0.2.2\n e\n",
            // a lexical error after good records
            "a A 192.0.2.1\nb TXT \"open\n",
            "a A 192.0.2.1\nb A ( 192.0.2.2\n",
            "a A 192.0.2.1 )\n",
        ] {
            same_both_ways(&format!("{head}{body}"));
        }
        // no $TTL: records take the previous TTL; no SOA
        same_both_ways("@ 300 SOA ns h 1 2 3 4 5\n@ NS ns\na 60 A 192.0.2.1\nb A 192.0.2.2\n");
        same_both_ways("$TTL 300\n@ NS ns\na A 192.0.2.1\nb A 192.0.2.2\n");
        // a record dropped as outside the zone does not split its neighbours' run
        same_both_ways(&format!(
            "{head}Aa A 192.0.2.1\nx.org. A 192.0.2.1\naa TXT t\nbb A 192.0.2.1\naa AAAA ::1\n"
        ));
        // many names, interleaved
        let mut big = head.to_string();
        for i in 0..300 {
            big.push_str(&format!("n{} A 192.0.2.{}\n", i % 37, i % 250));
            big.push_str(&format!("N{} TXT \"t{}\"\n", i % 11, i));
        }
        same_both_ways(&big);
    }
}
