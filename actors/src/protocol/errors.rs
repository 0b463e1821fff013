//! Error shapes sent in `res` frames (`{code, message, details?, retryable?, retryAfterMs?}`).

use serde::Serialize;
use serde_json::{json, Value};

/// Top-level error codes (PROTOCOL §2.7).
pub mod code {
    /// Bad frame, bad params, unknown method, auth failure.
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    /// Device identity missing or not approved.
    pub const NOT_PAIRED: &str = "NOT_PAIRED";
    /// Missing scope.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// Temporary failure; see `retryable`.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
}

/// The error object of a failed `res`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorShape {
    /// One of [`code`].
    pub code: String,
    /// Human-readable message; some are matched verbatim by clients.
    pub message: String,
    /// Structured details (`details.code` and friends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    /// Whether retrying can help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// When to retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

// === impl ErrorShape ===

impl ErrorShape {
    /// An error with a code and message only.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_string(),
            message: message.into(),
            details: None,
            retryable: None,
            retry_after_ms: None,
        }
    }

    /// Adds `details`.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `INVALID_REQUEST "unknown method: X"` (clients match this string).
    pub fn unknown_method(method: &str) -> Self {
        Self::new(code::INVALID_REQUEST, format!("unknown method: {method}"))
    }

    /// `FORBIDDEN "missing scope: S"` with `MISSING_SCOPE` details.
    pub fn missing_scope(scope: &str) -> Self {
        Self::new(code::FORBIDDEN, format!("missing scope: {scope}")).with_details(json!({
            "code": "MISSING_SCOPE",
            "missingScope": scope,
            "requiredScopes": [scope],
        }))
    }

    /// `INVALID_REQUEST "invalid request frame: …"` for a bad frame after the handshake.
    pub fn invalid_frame(why: &str) -> Self {
        Self::new(
            code::INVALID_REQUEST,
            format!("invalid request frame: {why}"),
        )
    }

    /// `INVALID_REQUEST "invalid <method> params: …"`.
    pub fn invalid_params(method: &str, why: &str) -> Self {
        Self::new(
            code::INVALID_REQUEST,
            format!("invalid {method} params: {why}"),
        )
    }

    /// `UNAVAILABLE <message>`, retryable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        let mut e = Self::new(code::UNAVAILABLE, message);
        e.retryable = Some(true);
        e
    }
}
