//! Device identity checks (PROTOCOL §2.4): id = sha256(raw key), clock skew, challenge nonce,
//! Ed25519 over the v3 payload, then v2.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::errors::{code, ErrorShape};
use super::DEVICE_SIGNATURE_SKEW_MS;

/// The `device` block of `connect`; all five fields are required.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceBlock {
    /// Lowercase hex SHA-256 of the raw public key.
    pub id: String,
    /// Raw 32-byte Ed25519 key, base64url (base64 and PEM accepted).
    pub public_key: String,
    /// Ed25519 signature, base64url or base64.
    pub signature: String,
    /// Signing time, ms since the epoch.
    pub signed_at: i64,
    /// The challenge nonce.
    pub nonce: String,
}

/// What the signature must cover besides the device block itself.
#[derive(Debug, Clone)]
pub struct SignatureContext<'a> {
    /// `client.id`.
    pub client_id: &'a str,
    /// `client.mode`.
    pub client_mode: &'a str,
    /// Requested role.
    pub role: &'a str,
    /// Requested scopes, in order.
    pub scopes: &'a [String],
    /// `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`.
    pub token: &'a str,
    /// `client.platform`.
    pub platform: Option<&'a str>,
    /// `client.deviceFamily`.
    pub device_family: Option<&'a str>,
}

/// Which payload version verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    /// `v2|…` (openclaw-node, older clients).
    V2,
    /// `v3|…|platform|deviceFamily` (the CLI).
    V3,
}

/// A device-proof failure, in the server's check order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// `device.id` is not sha256(publicKey).
    #[error("device identity mismatch")]
    IdMismatch,
    /// `signedAt` is more than 120 s away from now.
    #[error("device signature expired")]
    SignatureExpired,
    /// Empty nonce.
    #[error("device nonce required")]
    NonceRequired,
    /// Nonce differs from the challenge.
    #[error("device nonce mismatch")]
    NonceMismatch,
    /// Neither v3 nor v2 verifies.
    #[error("device signature invalid")]
    SignatureInvalid,
    /// The key does not decode to a valid Ed25519 key.
    #[error("device public key invalid")]
    PublicKeyInvalid,
}

// === impl DeviceError ===

impl DeviceError {
    /// `details.code` and `details.reason`.
    pub fn codes(self) -> (&'static str, &'static str) {
        match self {
            DeviceError::IdMismatch => ("DEVICE_AUTH_DEVICE_ID_MISMATCH", "device-id-mismatch"),
            DeviceError::SignatureExpired => {
                ("DEVICE_AUTH_SIGNATURE_EXPIRED", "device-signature-stale")
            }
            DeviceError::NonceRequired => ("DEVICE_AUTH_NONCE_REQUIRED", "device-nonce-missing"),
            DeviceError::NonceMismatch => ("DEVICE_AUTH_NONCE_MISMATCH", "device-nonce-mismatch"),
            DeviceError::SignatureInvalid => ("DEVICE_AUTH_SIGNATURE_INVALID", "device-signature"),
            DeviceError::PublicKeyInvalid => {
                ("DEVICE_AUTH_PUBLIC_KEY_INVALID", "device-public-key")
            }
        }
    }

    /// The `INVALID_REQUEST` error sent before closing 1008.
    pub fn to_error(self) -> ErrorShape {
        let (c, reason) = self.codes();
        ErrorShape::new(code::INVALID_REQUEST, self.to_string())
            .with_details(json!({"code": c, "reason": reason}))
    }
}

/// Decodes a public key given as base64url, base64 or PEM (SPKI) into its raw 32 bytes.
pub fn decode_public_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let bytes = if t.starts_with("-----BEGIN") {
        let body: String = t.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body.trim()).ok()?;
        // SPKI for Ed25519 is a 12-byte prefix followed by the raw key.
        der.get(der.len().checked_sub(32)?..)?.to_vec()
    } else {
        decode_b64(t)?
    };
    bytes.try_into().ok()
}

fn decode_b64(t: &str) -> Option<Vec<u8>> {
    let trimmed = t.trim_end_matches('=');
    URL_SAFE_NO_PAD
        .decode(trimmed)
        .ok()
        .or_else(|| STANDARD.decode(t).ok())
}

/// Lowercase hex SHA-256 of the raw key: the device id.
pub fn device_id(raw_key: &[u8]) -> String {
    let digest = Sha256::digest(raw_key);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Trims and lower-cases ASCII letters only (the v3 `platform`/`deviceFamily` rule).
fn norm(v: Option<&str>) -> String {
    v.unwrap_or("").trim().to_ascii_lowercase()
}

/// The v2 signed payload.
pub fn payload_v2(d: &DeviceBlock, c: &SignatureContext<'_>) -> String {
    format!(
        "v2|{}|{}|{}|{}|{}|{}|{}|{}",
        d.id,
        c.client_id,
        c.client_mode,
        c.role,
        c.scopes.join(","),
        d.signed_at,
        c.token,
        d.nonce
    )
}

/// The v3 signed payload (v2 fields with `v3` and normalized platform/deviceFamily).
pub fn payload_v3(d: &DeviceBlock, c: &SignatureContext<'_>) -> String {
    format!(
        "v3|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        d.id,
        c.client_id,
        c.client_mode,
        c.role,
        c.scopes.join(","),
        d.signed_at,
        c.token,
        d.nonce,
        norm(c.platform),
        norm(c.device_family)
    )
}

/// Verifies a device block against the challenge `nonce` at time `now_ms`, in the real
/// gateway's order. Returns which payload version verified.
pub fn verify(
    d: &DeviceBlock,
    c: &SignatureContext<'_>,
    challenge_nonce: &str,
    now_ms: i64,
) -> Result<PayloadVersion, DeviceError> {
    let raw = decode_public_key(&d.public_key);
    let id_ok = raw.as_ref().is_some_and(|k| device_id(k) == d.id);
    if !id_ok {
        return Err(DeviceError::IdMismatch);
    }
    if (now_ms - d.signed_at).abs() > DEVICE_SIGNATURE_SKEW_MS {
        return Err(DeviceError::SignatureExpired);
    }
    if d.nonce.trim().is_empty() {
        return Err(DeviceError::NonceRequired);
    }
    if d.nonce != challenge_nonce {
        return Err(DeviceError::NonceMismatch);
    }
    let raw = raw.ok_or(DeviceError::PublicKeyInvalid)?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| DeviceError::PublicKeyInvalid)?;
    let sig_bytes = decode_b64(&d.signature).ok_or(DeviceError::SignatureInvalid)?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| DeviceError::SignatureInvalid)?;
    if key.verify(payload_v3(d, c).as_bytes(), &sig).is_ok() {
        return Ok(PayloadVersion::V3);
    }
    if key.verify(payload_v2(d, c).as_bytes(), &sig).is_ok() {
        return Ok(PayloadVersion::V2);
    }
    Err(DeviceError::SignatureInvalid)
}

/// The raw key, base64url without padding, as stored in the device registry.
pub fn canonical_public_key(d: &DeviceBlock) -> Option<String> {
    decode_public_key(&d.public_key).map(|k| URL_SAFE_NO_PAD.encode(k))
}

#[cfg(test)]
mod tests;
