//! The RRSIG signing input (RFC 4034 §3.1.8.1, §6.2, §6.3).
//!
//! `signature = sign(RRSIG_RDATA | RR(1) | RR(2) | …)` where RRSIG_RDATA is the RRSIG RDATA
//! without the signature (signer's name in lowercase) and each RR is
//! `owner | type | class | original TTL | RDLENGTH | RDATA` in canonical form: owner lowercased,
//! names inside the RDATA of the types listed in RFC 4034 §6.2 lowercased (not NSEC: RFC 6840
//! §5.1), RRs sorted by their canonical RDATA as left-justified octet strings, duplicates
//! removed.

use crate::dns::name::Name;
use crate::dns::rdata;
use crate::zone::data::RRset;

/// The RRSIG RDATA up to (not including) the signature.
#[allow(clippy::too_many_arguments)]
pub fn rrsig_header(
    covered: u16,
    algorithm: u8,
    labels: u8,
    original_ttl: u32,
    expiration: u32,
    inception: u32,
    key_tag: u16,
    signer: &Name,
) -> Vec<u8> {
    let mut rd = Vec::with_capacity(18 + signer.wire_len() + 96);
    rd.extend_from_slice(&covered.to_be_bytes());
    rd.push(algorithm);
    rd.push(labels);
    rd.extend_from_slice(&original_ttl.to_be_bytes());
    rd.extend_from_slice(&expiration.to_be_bytes());
    rd.extend_from_slice(&inception.to_be_bytes());
    rd.extend_from_slice(&key_tag.to_be_bytes());
    rd.extend(signer.as_wire().iter().map(|b| b.to_ascii_lowercase()));
    rd
}

/// Length of the RRSIG header part of an RRSIG RDATA (everything before the signature).
pub fn rrsig_header_len(rrsig: &[u8]) -> Option<usize> {
    crate::dns::wire::name_len(rrsig, 18)
}

/// Appends the signing input for `set` at `owner` to `buf`, given the RRSIG header.
pub fn signing_input(buf: &mut Vec<u8>, header: &[u8], owner: &Name, set: &RRset) {
    // RFC 4034 §6.2 item 5 would lowercase the header's signer name: rrsig_header already did,
    // and for verification of foreign signatures we lowercase here again.
    let hl = header.len();
    buf.extend_from_slice(header);
    if hl > 18 {
        buf[18..hl].make_ascii_lowercase();
    }
    let owner = owner.as_wire();
    let push_rr = |buf: &mut Vec<u8>, rd: &[u8]| {
        buf.extend(owner.iter().map(|b| b.to_ascii_lowercase()));
        buf.extend_from_slice(&set.rtype.to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes());
        buf.extend_from_slice(&set.ttl.to_be_bytes());
        buf.extend_from_slice(&(rd.len() as u16).to_be_bytes());
        buf.extend_from_slice(rd);
    };
    // most RRsets hold one record: no sorting, no list
    if let [only] = set.rdatas.as_slice() {
        push_rr(buf, &rdata::canonical(set.rtype, only));
        return;
    }
    let mut rds: Vec<std::borrow::Cow<'_, [u8]>> = set
        .rdatas
        .iter()
        .map(|r| rdata::canonical(set.rtype, r))
        .collect();
    rds.sort_unstable();
    rds.dedup();
    for rd in rds {
        push_rr(buf, &rd);
    }
}
