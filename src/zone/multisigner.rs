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
                }
            })
            .collect()
    }
}
