//! Pairs made by rcgen: good ones load, and each kind of bad pair is refused with its reason.

use super::*;

fn pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[test]
fn a_good_pair_loads_with_its_fingerprint_and_expiry() {
    let (c, k) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    let m = from_pem(c.as_bytes(), k.as_bytes()).unwrap();
    let der = CertificateDer::from_pem_slice(c.as_bytes()).unwrap();
    assert_eq!(m.fingerprint, fingerprint::sha256_hex(der.as_ref()));
    assert!(m.not_after.unwrap() > 1_700_000_000);
}

#[test]
fn bad_pairs_are_refused_with_the_reason() {
    let (c1, k1) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (_c2, k2) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (_c3, k3) = pair(&rcgen::PKCS_ED25519);
    let cases: Vec<(&str, &[u8], &[u8], &str)> = vec![
        (
            "garbage cert",
            b"not a pem",
            k1.as_bytes(),
            "no PEM certificate",
        ),
        (
            "garbage key",
            c1.as_bytes(),
            b"-----BEGIN NOTHING-----",
            "no usable PEM private key",
        ),
        (
            "another key of the same type",
            c1.as_bytes(),
            k2.as_bytes(),
            "does not match",
        ),
        (
            "a key of another type",
            c1.as_bytes(),
            k3.as_bytes(),
            "does not match",
        ),
    ];
    for (what, c, k, want) in cases {
        let e = from_pem(c, k).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains(want), "{what}: {e}");
    }
}

#[test]
fn files_are_missing_or_too_large() {
    let dir = std::env::temp_dir().join(format!("oc-tls-m-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let e = load(&dir.join("c.pem"), &dir.join("k.pem"), None).unwrap_err();
    assert!(
        matches!(
            e,
            MaterialError::Missing {
                which: "certificate",
                ..
            }
        ),
        "{e}"
    );
    std::fs::write(dir.join("big.pem"), vec![b'x'; MAX_FILE_BYTES as usize + 1]).unwrap();
    let e = read_bounded(&dir.join("big.pem"), "key")
        .unwrap_err()
        .to_string();
    assert!(e.contains("limit"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_ca_bundle_is_served_after_the_leaf() {
    let dir = std::env::temp_dir().join(format!("oc-tls-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, k) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    let (ca, _) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
    std::fs::write(dir.join("c.pem"), &c).unwrap();
    std::fs::write(dir.join("k.pem"), &k).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    let without = load(&dir.join("c.pem"), &dir.join("k.pem"), None).unwrap();
    let with = load(
        &dir.join("c.pem"),
        &dir.join("k.pem"),
        Some(&dir.join("ca.pem")),
    )
    .unwrap();
    assert_eq!((without.key.cert.len(), with.key.cert.len()), (1, 2));
    assert_eq!(
        with.fingerprint, without.fingerprint,
        "the leaf is still the served identity"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
