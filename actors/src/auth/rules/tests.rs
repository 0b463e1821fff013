//! Table-driven tests of the connect decision.

use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000_000;
const NONCE: &str = "nonce-1";

fn token_secrets() -> Secrets {
    Secrets {
        mode: AuthMode::Token,
        token: Some(Secret::new("right")),
        password: None,
    }
}

fn params(v: Value) -> ConnectParams {
    ConnectParams::parse(Some(&v)).unwrap()
}

fn cli(auth: Value) -> ConnectParams {
    params(json!({"minProtocol":4,"maxProtocol":4,
        "client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},
        "scopes":["operator.admin"],"auth":auth}))
}

fn with_device(mut v: Value, key: &SigningKey) -> ConnectParams {
    let pk = key.verifying_key().to_bytes();
    let id = crate::protocol::device::device_id(&pk);
    let p = params(v.clone());
    let mut d = crate::protocol::device::DeviceBlock {
        id: id.clone(),
        public_key: URL_SAFE_NO_PAD.encode(pk),
        signature: String::new(),
        signed_at: NOW,
        nonce: NONCE.into(),
    };
    let ctx = SignatureContext {
        client_id: &p.client.id,
        client_mode: &p.client.mode,
        role: p.role(),
        scopes: p.requested_scopes(),
        token: p.signature_token(),
        platform: Some(&p.client.platform),
        device_family: p.client.device_family.as_deref(),
    };
    d.signature = URL_SAFE_NO_PAD.encode(
        key.sign(crate::protocol::device::payload_v2(&d, &ctx).as_bytes())
            .to_bytes(),
    );
    v["device"] = json!({"id": d.id, "publicKey": d.public_key, "signature": d.signature, "signedAt": NOW, "nonce": NONCE});
    params(v)
}

fn unknown(_: &str) -> Pairing {
    Pairing::Unknown
}

fn detail(v: &Verdict) -> String {
    match v {
        Verdict::Reject { error, .. } => error
            .details
            .as_ref()
            .map(|d| d["code"].as_str().unwrap_or("").to_string())
            .unwrap_or_default(),
        Verdict::Accept { method, .. } => format!("accept:{method}"),
        Verdict::NeedsPairing { .. } => "pairing".into(),
    }
}

#[test]
fn secret_table() {
    let pw = Secrets {
        mode: AuthMode::Password,
        token: None,
        password: Some(Secret::new("pw")),
    };
    let none = Secrets {
        mode: AuthMode::None,
        token: None,
        password: None,
    };
    let tok = token_secrets();
    let cases: Vec<(&Secrets, Value, SecretCheck)> = vec![
        (&tok, json!({"token":"right"}), SecretCheck::Ok("token")),
        (&tok, json!({"password":"right"}), SecretCheck::Ok("token")),
        (
            &tok,
            json!({"token":"wrong"}),
            SecretCheck::Failed("token_mismatch"),
        ),
        (
            &tok,
            json!({"token":"righ"}),
            SecretCheck::Failed("token_mismatch"),
        ),
        (&tok, json!({}), SecretCheck::Missing),
        (&tok, json!({"token":"undefined"}), SecretCheck::Missing),
        (&pw, json!({"password":"pw"}), SecretCheck::Ok("password")),
        (
            &pw,
            json!({"password":"x"}),
            SecretCheck::Failed("password_mismatch"),
        ),
        (&none, json!({}), SecretCheck::Ok("none")),
    ];
    for (s, auth, want) in cases {
        assert_eq!(check_secret(s, &cli(auth.clone())), want, "{auth}");
    }
}

#[test]
fn decision_table() {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let node_host = json!({"minProtocol":3,"maxProtocol":4,
        "client":{"id":"node-host","version":"1","platform":"linux","mode":"node"},
        "role":"node","auth":{"token":"right"}});
    let backend = json!({"minProtocol":4,"maxProtocol":4,
        "client":{"id":"gateway-client","version":"1","platform":"linux","mode":"backend"},
        "scopes":["operator.read","operator.write"],"auth":{"token":"right"}});
    let probe = json!({"minProtocol":3,"maxProtocol":4,
        "client":{"id":"cli","version":"dev","platform":"linux","mode":"probe"},
        "scopes":["operator.read"],"auth":{"token":"right"}});
    let s = token_secrets();
    let cases: Vec<(&str, ConnectParams, bool, &str)> = vec![
        (
            "cli right token local",
            cli(json!({"token":"right"})),
            true,
            "accept:token",
        ),
        (
            "cli wrong token",
            cli(json!({"token":"nope"})),
            true,
            "AUTH_TOKEN_MISMATCH",
        ),
        (
            "nothing at all",
            cli(json!({})),
            true,
            "DEVICE_IDENTITY_REQUIRED",
        ),
        (
            "node without device",
            params(node_host.clone()),
            true,
            "DEVICE_IDENTITY_REQUIRED",
        ),
        (
            "node with device local",
            with_device(node_host.clone(), &key),
            true,
            "accept:token",
        ),
        (
            "backend device remote",
            with_device(backend.clone(), &key),
            false,
            "pairing",
        ),
        ("probe local", params(probe), true, "accept:token"),
    ];
    for (name, p, local, want) in cases {
        let v = decide(&s, &p, NONCE, local, unknown, NOW);
        assert_eq!(detail(&v), want, "{name}: {v:?}");
    }
}

#[test]
fn scopes_cleared_except_local_cli_and_backend() {
    let s = token_secrets();
    let scopes = |p: &ConnectParams, local| match decide(&s, p, NONCE, local, unknown, NOW) {
        Verdict::Accept { scopes, .. } => scopes,
        other => panic!("{other:?}"),
    };
    let p = cli(json!({"token":"right"}));
    assert_eq!(scopes(&p, true), vec!["operator.admin".to_string()]);
    assert!(scopes(&p, false).is_empty());
    let probe = params(json!({"minProtocol":3,"maxProtocol":4,
        "client":{"id":"cli","version":"dev","platform":"linux","mode":"probe"},
        "scopes":["operator.read"],"auth":{"token":"right"}}));
    assert!(scopes(&probe, true).is_empty());
}

#[test]
fn device_paths() {
    let key = SigningKey::from_bytes(&[5u8; 32]);
    let s = token_secrets();
    let backend = json!({"minProtocol":4,"maxProtocol":4,
        "client":{"id":"gateway-client","version":"1","platform":"linux","mode":"backend"},
        "scopes":["operator.read"],"auth":{"token":"right"}});
    let p = with_device(backend.clone(), &key);
    match decide(&s, &p, NONCE, true, unknown, NOW) {
        Verdict::Accept {
            approve_device,
            device_id,
            scopes,
            ..
        } => {
            assert!(approve_device);
            assert!(device_id.is_some());
            assert_eq!(scopes, vec!["operator.read".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    match decide(
        &s,
        &p,
        NONCE,
        false,
        |_| Pairing::Paired {
            token: None,
            scopes: vec![],
        },
        NOW,
    ) {
        Verdict::Accept { approve_device, .. } => assert!(!approve_device),
        other => panic!("{other:?}"),
    }
    // wrong nonce is a device error even with the right token
    let v = decide(&s, &p, "other-nonce", true, unknown, NOW);
    assert_eq!(detail(&v), "DEVICE_AUTH_NONCE_MISMATCH");
    // a correct device with a wrong token is still a token mismatch
    let mut bad = backend.clone();
    bad["auth"] = json!({"token":"wrong"});
    let p = with_device(bad, &key);
    assert_eq!(
        detail(&decide(&s, &p, NONCE, true, unknown, NOW)),
        "AUTH_TOKEN_MISMATCH"
    );
}

#[test]
fn pairing_close_reason_format() {
    let (e, reason) = pairing_required("dev1", "req-1", "node");
    assert_eq!(e.code, "NOT_PAIRED");
    assert_eq!(
        reason,
        "pairing required: device is not approved yet (requestId: req-1)"
    );
    assert_eq!(e.details.unwrap()["requestId"], "req-1");
}
