//! The zone task's side of multi-signer (RFC 8901 model 2): the overlay it owns, the UPDATEs
//! it applies ([`crate::publisher::update`]), and the foreign keys `signet status`/`keys` list.
//! A child module of [`super::service`] so that the hooks there stay a few lines.

use super::ZoneTask;
use crate::dns::message::rcode;
use crate::dns::name::Name;
use crate::dns::rtype::t;
use crate::publisher::update::{self, EvalContext, UpdateJob, UpdateOutcome, UpdateRoute};
use crate::zone::overlay::Overlay;
use crate::zone::status::KeyStatus;
use tokio::sync::mpsc;

impl ZoneTask {
    /// At start: loads the overlay and tells the publisher where this zone's UPDATEs go (or
    /// that it takes none). Returns the receiver the zone task reads UPDATEs from.
    pub(super) fn start_updates(&mut self) -> Option<mpsc::Receiver<UpdateJob>> {
        self.overlay = Overlay::load(&self.dir);
        if let Err(e) = &self.overlay {
            tracing::error!(zone = %self.zone.name, error = %e, "the multi-signer overlay cannot be read: not signing until it is fixed (the last signed version keeps being served)");
        }
        let Some(policy) = self.zone.update.clone() else {
            self.publisher.set_update_route(&self.origin, None);
            return None;
        };
        let keys: Vec<Name> = policy
            .keys
            .iter()
            .filter_map(|k| Name::parse(k, Some(&Name::root())).ok())
            .collect();
        let (tx, rx) = mpsc::channel(update::UPDATE_QUEUE);
        self.publisher
            .set_update_route(&self.origin, Some(UpdateRoute { keys, tx }));
        Some(rx)
    }

    /// The overlay to merge at the next signing, or why there is none.
    pub(super) fn overlay_for_signing(&self) -> Result<Overlay, String> {
        self.overlay
            .clone()
            .map_err(|e| format!("multi-signer overlay unusable: {e}"))
    }

    /// Applies one UPDATE (see [`crate::publisher::update`]) and answers it: prerequisites,
    /// policy, overlay stored (temp + fsync + rename), then a new signed version published;
    /// the previous overlay is put back if that fails.
    pub async fn update(&mut self, job: UpdateJob) {
        let outcome = self.apply_update(&job).await;
        self.report();
        let _ = job.reply.send(outcome);
    }

    async fn apply_update(&mut self, job: &UpdateJob) -> UpdateOutcome {
        let fail = |m: String| UpdateOutcome::new(rcode::SERVFAIL, m);
        let Some(policy) = self.zone.update.clone() else {
            return UpdateOutcome::new(rcode::REFUSED, "the zone has no `update` option");
        };
        let old = match &self.overlay {
            Ok(o) => o.clone(),
            Err(e) => return fail(format!("the overlay cannot be read: {e}")),
        };
        let Some(served) = self.current.clone() else {
            return fail("the zone is not signed yet".into());
        };
        if self.unsigned.is_none() {
            return fail("no unsigned version to sign yet".into());
        }
        let own_dnskeys: Vec<Vec<u8>> = served
            .zone
            .nodes
            .get(&self.origin)
            .and_then(|n| n.get(t::DNSKEY))
            .map(|s| {
                s.rdatas
                    .iter()
                    .filter(|k| !old.contains(t::DNSKEY, k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let mut own_tags: Vec<u16> = own_dnskeys
            .iter()
            .map(|k| crate::keystore::key_tag(k))
            .collect();
        let mut own_algorithms: Vec<u8> = own_dnskeys
            .iter()
            .filter_map(|k| k.get(3).copied())
            .collect();
        if let Some(st) = &self.kstate {
            own_tags.extend(st.keys.iter().map(|k| k.key.tag));
            own_algorithms.extend(st.keys.iter().map(|k| k.key.algorithm));
        }
        let cx = EvalContext {
            served: &served.zone,
            types: &policy.types,
            own_tags: &own_tags,
            own_algorithms: &own_algorithms,
            own_dnskeys: &own_dnskeys,
            now: self.clock.now(),
        };
        let (new, changes) = match update::evaluate(job, &old, &cx) {
            Ok(v) => v,
            Err(refusal) => return refusal,
        };
        if changes.is_empty() {
            return UpdateOutcome::new(rcode::NOERROR, "nothing to change");
        }
        if let Err(e) = new.save(&self.dir) {
            return fail(e);
        }
        self.overlay = Ok(new);
        let now = self.clock.now();
        match self.sign_and_publish_with(now, false).await {
            Ok(m) => UpdateOutcome::new(
                rcode::NOERROR,
                format!("by key {}: {}; {m}", job.key, changes.join(", ")),
            ),
            Err(e) => {
                // all or nothing: the previous overlay again, on disk and here
                if let Err(e2) = old.save(&self.dir) {
                    tracing::error!(zone = %self.zone.name, error = %e2, "cannot restore the previous overlay");
                }
                self.overlay = Ok(old);
                fail(format!("signing with the update failed: {e}"))
            }
        }
    }

    /// The foreign DNSKEYs as `signet status` / `keys` list them: role `foreign`, who
    /// injected each and when.
    pub(super) fn foreign_key_status(&self) -> Vec<KeyStatus> {
        let Ok(o) = &self.overlay else {
            return Vec::new();
        };
        o.foreign_keys()
            .map(|k| {
                let rd = k.wire();
                let flags = rd
                    .get(..2)
                    .map(|f| u16::from_be_bytes([f[0], f[1]]))
                    .unwrap_or(0);
                KeyStatus {
                    tag: crate::keystore::key_tag(&rd),
                    role: "foreign".into(),
                    algorithm: rd.get(3).copied().unwrap_or(0),
                    keystore: "-".into(),
                    state: format!(
                        "foreign {} injected by key {} from {}",
                        if flags & 1 == 1 { "KSK" } else { "ZSK" },
                        k.key,
                        if k.source.is_empty() { "?" } else { &k.source }
                    ),
                    created: k.added,
                    published: Some(k.added),
                    active: None,
                    retired: None,
                    removed: None,
                    goal: "foreign".into(),
                    ..Default::default()
                }
            })
            .collect()
    }
}

/// How often a rollover held for the other signers asks them again.
pub const PEER_POLL_INTERVAL: u64 = 60;

/// A peer signer that does not answer a DNSKEY query within this long counts as not
/// publishing anything (the hold stays): a dead peer must not let a new ZSK sign unseen.
pub const PEER_QUERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// What the other signers publish of signet's own keys (issue 7 point 4): for each of our
/// keys (tag, algorithm), when it was first seen in the DNSKEY RRset of **every** peer. Kept in
/// memory: after a restart the wait starts again, which is only longer, never unsafe.
#[derive(Debug, Clone, Default)]
pub struct PeerState {
    seen: std::collections::BTreeMap<(u16, u8), u64>,
    /// Why the last poll failed for some peer, if it did.
    errors: Vec<String>,
}

/// The hold handed to [`crate::kasp::step_held`]: a new zone-signing key may sign once every
/// peer has published it for `wait` seconds (their DNSKEY TTL plus propagation: a resolver may
/// hold a peer's older DNSKEY RRset that long).
#[derive(Debug, Clone)]
pub struct PeerHold {
    pub seen: std::collections::BTreeMap<(u16, u8), u64>,
    pub peers: usize,
    pub wait: u64,
    pub now: u64,
}

impl PeerHold {
    pub fn reason(&self, k: &crate::kasp::KeyEntry) -> Option<String> {
        match self.seen.get(&(k.key.tag, k.key.algorithm)) {
            Some(t) if t + self.wait <= self.now => None,
            Some(t) => Some(format!(
                "published by all {} other signers since {}, waits until {} (dnskey-ttl + zone-propagation-delay + publish-safety)",
                self.peers,
                crate::kasp::fmt_time(*t),
                crate::kasp::fmt_time(t + self.wait)
            )),
            None => Some(format!(
                "waits for the {} other signers (update.peers) to publish it in their DNSKEY RRsets",
                self.peers
            )),
        }
    }
}

/// The (tag, algorithm) of every DNSKEY `peer` serves for `zone`, by a TCP query.
async fn peer_dnskeys(
    peer: std::net::SocketAddr,
    zone: &Name,
) -> Result<std::collections::BTreeSet<(u16, u8)>, String> {
    use crate::dns::message::{build_query, opcode, Message};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut s = tokio::net::TcpStream::connect(peer)
            .await
            .map_err(|e| e.to_string())?;
        let id = (std::process::id() as u16) ^ 0x5a5a;
        let q = build_query(id, opcode::QUERY, zone, t::DNSKEY, None);
        let mut frame = (q.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&q);
        s.write_all(&frame).await.map_err(|e| e.to_string())?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        let m = Message::parse(&buf).map_err(|e| e.to_string())?;
        if m.header.id != id || m.rcode() != rcode::NOERROR {
            return Err(format!(
                "answer {} (id {})",
                rcode::name(m.rcode()),
                m.header.id
            ));
        }
        Ok(m.answers
            .iter()
            .filter(|r| r.rtype == t::DNSKEY && &r.owner == zone && r.rdata.len() > 4)
            .map(|r| (crate::keystore::key_tag(&r.rdata), r.rdata[3]))
            .collect())
    };
    tokio::time::timeout(PEER_QUERY_TIMEOUT, work)
        .await
        .map_err(|_| "no answer".to_string())?
}

impl ZoneTask {
    /// With `update.peers`: asks every peer for its DNSKEY RRset and returns the hold for the
    /// key state machine (see [`PeerHold`]); `None` without peers.
    pub(super) async fn peer_hold(&mut self, now: u64) -> Option<PeerHold> {
        let peers = self
            .zone
            .update
            .as_ref()
            .map(|u| u.peers.clone())
            .unwrap_or_default();
        if peers.is_empty() {
            return None;
        }
        let mut everywhere: Option<std::collections::BTreeSet<(u16, u8)>> = None;
        let mut errors = Vec::new();
        for p in &peers {
            let set = match peer_dnskeys(*p, &self.origin).await {
                Ok(s) => s,
                Err(e) => {
                    errors.push(format!("peer {p}: {e}"));
                    Default::default()
                }
            };
            everywhere = Some(match everywhere {
                None => set,
                Some(e) => e.intersection(&set).copied().collect(),
            });
        }
        let everywhere = everywhere.unwrap_or_default();
        if !errors.is_empty() && errors != self.peers.errors {
            tracing::warn!(zone = %self.zone.name, errors = %errors.join("; "), "multi-signer peers: DNSKEY query failed");
        }
        self.peers.errors = errors;
        self.peers.seen.retain(|k, _| everywhere.contains(k));
        for k in everywhere {
            self.peers.seen.entry(k).or_insert(now);
        }
        let p = self.policy();
        Some(PeerHold {
            seen: self.peers.seen.clone(),
            peers: peers.len(),
            wait: p
                .dnskey_ttl
                .saturating_add(p.zone_propagation_delay)
                .saturating_add(p.publish_safety),
            now,
        })
    }

    /// The hold as last polled, at `now` (for steps that cannot wait for the network).
    pub(super) fn last_peer_hold(&self, now: u64) -> Option<PeerHold> {
        let peers = self
            .zone
            .update
            .as_ref()
            .map(|u| u.peers.len())
            .unwrap_or(0);
        if peers == 0 {
            return None;
        }
        let p = self.policy();
        Some(PeerHold {
            seen: self.peers.seen.clone(),
            peers,
            wait: p
                .dnskey_ttl
                .saturating_add(p.zone_propagation_delay)
                .saturating_add(p.publish_safety),
            now,
        })
    }
}
