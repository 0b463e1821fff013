//! Command-surface approval (PROTOCOL-NODES §2.3): the approved surface of each node,
//! persisted at `<stateDir>/nodes/paired.json` (0600, atomic writes), and the pending
//! surface requests (memory only, one per node, bounded). Pure apart from load/persist.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::write_private_atomic;

/// Most pending surface requests kept; past it the oldest is evicted.
pub const MAX_PENDING: usize = 256;

/// An approved node surface: the `node.pair.list` `paired` entry and the file record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovedNode {
    /// Device id.
    pub node_id: String,
    /// Name shown to operators (`node.rename` changes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `client.platform`.
    pub platform: String,
    /// `client.version`.
    pub version: String,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// `client.deviceFamily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// Approved capabilities.
    pub caps: Vec<String>,
    /// Approved commands.
    pub commands: Vec<String>,
    /// Where it connected from at approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// First approval.
    pub created_at_ms: i64,
    /// Last approval.
    pub approved_at_ms: i64,
}

/// A pending surface request: the `node.pair.list` `pending` entry and the
/// `node.pair.requested` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SurfaceRequest {
    /// uuid; kept while the node asks for the same surface.
    pub request_id: String,
    /// Device id.
    pub node_id: String,
    /// `client.id`.
    pub client_id: String,
    /// `client.mode`.
    pub client_mode: String,
    /// `client.displayName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `client.platform`.
    pub platform: String,
    /// `client.version`.
    pub version: String,
    /// `client.deviceFamily`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// Declared capabilities.
    pub caps: Vec<String>,
    /// Declared commands the policy lets it expose.
    pub commands: Vec<String>,
    /// Scopes an approver needs.
    pub required_approve_scopes: Vec<String>,
    /// Local node (its device was approved silently).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent: Option<bool>,
    /// Where it connects from (non-local nodes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// When asked (ms since the epoch).
    pub ts: i64,
}

/// The surface store.
#[derive(Debug, Default)]
pub struct SurfaceStore {
    path: PathBuf,
    /// Approved nodes by id.
    pub approved: BTreeMap<String, ApprovedNode>,
    /// Pending requests by node id.
    pub pending: HashMap<String, SurfaceRequest>,
}

// === impl SurfaceRequest ===

impl SurfaceRequest {
    /// The record an approval at `now` stores (keeping the first approval time of `old`).
    pub fn approve(&self, old: Option<&ApprovedNode>, now: i64) -> ApprovedNode {
        ApprovedNode {
            node_id: self.node_id.clone(),
            display_name: old
                .and_then(|o| o.display_name.clone())
                .or_else(|| self.display_name.clone()),
            platform: self.platform.clone(),
            version: self.version.clone(),
            client_id: self.client_id.clone(),
            client_mode: self.client_mode.clone(),
            device_family: self.device_family.clone(),
            caps: self.caps.clone(),
            commands: self.commands.clone(),
            remote_ip: self.remote_ip.clone(),
            created_at_ms: old.map_or(now, |o| o.created_at_ms),
            approved_at_ms: now,
        }
    }
}

// === impl SurfaceStore ===

impl SurfaceStore {
    /// Loads the approved surfaces; a corrupt file is moved aside (nodes then ask again,
    /// which fails closed).
    pub fn load(state_dir: &Path) -> Self {
        let path = state_dir.join("nodes").join("paired.json");
        let approved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                let aside =
                    path.with_extension(format!("json.corrupt-{}", crate::shared::now_ms()));
                tracing::error!(path = %path.display(), error = %e, moved_to = %aside.display(),
                    "approved node file is corrupt; moved aside, nodes must be approved again");
                let _ = std::fs::rename(&path, &aside);
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        Self {
            path,
            approved,
            pending: HashMap::new(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serialized approved surfaces.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.approved).unwrap_or_default()
    }

    /// Writes `bytes` atomically, 0600 (call from a blocking task).
    pub fn persist(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        write_private_atomic(path, bytes)
    }

    /// Whether `caps`/`commands` lie within the approved surface of `node_id`.
    pub fn covers(&self, node_id: &str, caps: &[String], commands: &[String]) -> bool {
        self.approved.get(node_id).is_some_and(|a| {
            caps.iter().all(|c| a.caps.contains(c))
                && commands.iter().all(|c| a.commands.contains(c))
        })
    }

    /// Records a request for `ask.node_id`: the same surface asked again keeps its
    /// `requestId` and `ts`; a different one replaces it. Returns the stored request and
    /// whether it is new.
    pub fn request(&mut self, mut ask: SurfaceRequest) -> (SurfaceRequest, bool) {
        if let Some(old) = self.pending.get(&ask.node_id) {
            if old.caps == ask.caps && old.commands == ask.commands {
                ask.request_id = old.request_id.clone();
                ask.ts = old.ts;
                self.pending.insert(ask.node_id.clone(), ask.clone());
                return (ask, false);
            }
        }
        self.pending.insert(ask.node_id.clone(), ask.clone());
        while self.pending.len() > MAX_PENDING {
            let oldest = self
                .pending
                .values()
                .filter(|r| r.node_id != ask.node_id)
                .min_by_key(|r| r.ts)
                .map(|r| r.node_id.clone());
            match oldest {
                Some(id) => self.pending.remove(&id),
                None => break,
            };
        }
        (ask, true)
    }

    /// Removes and returns the pending request with this id.
    pub fn take_request(&mut self, request_id: &str) -> Option<SurfaceRequest> {
        let node = self
            .pending
            .values()
            .find(|r| r.request_id == request_id)?
            .node_id
            .clone();
        self.pending.remove(&node)
    }

    /// The pending request with this id.
    pub fn find_request(&self, request_id: &str) -> Option<&SurfaceRequest> {
        self.pending.values().find(|r| r.request_id == request_id)
    }

    /// Pending requests, oldest first.
    pub fn pending_list(&self) -> Vec<&SurfaceRequest> {
        let mut v: Vec<_> = self.pending.values().collect();
        v.sort_by(|a, b| (a.ts, &a.request_id).cmp(&(b.ts, &b.request_id)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(node: &str, commands: &[&str], ts: i64) -> SurfaceRequest {
        SurfaceRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            node_id: node.into(),
            client_id: "node-host".into(),
            client_mode: "node".into(),
            display_name: Some("n".into()),
            platform: "linux".into(),
            version: "1".into(),
            device_family: None,
            caps: vec!["system".into()],
            commands: commands.iter().map(|c| c.to_string()).collect(),
            required_approve_scopes: vec![],
            silent: None,
            remote_ip: None,
            ts,
        }
    }

    #[test]
    fn the_same_ask_keeps_its_request_id_a_new_surface_gets_a_new_one() {
        let mut s = SurfaceStore::default();
        let (a, new) = s.request(ask("n1", &["system.which"], 1));
        assert!(new);
        let (b, new) = s.request(ask("n1", &["system.which"], 2));
        assert!(!new);
        assert_eq!((b.request_id.as_str(), b.ts), (a.request_id.as_str(), 1));
        let (c, new) = s.request(ask("n1", &["system.which", "system.run"], 3));
        assert!(new);
        assert_ne!(c.request_id, a.request_id);
        assert_eq!(s.pending.len(), 1);
    }

    #[test]
    fn approval_covers_subsets_only_and_pending_is_bounded() {
        let mut s = SurfaceStore::default();
        let (r, _) = s.request(ask("n1", &["a", "b"], 1));
        let rec = s.take_request(&r.request_id).unwrap().approve(None, 10);
        s.approved.insert("n1".into(), rec);
        let v = |x: &[&str]| x.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        assert!(s.covers("n1", &v(&["system"]), &v(&["a"])));
        assert!(!s.covers("n1", &v(&["system"]), &v(&["a", "c"])));
        assert!(!s.covers("n2", &[], &[]));
        for i in 0..(MAX_PENDING + 10) {
            s.request(ask(&format!("x{i}"), &["a"], i as i64));
        }
        assert_eq!(s.pending.len(), MAX_PENDING);
        assert!(!s.pending.contains_key("x0"), "oldest evicted");
    }
}
