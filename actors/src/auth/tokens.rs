//! Device tokens (PROTOCOL-NODES §2.2): a paired device gets a token in `hello-ok` and may
//! later authenticate with it (`auth.deviceToken`) instead of the shared secret. A token is
//! `HMAC-SHA256(key, "v1|deviceId|role|issuedAtMs")` under a random per-gateway key kept at
//! `<stateDir>/devices/token.key` (0600). Nothing per device is stored but `issuedAtMs`, so the
//! store never holds a usable token; removing the device (or re-pairing it, which changes
//! `issuedAtMs`) revokes every token it was given. Comparison is constant-time.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::state::write_private_atomic;

/// Length of the key in bytes.
const KEY_LEN: usize = 32;

/// The per-gateway token key.
#[derive(Clone)]
pub struct TokenKey {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// Where the key lives.
pub fn key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("devices").join("token.key")
}

// === impl TokenKey ===

impl TokenKey {
    /// A key from bytes (tests).
    pub fn from_bytes(key: [u8; KEY_LEN]) -> Self {
        Self { key }
    }

    /// Loads the key, creating it (0600) on first use. A key file of the wrong size is an
    /// error naming the file (delete it to revoke every issued device token).
    pub fn load_or_create(state_dir: &Path) -> std::io::Result<Self> {
        let path = key_path(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} holds {} bytes, expected {KEY_LEN}; delete it to start over \
                             (every device token issued so far stops working)",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(Self { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // ThreadRng is a CSPRNG seeded from the OS.
                let key: [u8; KEY_LEN] = rand::random();
                write_private_atomic(&path, &key)?;
                Ok(Self { key })
            }
            Err(e) => Err(e),
        }
    }

    /// The token of `device_id` for `role`, issued at `issued_at_ms`.
    pub fn token(&self, device_id: &str, role: &str, issued_at_ms: i64) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("v1|{device_id}|{role}|{issued_at_ms}").as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }
}

/// Constant-time equality of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_device_role_issue_time_and_key() {
        let k = TokenKey::from_bytes([7; 32]);
        let t = k.token("dev", "node", 5);
        assert_eq!(t, k.token("dev", "node", 5), "deterministic");
        assert_eq!(t.len(), 43, "32 bytes base64url");
        for other in [
            k.token("dev2", "node", 5),
            k.token("dev", "operator", 5),
            k.token("dev", "node", 6),
            TokenKey::from_bytes([8; 32]).token("dev", "node", 5),
        ] {
            assert_ne!(t, other);
        }
        assert!(same(&t, &t.clone()));
        assert!(!same(&t, &t[1..]));
    }

    #[test]
    fn the_key_is_created_once_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("oc-tokkey-{}", uuid::Uuid::new_v4()));
        let a = TokenKey::load_or_create(&dir).unwrap();
        let b = TokenKey::load_or_create(&dir).unwrap();
        assert_eq!(a.token("d", "node", 1), b.token("d", "node", 1));
        let mode = std::fs::metadata(key_path(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(key_path(&dir), b"short").unwrap();
        let e = TokenKey::load_or_create(&dir).unwrap_err().to_string();
        assert!(e.contains("token.key") && e.contains("expected 32"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
