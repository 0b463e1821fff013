//! Pending device-pairing requests (PROTOCOL-NODES §5, §5.1): one per device, kept while the
//! device retries and forgotten 5 minutes after its last retry; a changed key, role or scope
//! set is a new request with a new `requestId`. Also the approval rule (a non-operator role
//! needs `operator.admin`) and the record an approval stores. Pure: `now` is passed in.

use std::collections::HashMap;

use serde::Serialize;

use super::devices::PairedDevice;
use crate::protocol::scopes::{satisfies, ADMIN};

/// How long a pending request lives after the device's last retry
/// (`DEVICE_PAIRING_PENDING_TTL_MS` of the real gateway).
pub const DEVICE_PAIRING_PENDING_TTL_MS: i64 = 300_000;

/// Most pending requests kept. Past it the request with the oldest last retry is evicted, so
/// a flood of fresh keys from unpaired clients costs at most this many entries (~1 KiB each)
/// and can only push out other stale requests.
pub const MAX_PENDING: usize = 1_024;

/// A pending request: the `device.pair.list` entry and the `device.pair.requested` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRequest {
    /// uuid; kept while the device retries with the same key, role and scopes.
    pub request_id: String,
    /// sha256(publicKey) hex.
    pub device_id: String,
    /// Raw key, base64url.
    pub public_key: String,
    /// `client.displayName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `client.platform`.
    pub platform: String,
    /// `client.deviceFamily`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// Requested role.
    pub role: String,
    /// `[role]`.
    pub roles: Vec<String>,
    /// Requested scopes, in the order sent.
    pub scopes: Vec<String>,
    /// Where the device connected from.
    pub remote_ip: String,
    /// Always false here (silent approvals never become pending).
    pub silent: bool,
    /// Always false here (no per-role token revocation yet).
    pub is_repair: bool,
    /// Last retry, ms since the epoch; the TTL counts from here.
    pub ts: i64,
}

/// What [`PendingRequests::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new request (first attempt, or the key, role or scopes changed).
    Created,
    /// The same request retried: its `ts` moved to now.
    Refreshed,
}

/// The pending table, one request per device id, at most [`MAX_PENDING`].
#[derive(Debug, Default)]
pub struct PendingRequests {
    by_device: HashMap<String, PendingRequest>,
}

// === impl PendingRequest ===

impl PendingRequest {
    /// Same key, role and scope set (order ignored) as `other`.
    fn same_ask(&self, other: &PendingRequest) -> bool {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v.dedup();
            v
        };
        self.public_key == other.public_key
            && self.role == other.role
            && sorted(&self.scopes) == sorted(&other.scopes)
    }

    /// Whether the request has expired at `now`.
    fn expired(&self, now: i64) -> bool {
        now.saturating_sub(self.ts) >= DEVICE_PAIRING_PENDING_TTL_MS
    }

    /// The record stored when this request is approved `via` (`owner`, …) at `now`.
    pub fn approve(&self, via: &str, now: i64) -> PairedDevice {
        PairedDevice {
            device_id: self.device_id.clone(),
            public_key: self.public_key.clone(),
            display_name: self.display_name.clone(),
            platform: self.platform.clone(),
            device_family: self.device_family.clone(),
            client_id: self.client_id.clone(),
            client_mode: self.client_mode.clone(),
            role: self.role.clone(),
            roles: self.roles.clone(),
            scopes: self.scopes.clone(),
            remote_ip: self.remote_ip.clone(),
            approved_via: via.to_string(),
            created_at_ms: now,
            approved_at_ms: now,
        }
    }
}

// === impl PendingRequests ===

impl PendingRequests {
    /// Records an attempt by `ask.device_id` at `now`. A retry of the same ask keeps its
    /// `requestId` (the other fields, e.g. `remoteIp`, are refreshed); anything else stores
    /// `ask` as is, with `ts = now`. Returns the stored request and what happened.
    pub fn upsert(&mut self, mut ask: PendingRequest, now: i64) -> (PendingRequest, Upsert) {
        self.prune(now);
        ask.ts = now;
        let outcome = match self.by_device.get(&ask.device_id) {
            Some(old) if old.same_ask(&ask) => {
                ask.request_id = old.request_id.clone();
                Upsert::Refreshed
            }
            _ => Upsert::Created,
        };
        self.by_device.insert(ask.device_id.clone(), ask.clone());
        while self.by_device.len() > MAX_PENDING {
            self.evict_oldest(&ask.device_id);
        }
        (ask, outcome)
    }

    /// Forgets requests whose last retry is a TTL or more before `now`.
    pub fn prune(&mut self, now: i64) {
        self.by_device.retain(|_, r| !r.expired(now));
    }

    /// Live requests at `now`, oldest first.
    pub fn list(&mut self, now: i64) -> Vec<PendingRequest> {
        self.prune(now);
        let mut v: Vec<_> = self.by_device.values().cloned().collect();
        v.sort_by(|a, b| (a.ts, &a.request_id).cmp(&(b.ts, &b.request_id)));
        v
    }

    /// The live request with this id.
    pub fn get(&mut self, request_id: &str, now: i64) -> Option<&PendingRequest> {
        self.prune(now);
        self.by_device.values().find(|r| r.request_id == request_id)
    }

    /// Removes and returns the live request with this id.
    pub fn take(&mut self, request_id: &str, now: i64) -> Option<PendingRequest> {
        self.prune(now);
        let device = self
            .by_device
            .values()
            .find(|r| r.request_id == request_id)?
            .device_id
            .clone();
        self.by_device.remove(&device)
    }

    /// Drops the request of a device (it was approved another way).
    pub fn remove_device(&mut self, device_id: &str) {
        self.by_device.remove(device_id);
    }

    /// Number of requests held (expired ones included until the next prune).
    pub fn len(&self) -> usize {
        self.by_device.len()
    }

    /// Whether no request is held.
    pub fn is_empty(&self) -> bool {
        self.by_device.is_empty()
    }

    /// Evicts the request with the oldest last retry, never `keep`.
    fn evict_oldest(&mut self, keep: &str) {
        let oldest = self
            .by_device
            .values()
            .filter(|r| r.device_id != keep)
            .min_by_key(|r| r.ts)
            .map(|r| r.device_id.clone());
        if let Some(id) = oldest {
            self.by_device.remove(&id);
        }
    }
}

/// Whether a caller with `caller_scopes` may approve a request for `role`: `operator` needs
/// only `operator.pairing` (checked before dispatch); any other role also `operator.admin`.
pub fn approval_allowed(role: &str, caller_scopes: &[String]) -> bool {
    role == "operator" || satisfies(caller_scopes, ADMIN)
}

#[cfg(test)]
mod tests;
