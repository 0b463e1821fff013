//! A certificate and key pair, loaded and checked before it is served: both parse, the key
//! matches the certificate (an RSA certificate with an EC key is refused here, not at every
//! handshake), and each file is at most [`MAX_FILE_BYTES`]. Pure except for reading files.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::fingerprint;

/// Largest certificate or key file read (as the real gateway).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why a pair cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaterialError {
    /// A file is missing.
    #[error("{which} file {path} is missing")]
    Missing {
        /// `certificate` or `key`.
        which: &'static str,
        /// Where it was looked for.
        path: String,
    },
    /// A file could not be read, or is too large.
    #[error("cannot read the {which} file {path}: {reason}")]
    Unreadable {
        /// `certificate` or `key`.
        which: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The certificate PEM holds no certificate.
    #[error("no PEM certificate found ({0})")]
    NoCertificate(String),
    /// The key PEM holds no usable key.
    #[error("no usable PEM private key found ({0})")]
    NoKey(String),
    /// The key does not belong to the certificate.
    #[error("the private key does not match the certificate ({0})")]
    Mismatch(String),
}

/// A checked pair, ready to serve.
#[derive(Debug, Clone)]
pub struct Material {
    /// What rustls serves.
    pub key: Arc<CertifiedKey>,
    /// Lowercase hex SHA-256 of the leaf certificate.
    pub fingerprint: String,
    /// The leaf's notAfter (seconds since the epoch), when it could be read.
    pub not_after: Option<i64>,
}

/// Reads and checks the pair at `cert` and `key`; the certificates of `ca` (a bundle of
/// intermediates, at most [`MAX_FILE_BYTES`] × 16) are served after the file's own chain.
pub fn load(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Material, MaterialError> {
    let mut c = read_bounded(cert, "certificate")?;
    let k = read_bounded(key, "key")?;
    if let Some(ca) = ca {
        c.push(b'\n');
        c.extend(read_limited(ca, "CA", MAX_FILE_BYTES * 16)?);
    }
    from_pem(&c, &k)
}

/// Reads a file of at most [`MAX_FILE_BYTES`].
pub fn read_bounded(path: &Path, which: &'static str) -> Result<Vec<u8>, MaterialError> {
    read_limited(path, which, MAX_FILE_BYTES)
}

fn read_limited(path: &Path, which: &'static str, max: u64) -> Result<Vec<u8>, MaterialError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => MaterialError::Missing {
            which,
            path: shown.clone(),
        },
        _ => MaterialError::Unreadable {
            which,
            path: shown.clone(),
            reason: e.to_string(),
        },
    })?;
    if meta.len() > max {
        return Err(MaterialError::Unreadable {
            which,
            path: shown,
            reason: format!("{} bytes, over the {max}-byte limit", meta.len()),
        });
    }
    std::fs::read(path).map_err(|e| MaterialError::Unreadable {
        which,
        path: shown,
        reason: e.to_string(),
    })
}

/// Parses and checks a pair given as PEM bytes.
pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Material, MaterialError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| MaterialError::NoCertificate(e.to_string()))?;
    let leaf = chain
        .first()
        .ok_or_else(|| MaterialError::NoCertificate("the file has no CERTIFICATE block".into()))?
        .clone();
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| MaterialError::NoKey(e.to_string()))?;
    let signing = default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| MaterialError::NoKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| MaterialError::Mismatch(e.to_string()))?;
    Ok(Material {
        fingerprint: fingerprint::sha256_hex(leaf.as_ref()),
        not_after: not_after(leaf.as_ref()),
        key: Arc::new(certified),
    })
}

/// The leaf's notAfter, seconds since the epoch.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests;
