//! What to publish now: the [`KeyPlan`] read off the key states, and the RFC 8078 DELETE
//! records.

use serde::{Deserialize, Serialize};

use super::state::{KeyRef, RecordKind, ZoneKeyState};

/// What the signed zone must contain now, derived from the key states alone. A record is in
/// the plan exactly when its state is rumoured or omnipresent.
///
/// Turning it into a signed zone (the zone task's job):
///
/// * the apex DNSKEY RRset is the DNSKEY of each key in `publish_dnskey`, nothing else;
/// * the DNSKEY RRset (and CDS, CDNSKEY) is signed by each key in `sign_dnskey`;
/// * every other RRset is signed by each key in `sign_zone` — all of them, in the version
///   published (signet's signer does: it signs every RRset with every zone-signing key it is
///   given, reusing a signature only for a key still in the set), so the timers need no
///   signing delay (RFC 7583 Dsgn = 0);
/// * a signing key need not be in `publish_dnskey`: during an algorithm rollover the new
///   algorithm signs before its DNSKEY appears, and the old one keeps signing after its DNSKEY
///   is gone (RFC 6781 §4.1.4); the signer must accept such keys (`ActiveKey` with its
///   DNSKEY left out of the RRset);
/// * CDS (one per `cds-digest-types`) and, with `publish-cdnskey`, CDNSKEY for each key in
///   `cds`; or, when `cds_delete`, the RFC 8078 DELETE records [`CDS_DELETE_RDATA`] /
///   [`CDNSKEY_DELETE_RDATA`] instead; none at all when both are empty/false;
/// * when `unsigned`, the zone is served without any DNSSEC record (the end of going insecure).
///
/// `want_ds` is what the parent should hold now (`signet ds`, checkds): the DS of the keys in
/// `cds`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPlan {
    pub publish_dnskey: Vec<KeyRef>,
    pub sign_dnskey: Vec<KeyRef>,
    pub sign_zone: Vec<KeyRef>,
    pub cds: Vec<KeyRef>,
    pub cds_delete: bool,
    pub want_ds: Vec<KeyRef>,
    pub unsigned: bool,
}

impl KeyPlan {
    /// Every key the signer needs (published or signing), sorted.
    pub fn keys(&self) -> Vec<KeyRef> {
        let mut v: Vec<KeyRef> = self
            .publish_dnskey
            .iter()
            .chain(&self.sign_dnskey)
            .chain(&self.sign_zone)
            .copied()
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// For one key: (DNSKEY published, signs the DNSKEY RRset, signs the zone).
    pub fn usage(&self, key: KeyRef) -> (bool, bool, bool) {
        (
            self.publish_dnskey.contains(&key),
            self.sign_dnskey.contains(&key),
            self.sign_zone.contains(&key),
        )
    }
}

/// RFC 8078 §4 CDS DELETE: `CDS 0 0 0 00` (key tag 0, algorithm 0, digest type 0, one zero
/// octet of digest).
pub const CDS_DELETE_RDATA: [u8; 5] = [0, 0, 0, 0, 0];

/// RFC 8078 §4 CDNSKEY DELETE: `CDNSKEY 0 3 0 AA==` (flags 0, protocol 3, algorithm 0, one
/// zero octet of key).
pub const CDNSKEY_DELETE_RDATA: [u8; 5] = [0, 0, 3, 0, 0];

/// The plan of the current key states.
pub fn plan(state: &ZoneKeyState) -> KeyPlan {
    let with = |kind: RecordKind| -> Vec<KeyRef> {
        let mut v: Vec<KeyRef> = state
            .keys
            .iter()
            .filter(|k| k.state(kind).published())
            .map(|k| k.key)
            .collect();
        v.sort();
        v
    };
    let publish_dnskey = with(RecordKind::Dnskey);
    let sign_dnskey = with(RecordKind::Krrsig);
    let sign_zone = with(RecordKind::Zrrsig);
    let want_ds = with(RecordKind::Ds);
    let unsigned = publish_dnskey.is_empty() && sign_dnskey.is_empty() && sign_zone.is_empty();
    KeyPlan {
        cds: want_ds.clone(),
        cds_delete: state.insecure && !publish_dnskey.is_empty(),
        publish_dnskey,
        sign_dnskey,
        sign_zone,
        want_ds,
        unsigned,
    }
}
