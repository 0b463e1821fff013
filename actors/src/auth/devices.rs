//! Paired devices, persisted at `<stateDir>/devices/paired.json` (0600, atomic writes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::write_private_atomic;

/// One approved device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    /// sha256(publicKey) hex.
    pub device_id: String,
    /// Raw key, base64url.
    pub public_key: String,
    /// Role approved.
    pub role: String,
    /// Scopes approved.
    pub scopes: Vec<String>,
    /// `client.id` at approval.
    pub client_id: String,
    /// `client.platform` at approval.
    pub platform: String,
    /// When approved.
    pub approved_at_ms: i64,
    /// `silent` (local auto-approval) or `owner`.
    pub approved_via: String,
    /// Peer address at approval.
    pub remote_ip: String,
}

/// The store: an in-memory map mirrored to disk.
#[derive(Debug, Clone, Default)]
pub struct DeviceStore {
    path: PathBuf,
    /// Devices by id.
    pub devices: BTreeMap<String, PairedDevice>,
}

// === impl DeviceStore ===

impl DeviceStore {
    /// Loads the store; a corrupt file is moved aside (approvals are then re-requested,
    /// which fails closed) rather than overwritten.
    pub fn load(state_dir: &Path) -> Self {
        let path = state_dir.join("devices").join("paired.json");
        let devices = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(d) => d,
                Err(e) => {
                    let aside =
                        path.with_extension(format!("json.corrupt-{}", crate::shared::now_ms()));
                    tracing::error!(path = %path.display(), error = %e, moved_to = %aside.display(),
                        "paired device file is corrupt; moved aside, devices must pair again");
                    let _ = std::fs::rename(&path, &aside);
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        Self { path, devices }
    }

    /// The file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serialized contents, for a write off the actor.
    pub fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.devices).unwrap_or_default()
    }

    /// Writes `bytes` atomically (call from a blocking task).
    pub fn persist(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        write_private_atomic(path, bytes)
    }
}
