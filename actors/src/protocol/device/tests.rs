//! Device signature vectors generated here with fixed keys.

use super::*;
use ed25519_dalek::{Signer, SigningKey};

const NOW: i64 = 1_795_562_238_526;
const NONCE: &str = "4aed6a04-3124-4ee8-aa24-df4d6102c537";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn ctx<'a>(scopes: &'a [String]) -> SignatureContext<'a> {
    SignatureContext {
        client_id: "gateway-client",
        client_mode: "backend",
        role: "operator",
        scopes,
        token: "tok",
        platform: Some(" Linux "),
        device_family: Some("Linux"),
    }
}

fn block(sk: &SigningKey, signed_at: i64, nonce: &str) -> DeviceBlock {
    let pk = sk.verifying_key().to_bytes();
    DeviceBlock {
        id: device_id(&pk),
        public_key: URL_SAFE_NO_PAD.encode(pk),
        signature: String::new(),
        signed_at,
        nonce: nonce.into(),
    }
}

fn signed(version: PayloadVersion, mutate: impl FnOnce(&mut DeviceBlock)) -> DeviceBlock {
    let sk = key();
    let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
    let mut d = block(&sk, NOW - 1000, NONCE);
    let payload = match version {
        PayloadVersion::V2 => payload_v2(&d, &ctx(&scopes)),
        PayloadVersion::V3 => payload_v3(&d, &ctx(&scopes)),
    };
    d.signature = URL_SAFE_NO_PAD.encode(sk.sign(payload.as_bytes()).to_bytes());
    mutate(&mut d);
    d
}

fn check(d: &DeviceBlock) -> Result<PayloadVersion, DeviceError> {
    let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
    verify(d, &ctx(&scopes), NONCE, NOW)
}

#[test]
fn payload_strings() {
    let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
    let d = block(&key(), 42, "n");
    assert_eq!(
        payload_v2(&d, &ctx(&scopes)),
        format!(
            "v2|{}|gateway-client|backend|operator|operator.read,operator.write|42|tok|n",
            d.id
        )
    );
    assert!(payload_v3(&d, &ctx(&scopes)).ends_with("|42|tok|n|linux|linux"));
}

#[test]
fn v3_and_v2_verify() {
    assert_eq!(
        check(&signed(PayloadVersion::V3, |_| {})),
        Ok(PayloadVersion::V3)
    );
    assert_eq!(
        check(&signed(PayloadVersion::V2, |_| {})),
        Ok(PayloadVersion::V2)
    );
    // standard base64 signature and padded key are accepted too
    let d = signed(PayloadVersion::V2, |d| {
        let sig = URL_SAFE_NO_PAD.decode(&d.signature).unwrap();
        d.signature = STANDARD.encode(sig);
        let pk = URL_SAFE_NO_PAD.decode(&d.public_key).unwrap();
        d.public_key = STANDARD.encode(pk);
    });
    assert_eq!(check(&d), Ok(PayloadVersion::V2));
}

#[test]
fn failures_in_order() {
    let other = SigningKey::from_bytes(&[9u8; 32]);
    let cases: Vec<(DeviceBlock, DeviceError)> = vec![
        (
            signed(PayloadVersion::V3, |d| d.id = "00".repeat(32)),
            DeviceError::IdMismatch,
        ),
        (
            signed(PayloadVersion::V3, |d| d.public_key = "!!notbase64".into()),
            DeviceError::IdMismatch,
        ),
        (
            signed(PayloadVersion::V3, |d| d.signed_at = NOW - 120_001),
            DeviceError::SignatureExpired,
        ),
        (
            signed(PayloadVersion::V3, |d| d.signed_at = NOW + 120_001),
            DeviceError::SignatureExpired,
        ),
        (
            signed(PayloadVersion::V3, |d| d.nonce = " ".into()),
            DeviceError::NonceRequired,
        ),
        (
            signed(PayloadVersion::V3, |d| d.nonce = "other".into()),
            DeviceError::NonceMismatch,
        ),
        (
            signed(PayloadVersion::V3, |d| {
                d.signature = URL_SAFE_NO_PAD.encode(other.sign(b"x").to_bytes())
            }),
            DeviceError::SignatureInvalid,
        ),
        (
            signed(PayloadVersion::V3, |d| d.signature = "AAAA".into()),
            DeviceError::SignatureInvalid,
        ),
    ];
    for (d, want) in cases {
        assert_eq!(check(&d), Err(want), "{d:?}");
    }
    // signed with different scopes than presented
    let d = signed(PayloadVersion::V3, |_| {});
    let scopes = vec!["operator.admin".to_string()];
    assert_eq!(
        verify(&d, &ctx(&scopes), NONCE, NOW),
        Err(DeviceError::SignatureInvalid)
    );
    // a skew of exactly 120 s is still fine
    let d = signed(PayloadVersion::V3, |_| {});
    let scopes = vec!["operator.read".to_string(), "operator.write".to_string()];
    assert!(verify(&d, &ctx(&scopes), NONCE, d.signed_at + 120_000).is_ok());
}

#[test]
fn error_details() {
    let e = DeviceError::NonceMismatch.to_error();
    assert_eq!(e.code, "INVALID_REQUEST");
    assert_eq!(e.message, "device nonce mismatch");
    assert_eq!(e.details.unwrap()["code"], "DEVICE_AUTH_NONCE_MISMATCH");
}

#[test]
fn pem_key() {
    let pk = key().verifying_key().to_bytes();
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(&pk);
    let pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(&der)
    );
    assert_eq!(decode_public_key(&pem), Some(pk));
}
