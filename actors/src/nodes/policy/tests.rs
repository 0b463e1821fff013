//! Table-driven tests of the node rules.

use super::*;
use serde_json::json;

fn v(x: &[&str]) -> Vec<String> {
    x.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_real_node_hosts_21_commands_become_13_and_need_admin() {
    let declared = v(&[
        "browser.proxy",
        "browser.proxy.upload.v1",
        "desktop.stream",
        "dir.fetch",
        "dir.list",
        "file.create",
        "file.fetch",
        "file.stat",
        "file.write",
        "fs.listDir",
        "mcp.tools.call.v1",
        "ollama.chat",
        "ollama.models",
        "system.execApprovals.get",
        "system.execApprovals.set",
        "system.run",
        "system.run.prepare",
        "system.which",
        "terminal.upload",
        "workspace.memory",
        "workspace.skills",
    ]);
    let (allowed, withheld) = split_surface(&declared);
    assert_eq!((allowed.len(), withheld.len()), (13, 8));
    assert_eq!(
        required_approve_scopes(&allowed),
        v(&["operator.pairing", "operator.admin"])
    );
    assert_eq!(
        required_approve_scopes(&v(&["ollama.chat"])),
        v(&["operator.pairing", "operator.write"])
    );
    assert_eq!(required_approve_scopes(&[]), v(&["operator.pairing"]));
}

#[test]
fn invoke_scopes() {
    assert_eq!(invoke_scope("system.which"), WRITE);
    assert_eq!(invoke_scope("system.run"), WRITE);
    assert_eq!(invoke_scope("fs.listDir"), ADMIN);
    assert_eq!(invoke_scope("browser.proxy"), ADMIN);
}

#[test]
fn invoke_params_are_checked_like_the_real_gateway() {
    let ok = json!({"nodeId":"n","command":"system.which","params":{"bins":["sh"]},"idempotencyKey":"k"});
    let p = parse_invoke(Some(&ok)).unwrap();
    assert_eq!(p.timeout, DEFAULT_INVOKE_TIMEOUT);
    assert_eq!(p.params, Some(json!({"bins":["sh"]})));
    let with = |k: &str, val: serde_json::Value| {
        let mut x = ok.clone();
        x[k] = val;
        x
    };
    assert_eq!(
        parse_invoke(Some(&with("timeoutMs", json!(2000))))
            .unwrap()
            .timeout,
        Duration::from_millis(2000)
    );
    assert_eq!(
        parse_invoke(Some(&with("timeoutMs", json!(0))))
            .unwrap()
            .timeout,
        MAX_INVOKE_TIMEOUT
    );
    assert_eq!(
        parse_invoke(Some(&with("timeoutMs", json!(10_000_000))))
            .unwrap()
            .timeout,
        MAX_INVOKE_TIMEOUT
    );
    let mut no_key = ok.clone();
    no_key.as_object_mut().unwrap().remove("idempotencyKey");
    let cases = [
        (
            no_key,
            "invalid node.invoke params: must have required property 'idempotencyKey'",
        ),
        (
            with("timeoutMs", json!(-1)),
            "at /timeoutMs: must be integer >= 0",
        ),
        (
            with("bogus", json!(1)),
            "must NOT have additional properties ('bogus')",
        ),
        (
            with("nodeId", json!(7)),
            "at /nodeId: must be a non-empty string",
        ),
        (json!([1]), "must be object"),
    ];
    for (params, want) in cases {
        let e = parse_invoke(Some(&params)).unwrap_err();
        assert_eq!(e.code, "INVALID_REQUEST");
        assert!(
            e.message.contains(want),
            "{} should contain {want}",
            e.message
        );
    }
}

#[test]
fn command_refusals() {
    let declared = v(&["system.which", "system.run", "file.stat"]);
    let exposed = v(&["system.which"]);
    let r = |c: &str| {
        command_refusal(c, "linux", &declared, &exposed)
            .map(|e| (e.message, e.details.unwrap()["reason"].clone()))
    };
    assert!(r("system.which").is_none());
    let (m, reason) = r("system.notify").unwrap();
    assert_eq!(
        m,
        "node command not allowed: the node (platform: linux) does not support \"system.notify\""
    );
    assert_eq!(reason, "command not declared by node");
    let (m, reason) = r("file.stat").unwrap();
    assert_eq!(
        m,
        "node command not allowed: \"file.stat\" is not in the allowlist for platform \"linux\""
    );
    assert_eq!(reason, "command not allowlisted");
    assert_eq!(r("system.run").unwrap().1, "command not approved");
    assert!(refuse_command("system.execApprovals.get")
        .unwrap()
        .message
        .contains("exec.approvals.node"));
    assert!(refuse_command("system.run").is_none());
}

#[test]
fn results_are_normalised_and_answered_in_the_operator_shape() {
    let r = parse_result(Some(
        &json!({"id":"i","nodeId":"n","ok":true,"payloadJSON":"{\"a\":1}","error":null}),
    ))
    .unwrap();
    assert_eq!(
        (r.payload_json.as_deref(), r.error.is_none()),
        (Some("{\"a\":1}"), true)
    );
    let r2 = parse_result(Some(
        &json!({"id":"i","nodeId":"n","ok":true,"payloadJSON":{"a":1}}),
    ))
    .unwrap();
    assert_eq!((r2.payload, r2.payload_json), (Some(json!({"a":1})), None));
    let r3 = parse_result(Some(
        &json!({"id":"i","nodeId":"n","ok":false,"error":{"code":"X","message":"boom"}}),
    ))
    .unwrap();
    assert_eq!(r3.error, Some(("X".into(), "boom".into())));
    assert!(parse_result(Some(&json!({"nodeId":"n","ok":true}))).is_err());

    let res = invoke_response("n", "system.which", None, Some("{\"bins\":{}}".into()));
    assert_eq!(
        res,
        json!({"ok":true,"nodeId":"n","command":"system.which","payload":{"bins":{}},"payloadJSON":"{\"bins\":{}}"})
    );
    let raw = invoke_response("n", "c", None, Some("not json".into()));
    assert_eq!(raw["payload"], json!({"payloadJSON": "not json"}));
    let e = node_error("TIMEOUT", "node invoke timed out", true);
    assert_eq!(e.message, "TIMEOUT: node invoke timed out");
    assert_eq!(e.details.unwrap()["nodeError"]["code"], "TIMEOUT");
}

#[test]
fn the_size_estimate_is_an_upper_bound() {
    for text in ["{\"a\":\"x\\\"y\"}", "[1,2,3]", "\"plain\""] {
        let real = invoke_response("n", "c", None, Some(text.into()))
            .to_string()
            .len();
        let est = response_size_estimate(Some(text), None);
        assert!(est >= real, "{text}: estimate {est} < {real}");
    }
}

#[test]
fn system_run_gets_a_run_id_others_pass_through() {
    let p = json!({"command":["echo","hi"]});
    let s = params_json("system.run", Some(&p), "r1").unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&s).unwrap(),
        json!({"command":["echo","hi"],"runId":"r1"})
    );
    assert_eq!(
        params_json("system.which", Some(&json!({"bins":[]})), "r").unwrap(),
        "{\"bins\":[]}"
    );
    assert_eq!(params_json("system.which", None, "r"), None);
    assert_eq!(
        strings(Some(&json!(["a", 1, "a", "b"])), 10),
        v(&["a", "b"])
    );
    assert_eq!(strings(Some(&json!(["a", "b", "c"])), 2), v(&["a", "b"]));
}
