//! Certificate pinning for clients: a rustls verifier that accepts exactly the certificate
//! whose SHA-256 is pinned (no CA or host-name check, as the real client), checked during
//! the TLS handshake — before any HTTP byte, so a token never reaches a server with the wrong
//! certificate. The handshake signatures are still verified.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::fingerprint;

/// Accepts only the pinned certificate (or, for liveness probes that send no secret, any).
#[derive(Debug)]
pub struct PinVerifier {
    /// Lowercase hex SHA-256 of the expected leaf; `None`: any certificate.
    pin: Option<String>,
    provider: Arc<CryptoProvider>,
}

/// The message of a pin mismatch (the real client's words, plus both fingerprints).
pub fn mismatch_message(expected: &str, got: &str) -> String {
    format!(
        "gateway tls fingerprint mismatch (expected {}, got {})",
        fingerprint::display(expected),
        fingerprint::display(got)
    )
}

// === impl PinVerifier ===

impl PinVerifier {
    /// A verifier for `pin` (lowercase hex, see [`fingerprint::normalize`]).
    pub fn new(pin: String) -> Self {
        Self {
            pin: Some(pin),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }

    /// A client config that trusts only `pin`, offering ALPN `http/1.1`.
    pub fn client_config(pin: String) -> Arc<ClientConfig> {
        Self::config(Self::new(pin))
    }

    /// A client config that accepts any certificate (handshake signatures are still
    /// checked). Only for probes that carry no credentials.
    pub fn any_certificate() -> Arc<ClientConfig> {
        Self::config(Self {
            pin: None,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    fn config(v: Self) -> Arc<ClientConfig> {
        let v = Arc::new(v);
        let mut cfg = ClientConfig::builder_with_provider(v.provider.clone())
            .with_safe_default_protocol_versions()
            .map(|b| {
                b.dangerous()
                    .with_custom_certificate_verifier(v.clone())
                    .with_no_client_auth()
            })
            .unwrap_or_else(|e| unreachable!("ring supports the default versions: {e}"));
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint::sha256_hex(end_entity.as_ref());
        match &self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) if *pin == got => Ok(ServerCertVerified::assertion()),
            Some(pin) => Err(rustls::Error::General(mismatch_message(pin, &got))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
