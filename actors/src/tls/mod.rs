//! TLS on the gateway port: every listener serves HTTPS and WSS with rustls (TLS 1.3 by
//! default, ALPN `http/1.1`). The served pair lives in a [`TlsState`] whose certificate
//! resolver can be swapped while connections stay open. [`material`] loads and checks a
//! pair, [`autogen`] makes one, [`fingerprint`] computes and reads SHA-256 pins, and
//! [`pin`] is the client side's pinning verifier.

pub mod autogen;
pub mod fingerprint;
pub mod material;
pub mod pin;
pub mod reloader;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use serde_json::{json, Value};

use crate::shared::{read, write};
use material::{Material, MaterialError};

/// The TLS settings in force (restart-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The certificate file.
    pub cert_path: PathBuf,
    /// The key file.
    pub key_path: PathBuf,
    /// An optional CA bundle (served after the leaf; no client certificates are asked for).
    pub ca_path: Option<PathBuf>,
    /// Make a self-signed pair when both files are missing.
    pub auto_generate: bool,
    /// Also accept TLS 1.2 (`gateway.tls.minVersion: "1.2"`).
    pub allow_tls12: bool,
}

/// The served pair and its history, shared by the listeners (which read it at each
/// handshake through the resolver) and `status`.
#[derive(Debug)]
pub struct TlsState {
    /// The settings.
    pub settings: TlsSettings,
    current: RwLock<Arc<Material>>,
    /// Pairs swapped in since start.
    pub reloads: AtomicU64,
    /// Pairs refused since start (the old one stayed).
    pub reload_failures: AtomicU64,
    /// When the served pair was last swapped (ms since the epoch; 0: never).
    pub last_reload_ms: AtomicU64,
}

/// The first certificate of a PEM file, as DER.
pub struct PemCert;

impl PemCert {
    /// DER of the first `CERTIFICATE` block, if any.
    pub fn first(pem: &[u8]) -> Option<Vec<u8>> {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::pem_slice_iter(pem)
            .next()?
            .ok()
            .map(|c| c.to_vec())
    }
}

/// `YYYY-MM-DD` (UTC) of a time in seconds since the epoch.
pub fn date(unix_secs: i64) -> String {
    let (y, m, d) = crate::shared::civil_from_days(unix_secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// rustls' view of [`TlsState`]: always the current pair.
#[derive(Debug)]
struct Resolver(Arc<TlsState>);

// === impl TlsSettings ===

impl TlsSettings {
    /// Loads the pair, first generating it when allowed and both files are missing. One
    /// file without the other, or missing files without `autoGenerate`, is an error naming
    /// the missing file.
    pub fn prepare(&self, hostname: &str) -> Result<Material, String> {
        let (c, k) = (self.cert_path.exists(), self.key_path.exists());
        if !c && !k && self.auto_generate {
            autogen::write(&self.cert_path, &self.key_path, hostname)?;
            tracing::info!(cert = %self.cert_path.display(), "generated a self-signed TLS certificate");
        } else if !c || !k {
            let (which, path, key) = if !c {
                ("certificate", &self.cert_path, "gateway.tls.certPath")
            } else {
                ("key", &self.key_path, "gateway.tls.keyPath")
            };
            let why = if c || k {
                "the other file of the pair exists, so none is generated"
            } else {
                "gateway.tls.autoGenerate is false"
            };
            return Err(format!(
                "gateway tls: the {which} file {} is missing ({why}); set {key} to an existing file, \
                 or remove both files and enable gateway.tls.autoGenerate",
                path.display()
            ));
        }
        self.load().map_err(|e| format!("gateway tls: {e}"))
    }

    /// Reads and checks the configured pair (and CA bundle).
    pub fn load(&self) -> Result<Material, MaterialError> {
        material::load(&self.cert_path, &self.key_path, self.ca_path.as_deref())
    }
}

// === impl TlsState ===

impl TlsState {
    /// Serves `first`.
    pub fn new(settings: TlsSettings, first: Material) -> Arc<Self> {
        Arc::new(Self {
            settings,
            current: RwLock::new(Arc::new(first)),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_reload_ms: AtomicU64::new(0),
        })
    }

    /// The pair served now.
    pub fn current(&self) -> Arc<Material> {
        read(&self.current).clone()
    }

    /// Serves `m` to new handshakes from now on; open connections keep theirs.
    pub fn swap(&self, m: Material) {
        *write(&self.current) = Arc::new(m);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let now = crate::shared::now_ms().max(0) as u64;
        self.last_reload_ms.store(now, Ordering::Relaxed);
    }

    /// Notes a refused pair.
    pub fn refused(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The rustls server config every listener uses.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.settings.allow_tls12 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg =
            match ServerConfig::builder_with_provider(provider).with_protocol_versions(versions) {
                Ok(b) => b
                    .with_no_client_auth()
                    .with_cert_resolver(Arc::new(Resolver(self.clone()))),
                // The ring provider supports both versions; this cannot fail.
                Err(e) => unreachable!("rustls rejected its own protocol versions: {e}"),
            };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// The `tls` block of `status`.
    pub fn status(&self) -> Value {
        let m = self.current();
        let last = self.last_reload_ms.load(Ordering::Relaxed);
        json!({
            "enabled": true,
            "fingerprintSha256": fingerprint::display(&m.fingerprint),
            "notAfter": m.not_after.map(|t| t * 1000),
            "lastReload": (last > 0).then_some(last),
            "reloads": self.reloads.load(Ordering::Relaxed),
            "reloadFailures": self.reload_failures.load(Ordering::Relaxed),
            "certPath": self.settings.cert_path.display().to_string(),
            "minVersion": if self.settings.allow_tls12 { "1.2" } else { "1.3" },
        })
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().key.clone())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        for (secs, want) in [
            (0, "1970-01-01"),
            (951_782_400, "2000-02-29"),
            (1_798_675_200, "2026-12-31"),
            (4_102_444_800, "2100-01-01"),
        ] {
            assert_eq!(super::date(secs), want);
        }
    }
}
