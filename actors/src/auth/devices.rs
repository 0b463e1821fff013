//! Paired devices, persisted at `<stateDir>/devices/paired.json` (0600, atomic writes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::state::write_private_atomic;

/// One approved device: the `device.pair.list` `paired` entry (PROTOCOL-NODES §5) as far
/// as this gateway has the data, and the `paired.json` record. Never holds tokens. Fields
/// added after the first release are `#[serde(default)]` so older files still load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    /// sha256(publicKey) hex.
    pub device_id: String,
    /// Raw key, base64url.
    pub public_key: String,
    /// `client.displayName` at approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `client.platform` at approval.
    pub platform: String,
    /// `client.deviceFamily` at approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_family: Option<String>,
    /// `client.id` at approval.
    pub client_id: String,
    /// `client.mode` at approval.
    #[serde(default)]
    pub client_mode: String,
    /// Role approved.
    pub role: String,
    /// Roles approved (`[role]`).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Scopes approved.
    pub scopes: Vec<String>,
    /// Peer address at approval.
    pub remote_ip: String,
    /// `silent` (local auto-approval) or `owner` (`device.pair.approve`).
    pub approved_via: String,
    /// When this record was created (0 in files written before the field existed).
    #[serde(default)]
    pub created_at_ms: i64,
    /// When approved.
    pub approved_at_ms: i64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_from_before_the_new_fields_still_loads() {
        let dir = std::env::temp_dir().join(format!("oc-devices-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("devices")).unwrap();
        let old = r#"{"abc":{"deviceId":"abc","publicKey":"k","role":"operator",
            "scopes":["operator.read"],"clientId":"cli","platform":"linux",
            "approvedAtMs":5,"approvedVia":"silent","remoteIp":"127.0.0.1"}}"#;
        std::fs::write(dir.join("devices/paired.json"), old).unwrap();
        let store = DeviceStore::load(&dir);
        let d = &store.devices["abc"];
        assert_eq!((d.approved_via.as_str(), d.approved_at_ms), ("silent", 5));
        assert_eq!(
            (d.created_at_ms, d.roles.len(), d.display_name.as_deref()),
            (0, 0, None)
        );
        assert!(
            dir.join("devices/paired.json").exists(),
            "not moved aside as corrupt"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
