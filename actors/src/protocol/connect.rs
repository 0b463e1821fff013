//! `connect` parameters: lenient parsing, enum checks and the scope-retention rule
//! (PROTOCOL §2.2, §2.5).

use serde::Deserialize;
use serde_json::Value;

use super::device::DeviceBlock;
use super::frame::RequestFrame;

/// Allowed `client.id` values (2026.9.6).
pub const CLIENT_IDS: &[&str] = &[
    "cli",
    "gateway-client",
    "openclaw-control-ui",
    "webchat-ui",
    "webchat",
    "openclaw-tui",
    "openclaw-macos",
    "openclaw-linux",
    "openclaw-ios",
    "openclaw-watchos",
    "openclaw-android",
    "node-host",
    "openclaw-worker",
    "openclaw-browser-copilot",
    "test",
    "fingerprint",
    "openclaw-probe",
];

/// Allowed `client.mode` values.
pub const CLIENT_MODES: &[&str] = &[
    "webchat", "cli", "ui", "backend", "node", "worker", "probe", "test",
];

/// `params` of the `connect` request. Unknown keys are ignored (clients add fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    /// Lowest protocol the client speaks.
    pub min_protocol: u64,
    /// Highest protocol the client speaks.
    pub max_protocol: u64,
    /// Who the client is.
    pub client: ClientInfo,
    /// `operator` (default) or `node`.
    #[serde(default)]
    pub role: Option<String>,
    /// Requested scopes, in the order sent (part of the device signature).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Shared secret or device token.
    #[serde(default)]
    pub auth: Option<ConnectAuth>,
    /// Signed device identity.
    #[serde(default)]
    pub device: Option<DeviceBlock>,
    /// Node capabilities.
    #[serde(default)]
    pub caps: Option<Value>,
    /// Node commands.
    #[serde(default)]
    pub commands: Option<Value>,
    /// Node `PATH`.
    #[serde(default)]
    pub path_env: Option<Value>,
}

/// `client` block of `connect`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// One of [`CLIENT_IDS`].
    pub id: String,
    /// Client version string.
    pub version: String,
    /// Platform (`linux`, `darwin`, …).
    pub platform: String,
    /// One of [`CLIENT_MODES`].
    pub mode: String,
    /// Shown in presence.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Device family, part of the v3 signature.
    #[serde(default)]
    pub device_family: Option<String>,
    /// Client instance id.
    #[serde(default)]
    pub instance_id: Option<String>,
}

/// `auth` block of `connect`. All strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAuth {
    /// Gateway token (or a device token).
    #[serde(default)]
    pub token: Option<String>,
    /// Gateway password.
    #[serde(default)]
    pub password: Option<String>,
    /// Device token issued earlier.
    #[serde(default)]
    pub device_token: Option<String>,
    /// Bootstrap token.
    #[serde(default)]
    pub bootstrap_token: Option<String>,
}

/// Why `connect` params are rejected: the message after `invalid connect params: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamsError(pub String);

// === impl ConnectParams ===

impl ConnectParams {
    /// The handshake's fast path: a well-formed `connect` request frame (`type` "req", a
    /// non-empty string `id`, `method` "connect", params that pass [`Self::parse`]'s checks)
    /// parsed once, straight from the text into the typed params, without a
    /// `serde_json::Value` in between (issue 15: ~10k instructions per handshake). Returns
    /// the request id and the params, or `None` for anything else: the caller then takes
    /// the general path, [`super::frame::parse_request`] + [`Self::parse`], which words
    /// every error, so the outcome for any frame is the same either way.
    pub fn parse_frame(text: &str) -> Option<(String, Self)> {
        let f: RequestFrame<'_, ConnectParams> = serde_json::from_str(text).ok()?;
        if !f.is_request() || f.method != "connect" {
            return None;
        }
        f.params.check().ok()?;
        Some((f.id.into_owned(), f.params))
    }

    /// Parses and checks the enums. Errors read like the real gateway's (`at /client/id: …`).
    pub fn parse(params: Option<&Value>) -> Result<Self, ParamsError> {
        let v = params.ok_or_else(|| ParamsError("must be object".into()))?;
        let p: ConnectParams = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string().replace('.', "/");
            ParamsError(format!("at /{path}: {}", e.inner()))
        })?;
        p.check()?;
        Ok(p)
    }

    /// The checks beyond the types: the enums and the protocol bounds.
    fn check(&self) -> Result<(), ParamsError> {
        let p = self;
        if !CLIENT_IDS.contains(&p.client.id.as_str()) {
            return Err(ParamsError(
                "at /client/id: must be equal to one of the allowed values".into(),
            ));
        }
        if !CLIENT_MODES.contains(&p.client.mode.as_str()) {
            return Err(ParamsError(
                "at /client/mode: must be equal to one of the allowed values".into(),
            ));
        }
        if p.min_protocol < 1 || p.max_protocol < 1 {
            return Err(ParamsError("at /minProtocol: must be >= 1".into()));
        }
        Ok(())
    }

    /// The requested role (`operator` when absent).
    pub fn role(&self) -> &str {
        self.role.as_deref().unwrap_or("operator")
    }

    /// Requested scopes (empty when absent).
    pub fn requested_scopes(&self) -> &[String] {
        self.scopes.as_deref().unwrap_or(&[])
    }

    /// The token the device signature covers: `auth.token ?? auth.deviceToken ??
    /// auth.bootstrapToken ?? ""`.
    pub fn signature_token(&self) -> &str {
        let a = match &self.auth {
            Some(a) => a,
            None => return "",
        };
        a.token
            .as_deref()
            .or(a.device_token.as_deref())
            .or(a.bootstrap_token.as_deref())
            .unwrap_or("")
    }
}

/// Whether a device-less shared-secret client keeps its requested scopes: only local
/// `cli`/`cli` and `gateway-client`/`backend` do; everyone else gets `[]`.
pub fn keeps_requested_scopes(client_id: &str, client_mode: &str, local: bool) -> bool {
    local
        && matches!(
            (client_id, client_mode),
            ("cli", "cli") | ("gateway-client", "backend")
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"minProtocol":4,"maxProtocol":4,
               "client":{"id":"cli","version":"1","platform":"linux","mode":"cli"},
               "auth":{"token":"t"},"extraFieldFromTheFuture":true})
    }

    /// The general path, as the handshake ran it before the fast path.
    fn two_step(text: &str) -> Option<(String, ConnectParams)> {
        let req = crate::protocol::frame::parse_request(text).ok()?;
        if req.method != "connect" {
            return None;
        }
        Some((req.id, ConnectParams::parse(req.params.as_ref()).ok()?))
    }

    #[test]
    fn the_one_parse_fast_path_agrees_with_the_two_step_path() {
        // Captured from the real node host and CLI (shared/spec/peer-frames-nodes.md).
        let node = r#"{"type":"req","id":"1:0f18a5e0","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"node-host","displayName":"peer-node","version":"2026.9.6","platform":"linux","deviceFamily":"Linux","mode":"node","instanceId":"b2d84c9a"},"caps":["browser","file"],"commands":["system.run","system.which"],"pathEnv":"/usr/bin:/bin","auth":{"token":"<TOKEN>"},"role":"node","scopes":[],"device":{"id":"548d4d30","publicKey":"A7vBHdW-G1YBvyyZT0Nr3VuGgPkiCaLnSA4b6AjsexU","signature":"8tVDa3vk","signedAt":1795563258599,"nonce":"3c97fc02"}}}"#;
        let cli = r#"{"type":"req","id":"1:9def2bc7","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"2026.9.6","platform":"linux","deviceFamily":"Linux","mode":"cli","instanceId":"869cbc13"},"caps":[],"auth":{"token":"<TOKEN>"},"role":"operator","scopes":["operator.pairing"],"extra":{"x":[1,2]}},"extraTop":null}"#;
        let escaped = r#"{"params":{"client":{"mode":"cli","id":"cli","version":"1\u00e9\"","platform":"linux"},"maxProtocol":3,"minProtocol":3},"method":"connect","id":"a\\b","type":"req"}"#;
        for text in [node, cli, escaped] {
            let fast = ConnectParams::parse_frame(text).expect("fast path takes it");
            let slow = two_step(text).expect("two-step path takes it");
            assert_eq!(fast.0, slow.0);
            assert_eq!(format!("{:?}", fast.1), format!("{:?}", slow.1));
        }
        // Whatever the fast path declines goes the general way, which words the error.
        let declined = [
            r#"{"type":"req","id":"1","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"bogus","version":"1","platform":"l","mode":"cli"}}}"#,
            r#"{"type":"req","id":"","method":"connect","params":{}}"#,
            r#"{"type":"req","id":7,"method":"connect","params":{}}"#,
            r#"{"type":"event","id":"1","method":"connect","params":{}}"#,
            r#"{"type":"req","id":"1","method":"health","params":{}}"#,
            r#"{"type":"req","id":"1","method":"connect"}"#,
            r#"{"type":"req","id":"1","id":"2","method":"connect","params":{"minProtocol":4,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"l","mode":"cli"}}}"#,
            r#"{"type":"req","id":"1","method":"connect","params":{"minProtocol":0,"maxProtocol":4,"client":{"id":"cli","version":"1","platform":"l","mode":"cli"}}}"#,
            "not json",
        ];
        for text in declined {
            assert!(ConnectParams::parse_frame(text).is_none(), "{text}");
        }
        // Both paths refuse a duplicate key (serde's struct visitor does, in RawFrame too).
        assert!(two_step(declined[6]).is_none());
    }

    #[test]
    fn lenient_parse() {
        let p = ConnectParams::parse(Some(&base())).unwrap();
        assert_eq!(p.role(), "operator");
        assert_eq!(p.signature_token(), "t");
        assert!(p.requested_scopes().is_empty());
    }

    #[test]
    fn rejects_bad_enums_and_shapes() {
        let mut bad_id = base();
        bad_id["client"]["id"] = json!("bogus-client");
        let mut bad_mode = base();
        bad_mode["client"]["mode"] = json!("x");
        let mut no_client = base();
        no_client.as_object_mut().unwrap().remove("client");
        let mut bad_min = base();
        bad_min["minProtocol"] = json!("four");
        let cases = [
            (
                bad_id,
                "at /client/id: must be equal to one of the allowed values",
            ),
            (
                bad_mode,
                "at /client/mode: must be equal to one of the allowed values",
            ),
            (no_client, "client"),
            (bad_min, "minProtocol"),
        ];
        for (v, want) in cases {
            let e = ConnectParams::parse(Some(&v)).unwrap_err();
            assert!(e.0.contains(want), "{e} should contain {want}");
        }
        assert!(ConnectParams::parse(None).is_err());
    }

    #[test]
    fn signature_token_precedence() {
        let mut v = base();
        v["auth"] = json!({"deviceToken":"d","bootstrapToken":"b"});
        assert_eq!(
            ConnectParams::parse(Some(&v)).unwrap().signature_token(),
            "d"
        );
        v["auth"] = json!({"bootstrapToken":"b"});
        assert_eq!(
            ConnectParams::parse(Some(&v)).unwrap().signature_token(),
            "b"
        );
        v.as_object_mut().unwrap().remove("auth");
        assert_eq!(
            ConnectParams::parse(Some(&v)).unwrap().signature_token(),
            ""
        );
    }

    #[test]
    fn scope_retention_table() {
        let cases = [
            ("cli", "cli", true, true),
            ("gateway-client", "backend", true, true),
            ("cli", "probe", true, false),
            ("cli", "cli", false, false),
            ("openclaw-tui", "ui", true, false),
            ("gateway-client", "cli", true, false),
        ];
        for (id, mode, local, want) in cases {
            assert_eq!(
                keeps_requested_scopes(id, mode, local),
                want,
                "{id}/{mode} local={local}"
            );
        }
    }
}
