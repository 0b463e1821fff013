//! Auth-failure lockout end to end: wrong credentials count, missing ones do not, success
//! resets, a locked client gets AUTH_RATE_LIMITED with retryAfterMs, the lockout expires,
//! loopback is exempt unless configured otherwise or the client is a browser (`Origin`),
//! and every lockout is audited with the IP and the count.

mod common;

use common::{connect_params, patience, Client, Closed, Gw, Opts, TOKEN};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn strict(max: u32, lockout_ms: u64) -> Opts {
    let cfg = json!({"gateway": {"auth": {"rateLimit": {"maxAttempts": max, "windowMs": 60000, "lockoutMs": lockout_ms, "exemptLoopback": false}}}});
    Opts {
        config: Some(cfg.to_string()),
        ..Default::default()
    }
}

async fn attempt(url: &str, token: Option<&str>, origin: Option<&str>) -> (Value, Client) {
    let mut req = url.into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(patience(), tokio_tungstenite::connect_async(req))
        .await
        .unwrap()
        .unwrap();
    let mut c = Client::from_ws(ws);
    let mut p = connect_params(token.unwrap_or(""), "cli", "cli", &["operator.read"]);
    if token.is_none() {
        p.as_object_mut().unwrap().remove("auth");
    }
    let (_, res) = c.connect_with(p).await;
    (res, c)
}

fn code(res: &Value) -> &str {
    if res["ok"] == true {
        return "OK";
    }
    res["error"]["details"]["code"].as_str().unwrap_or("?")
}

#[tokio::test]
async fn ten_wrong_tokens_lock_the_client_out_until_the_lockout_expires() {
    let gw = Gw::start(strict(10, 1500));
    for _ in 0..10 {
        let (res, _) = attempt(&gw.url(), Some("WrongToken"), None).await;
        assert_eq!(code(&res), "AUTH_TOKEN_MISMATCH");
    }
    // now even the right token is refused, with a retry hint
    let (res, mut c) = attempt(&gw.url(), Some(TOKEN), None).await;
    assert_eq!(code(&res), "AUTH_RATE_LIMITED", "{res}");
    assert_eq!(
        res["error"]["message"],
        "unauthorized: too many failed authentication attempts (retry later)"
    );
    assert_eq!(res["error"]["retryable"], true);
    let retry = res["error"]["retryAfterMs"].as_u64().unwrap();
    assert!(retry > 0 && retry <= 1500, "{retry}");
    assert!(matches!(c.closed().await, Closed::Code(1008, _)));
    let lock = gw.wait_audit("auth.lockout", |v| v["event"] == "auth.lockout");
    assert_eq!(lock["failures"], 10);
    assert!(lock["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(lock["lockoutMs"], 1500);
    // after the lockout the right token works again
    tokio::time::sleep(std::time::Duration::from_millis(retry + 100)).await;
    let (res, _) = attempt(&gw.url(), Some(TOKEN), None).await;
    assert_eq!(code(&res), "OK", "{res}");
}

#[tokio::test]
async fn missing_credentials_do_not_count_and_success_resets() {
    let gw = Gw::start(strict(3, 60_000));
    for _ in 0..5 {
        let (res, _) = attempt(&gw.url(), None, None).await;
        assert_eq!(code(&res), "DEVICE_IDENTITY_REQUIRED");
    }
    for _ in 0..2 {
        assert_eq!(
            code(&attempt(&gw.url(), Some("Wrong"), None).await.0),
            "AUTH_TOKEN_MISMATCH"
        );
    }
    assert_eq!(
        code(&attempt(&gw.url(), Some(TOKEN), None).await.0),
        "OK",
        "2 < 3: not locked"
    );
    for _ in 0..2 {
        assert_eq!(
            code(&attempt(&gw.url(), Some("Wrong"), None).await.0),
            "AUTH_TOKEN_MISMATCH"
        );
    }
    assert_eq!(
        code(&attempt(&gw.url(), Some(TOKEN), None).await.0),
        "OK",
        "the success reset the count"
    );
}

#[tokio::test]
async fn loopback_is_exempt_by_default_but_not_browsers() {
    let gw = Gw::start(Opts::default());
    for _ in 0..12 {
        assert_eq!(
            code(&attempt(&gw.url(), Some("Wrong"), None).await.0),
            "AUTH_TOKEN_MISMATCH"
        );
    }
    assert_eq!(
        code(&attempt(&gw.url(), Some(TOKEN), None).await.0),
        "OK",
        "loopback CLI never locked out"
    );
    let origin = Some("http://evil.example");
    for _ in 0..10 {
        assert_eq!(
            code(&attempt(&gw.url(), Some("Wrong"), origin).await.0),
            "AUTH_TOKEN_MISMATCH"
        );
    }
    assert_eq!(
        code(&attempt(&gw.url(), Some(TOKEN), origin).await.0),
        "AUTH_RATE_LIMITED",
        "a browser origin is locked out"
    );
    assert_eq!(
        code(&attempt(&gw.url(), Some(TOKEN), None).await.0),
        "OK",
        "the local CLI is unaffected"
    );
    let lock = gw.wait_audit("browser lockout", |v| v["event"] == "auth.lockout");
    assert_eq!(lock["key"], "browser-origin:http://evil.example");
}

#[tokio::test]
async fn lockout_can_be_disabled() {
    let cfg = r#"{ gateway: { auth: { rateLimit: { enabled: false, exemptLoopback: false, maxAttempts: 2 } } } }"#;
    let gw = Gw::start(Opts {
        config: Some(cfg.into()),
        ..Default::default()
    });
    for _ in 0..4 {
        assert_eq!(
            code(&attempt(&gw.url(), Some("Wrong"), None).await.0),
            "AUTH_TOKEN_MISMATCH"
        );
    }
    assert_eq!(code(&attempt(&gw.url(), Some(TOKEN), None).await.0), "OK");
}

#[test]
fn bad_lockout_and_request_limit_settings_are_refused() {
    // The seed's spelling of the request rate limit is accepted, and checked like the other.
    let (code, _, err) = common::run_to_exit(Opts {
        config: Some(r#"{ gateway: { auth: { rateLimit: { enabled: true, maxRequests: 0, windowMs: 60000 } } } }"#.into()),
        ..Default::default()
    });
    assert_eq!(code, 2);
    assert!(err.contains("gateway.auth.rateLimit.maxRequests"), "{err}");
    let (code, _, err) = common::run_to_exit(Opts {
        config: Some(r#"{ gateway: { auth: { rateLimit: { maxAttempts: 0 } } } }"#.into()),
        ..Default::default()
    });
    assert_eq!(code, 2);
    assert!(err.contains("gateway.auth.rateLimit.maxAttempts"), "{err}");
}
