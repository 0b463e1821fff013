//! Frame codec: parse inbound `req` frames, build outbound `res` and `event` frames.

use serde::Deserialize;
use serde_json::Value;

use super::errors::ErrorShape;

/// A parsed request frame `{type:"req", id, method, params?}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Client-chosen id, echoed in the response.
    pub id: String,
    /// Method name.
    pub method: String,
    /// Parameters; `None` when the key is absent (the CLI's `health` sends none).
    pub params: Option<Value>,
}

/// Why an inbound text frame is not a valid request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or not an object.
    #[error("frame is not a JSON object")]
    NotJson,
    /// An object whose `type` is not `req`.
    #[error("type must be \"req\"")]
    NotRequest {
        /// The frame's `id` when it had a string one.
        id: Option<String>,
    },
    /// `id` missing, empty or not a string.
    #[error("id must be a non-empty string")]
    BadId,
    /// `method` missing, empty or not a string.
    #[error("method must be a non-empty string")]
    BadMethod {
        /// The frame's id.
        id: String,
    },
}

#[derive(Deserialize)]
struct RawFrame {
    #[serde(rename = "type")]
    kind: Option<Value>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
}

// === impl FrameError ===

impl FrameError {
    /// The id to echo in the error response (`"invalid"` when there is none).
    pub fn response_id(&self) -> String {
        match self {
            FrameError::NotRequest { id: Some(id) } | FrameError::BadMethod { id } => id.clone(),
            _ => "invalid".to_string(),
        }
    }
}

/// A well-formed request with params of type `P`, borrowed from the frame's text (strings
/// without escapes are not copied): the fast paths of [`parse_request`] and
/// `ConnectParams::parse_frame`. Anything else — a field missing, of another type, or
/// repeated — fails to parse, and the caller takes its lenient path, which words the error.
#[derive(Deserialize)]
pub(crate) struct RequestFrame<'a, P> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    /// The request id.
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    /// The method.
    #[serde(borrow)]
    pub method: std::borrow::Cow<'a, str>,
    /// The params.
    pub params: P,
}

impl<P> RequestFrame<'_, P> {
    /// `type` is "req", and `id` and `method` are not empty.
    pub(crate) fn is_request(&self) -> bool {
        self.kind == "req" && !self.id.is_empty() && !self.method.is_empty()
    }
}

/// Parses one inbound text frame as a request: one pass for a well-formed one (every
/// request after the handshake goes through here; issue 15), the lenient path otherwise.
pub fn parse_request(text: &str) -> Result<Request, FrameError> {
    if let Ok(f) = serde_json::from_str::<RequestFrame<'_, Option<Value>>>(text) {
        if f.is_request() {
            return Ok(Request {
                id: f.id.into_owned(),
                method: f.method.into_owned(),
                params: f.params,
            });
        }
    }
    parse_request_lenient(text)
}

/// [`parse_request`] for any frame: each field taken as any JSON value, then checked.
fn parse_request_lenient(text: &str) -> Result<Request, FrameError> {
    let raw: RawFrame = serde_json::from_str(text).map_err(|_| FrameError::NotJson)?;
    let id = match &raw.id {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    if raw.kind.as_ref().and_then(Value::as_str) != Some("req") {
        return Err(FrameError::NotRequest { id });
    }
    let id = id.ok_or(FrameError::BadId)?;
    let method = match raw.method {
        Some(Value::String(m)) if !m.is_empty() => m,
        _ => return Err(FrameError::BadMethod { id }),
    };
    Ok(Request {
        id,
        method,
        params: raw.params,
    })
}

/// `{"type":"res","id":…,"ok":true,"payload":…}`.
pub fn response_ok(id: &str, payload: Value) -> String {
    let mut out = Vec::with_capacity(128);
    response_ok_head(&mut out, id);
    if serde_json::to_writer(&mut out, &payload).is_err() {
        return String::new();
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// `{"type":"res","id":…,"ok":true,"payload":<raw>}` around a payload that is already JSON
/// (the hot methods serialize straight from their structs).
pub fn response_ok_raw(id: &str, payload: &str) -> String {
    let mut out = Vec::with_capacity(payload.len() + id.len() + 42);
    response_ok_head(&mut out, id);
    out.extend_from_slice(payload.as_bytes());
    out.push(b'}');
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `{"type":"res","id":…,"ok":true,"payload":` to `out`: the caller writes the
/// payload (JSON) and the closing `}`.
pub fn response_ok_head(out: &mut Vec<u8>, id: &str) {
    out.extend_from_slice(br#"{"type":"res","id":"#);
    if serde_json::to_writer(&mut *out, id).is_err() {
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(br#","ok":true,"payload":"#);
}

/// `{"type":"res","id":…,"ok":false,"error":…}`.
pub fn response_err(id: &str, error: &ErrorShape) -> String {
    #[derive(serde::Serialize)]
    struct Res<'a> {
        #[serde(rename = "type")]
        ty: &'static str,
        id: &'a str,
        ok: bool,
        error: &'a ErrorShape,
    }
    let res = Res {
        ty: "res",
        id,
        ok: false,
        error,
    };
    serde_json::to_string(&res).unwrap_or_default()
}

/// `v` serialized once, to be spliced as is into many frames (a broadcast's payload, a
/// client's presence entry); `null` if it cannot be serialized, which a struct of strings
/// and numbers or a `Value` cannot fail.
pub fn raw<T: serde::Serialize + ?Sized>(v: &T) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(v)
        .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned())
}

/// `{"type":"event","event":…,"payload":…[,"seq":n][,"stateVersion":…]}`, serialized
/// straight from its parts: a broadcast makes one per session, and building a map around a
/// clone of the payload for each was most of its cost (issue 15).
pub fn event<P: serde::Serialize + ?Sized>(
    name: &str,
    payload: &P,
    seq: Option<u64>,
    state_version: Option<&Value>,
) -> String {
    #[derive(serde::Serialize)]
    struct Event<'a, P: ?Sized> {
        #[serde(rename = "type")]
        ty: &'static str,
        event: &'a str,
        payload: &'a P,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        #[serde(rename = "stateVersion", skip_serializing_if = "Option::is_none")]
        state_version: Option<&'a Value>,
    }
    let ev = Event {
        ty: "event",
        event: name,
        payload,
        seq,
        state_version,
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

#[cfg(test)]
mod raw_tests {
    use super::*;

    #[test]
    fn raw_and_value_responses_are_the_same_json() {
        let payload = serde_json::json!({"ok": true, "n": [1, 2], "s": "a\"b"});
        for id in ["1", "a\"quote\\", "ünï"] {
            let a: Value = serde_json::from_str(&response_ok(id, payload.clone())).unwrap();
            let b: Value =
                serde_json::from_str(&response_ok_raw(id, &payload.to_string())).unwrap();
            assert_eq!(a, b, "{id}");
            assert_eq!(a["id"], id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_table() {
        let ok = parse_request(r#"{"type":"req","id":"1:a","method":"health"}"#).unwrap();
        assert_eq!(ok.id, "1:a");
        assert_eq!(ok.method, "health");
        assert_eq!(ok.params, None);
        let with =
            parse_request(r#"{"type":"req","id":"x","method":"m","params":{"a":1}}"#).unwrap();
        assert_eq!(with.params, Some(json!({"a":1})));

        let cases: &[(&str, FrameError)] = &[
            ("not json", FrameError::NotJson),
            ("[1,2]", FrameError::NotJson),
            (
                r#"{"type":"event","id":"7"}"#,
                FrameError::NotRequest {
                    id: Some("7".into()),
                },
            ),
            (
                r#"{"id":"7","method":"x"}"#,
                FrameError::NotRequest {
                    id: Some("7".into()),
                },
            ),
            (r#"{"type":"req","method":"x"}"#, FrameError::BadId),
            (r#"{"type":"req","id":"","method":"x"}"#, FrameError::BadId),
            (r#"{"type":"req","id":5,"method":"x"}"#, FrameError::BadId),
            (
                r#"{"type":"req","id":"9"}"#,
                FrameError::BadMethod { id: "9".into() },
            ),
            (
                r#"{"type":"req","id":"9","method":""}"#,
                FrameError::BadMethod { id: "9".into() },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_request(text).unwrap_err(), want, "{text}");
        }
        assert_eq!(FrameError::BadId.response_id(), "invalid");
        assert_eq!(FrameError::BadMethod { id: "9".into() }.response_id(), "9");
    }

    #[test]
    fn the_fast_path_agrees_with_the_lenient_one() {
        let frames = [
            r#"{"type":"req","id":"1:a","method":"health"}"#,
            r#"{"type":"req","id":"x","method":"m","params":{"a":[1,2.5,"s"]}}"#,
            r#"{"method":"m\u00e9","params":null,"id":"a\"b","type":"req","extra":1}"#,
            r#"{"type":"req","id":"x","method":"m","params":7}"#,
            r#"{"type":"req","id":"x","id":"y","method":"m"}"#,
            r#"{"type":"re\u0071","id":"x","method":"m"}"#,
            r#"{"type":"req","id":"","method":"m"}"#,
            r#"{"type":"req","id":"x","method":5}"#,
            r#"{"type":"event","id":"x","method":"m"}"#,
            "[]",
        ];
        for text in frames {
            assert_eq!(parse_request(text), parse_request_lenient(text), "{text}");
        }
        // The escaped spellings are decoded either way.
        let r = parse_request(frames[2]).unwrap();
        assert_eq!((r.id.as_str(), r.method.as_str()), ("a\"b", "m\u{e9}"));
    }

    #[test]
    fn build_frames() {
        let r: Value = serde_json::from_str(&response_ok("a", json!({"x":1}))).unwrap();
        assert_eq!(
            r,
            json!({"type":"res","id":"a","ok":true,"payload":{"x":1}})
        );
        let e: Value =
            serde_json::from_str(&response_err("b", &ErrorShape::unknown_method("nope"))).unwrap();
        assert_eq!(
            e,
            json!({"type":"res","id":"b","ok":false,
                   "error":{"code":"INVALID_REQUEST","message":"unknown method: nope"}})
        );
        let ev: Value =
            serde_json::from_str(&event("tick", &json!({"ts":5}), Some(3), None)).unwrap();
        assert_eq!(
            ev,
            json!({"type":"event","event":"tick","payload":{"ts":5},"seq":3})
        );
        let ch: Value =
            serde_json::from_str(&event("connect.challenge", &json!({}), None, None)).unwrap();
        assert!(ch.get("seq").is_none());
    }

    #[test]
    fn missing_scope_shape() {
        let v = serde_json::to_value(ErrorShape::missing_scope("operator.read")).unwrap();
        assert_eq!(
            v,
            json!({"code":"FORBIDDEN","message":"missing scope: operator.read",
                   "details":{"code":"MISSING_SCOPE","missingScope":"operator.read",
                              "requiredScopes":["operator.read"]}})
        );
    }

    #[test]
    fn numbers_in_params_keep_their_exact_value() {
        // Found by fuzzing: without serde_json's float_roundtrip, 220E22 parsed one ulp
        // off, so a relayed frame carried a different number than the client sent.
        for n in [
            "220E22",
            "0.1",
            "1e-7",
            "2.2e24",
            "8.200000000000001",
            "1.7976931348623157e308",
        ] {
            let text = format!(r#"{{"type":"req","id":"1","method":"m","params":[{n}]}}"#);
            let req = parse_request(&text).unwrap();
            let want: f64 = n.parse().unwrap();
            let got = req.params.as_ref().and_then(|p| p[0].as_f64());
            assert_eq!(got, Some(want), "{n}");
            let again = json!({"type": "req", "id": "1", "method": "m", "params": req.params});
            assert_eq!(parse_request(&again.to_string()), Ok(req), "{n}");
        }
    }
}
