//! `gateway.tls.autoGenerate`: a self-signed ECDSA P-256 pair made in-process (rcgen), CN
//! `openclaw-gateway`, SANs `localhost`, `127.0.0.1`, `::1` and the host name, written 0600
//! into a 0700 directory, each file atomically.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rcgen::{CertificateParams, DnType, KeyPair, SanType, PKCS_ECDSA_P256_SHA256};

/// Certificate and key as PEM.
pub fn generate(hostname: &str) -> Result<(String, String), rcgen::Error> {
    let mut names = vec!["localhost".to_string()];
    if !hostname.is_empty() && hostname != "localhost" {
        names.push(hostname.to_string());
    }
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "openclaw-gateway");
    for ip in [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Generates a pair and writes it to `cert` and `key` (directories 0700, files 0600).
pub fn write(cert: &Path, key: &Path, hostname: &str) -> Result<(), String> {
    let (c, k) = generate(hostname).map_err(|e| format!("cannot generate a certificate: {e}"))?;
    for (path, bytes) in [(key, k), (cert, c)] {
        if let Some(dir) = path.parent() {
            crate::state::ensure_private_dir(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        crate::state::write_private_atomic(path, bytes.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_loads_and_names_loopback() {
        let (c, k) = generate("box").unwrap();
        let m = super::super::material::from_pem(c.as_bytes(), k.as_bytes()).unwrap();
        let der = rustls_pki_types::CertificateDer::from(m.key.cert[0].to_vec());
        let (_, x) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
        use x509_parser::extensions::GeneralName;
        let names = &x
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names;
        let dns: Vec<&str> = names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(*d),
                _ => None,
            })
            .collect();
        let ips: Vec<&[u8]> = names
            .iter()
            .filter_map(|n| match n {
                GeneralName::IPAddress(b) => Some(*b),
                _ => None,
            })
            .collect();
        assert_eq!(dns, ["localhost", "box"]);
        assert!(ips.contains(&&[127u8, 0, 0, 1][..]), "{ips:?}");
        assert!(ips.contains(&&Ipv6Addr::LOCALHOST.octets()[..]), "{ips:?}");
        assert!(x.subject().to_string().contains("openclaw-gateway"));
    }
}
