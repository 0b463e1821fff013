//! Unit tests of `openclaw nodes`: NODE resolution, scopes, `--params`, `system.run` results,
//! and the pure parts of its output.

use serde_json::json;

use super::print::{host_stats, human_bytes, list_rows, needs, status_row};
use super::*;

fn nodes() -> Vec<Value> {
    vec![
        json!({"nodeId": "548d1f00aa11bb22", "displayName": "peer-node", "remoteIp": "10.0.0.7"}),
        json!({"nodeId": "548d2e00cc33dd44", "displayName": "Build-Box", "remoteIp": "::ffff:10.0.0.8"}),
        json!({"nodeId": "77aa00bb11cc22dd", "displayName": "twin", "remoteIp": "10.0.0.9"}),
        json!({"nodeId": "99ff00ee11dd22cc", "displayName": "twin", "remoteIp": "10.0.0.9"}),
        // A display name that looks like another node's id must not shadow that id.
        json!({"nodeId": "abcdef0123456789", "displayName": "77aa00bb11cc22dd"}),
    ]
}

#[test]
fn nodes_resolve_by_id_then_name_then_ip_then_prefix() {
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("548d1f00aa11bb22", Ok("548d1f00aa11bb22")),
        ("77aa00bb11cc22dd", Ok("77aa00bb11cc22dd")),
        ("peer-node", Ok("548d1f00aa11bb22")),
        ("build-box", Ok("548d2e00cc33dd44")),
        ("  PEER-NODE ", Ok("548d1f00aa11bb22")),
        ("10.0.0.7", Ok("548d1f00aa11bb22")),
        ("10.0.0.8", Ok("548d2e00cc33dd44")),
        ("::ffff:10.0.0.8", Ok("548d2e00cc33dd44")),
        ("548d2e", Ok("548d2e00cc33dd44")),
        ("abcdef01", Ok("abcdef0123456789")),
        ("548d2", Err("at least 6 characters")),
        ("548d", Err("no node matches \"548d\"")),
        ("548d", Err("see openclaw nodes list")),
        (
            "twin",
            Err("\"twin\" matches 2 nodes: 77aa00bb11cc (twin), 99ff00ee11dd (twin)"),
        ),
        ("10.0.0.9", Err("matches 2 nodes")),
        ("548d", Err("no node matches")),
        (
            "nosuch",
            Err("no node matches \"nosuch\" (see openclaw nodes list)"),
        ),
        ("", Err("NODE is empty")),
    ];
    let list = nodes();
    for (q, want) in cases {
        match (resolve_node(&list, q), want) {
            (Ok(got), Ok(w)) => assert_eq!(got, *w, "{q:?}"),
            (Err(got), Err(w)) => assert!(got.contains(w), "{q:?}: {got}"),
            (got, _) => panic!("{q:?}: {got:?}, want {want:?}"),
        }
    }
    assert!(resolve_node(&[], "peer-node")
        .unwrap_err()
        .contains("no node matches"));
}

#[test]
fn approve_asks_for_the_request_s_required_scopes() {
    let list = json!({"pending": [
        {"requestId": "r1", "requiredApproveScopes": ["operator.pairing", "operator.admin"]},
        {"requestId": "r2", "requiredApproveScopes": ["operator.write"]},
        {"requestId": "r3"},
    ]});
    let got = |id| required_scopes(&list, id);
    assert_eq!(got("r1").unwrap(), ["operator.pairing", "operator.admin"]);
    assert_eq!(got("r2").unwrap(), ["operator.pairing", "operator.write"]);
    assert_eq!(got("r3").unwrap(), ["operator.pairing"]);
    assert_eq!(got("nosuch"), None);
    assert_eq!(required_scopes(&json!({}), "r1"), None);
    assert_eq!(
        needs(&list["pending"][0]["requiredApproveScopes"]),
        "operator.admin"
    );
    assert_eq!(needs(&json!(["operator.pairing"])), "-");
}

#[test]
fn invoke_asks_for_admin_only_for_admin_commands() {
    assert_eq!(invoke_scopes("system.run"), [READ, WRITE]);
    assert_eq!(invoke_scopes("system.which"), [READ, WRITE]);
    for c in [
        "browser.proxy",
        "browser.proxy.upload.v1",
        "fs.listDir",
        "terminal.upload",
    ] {
        assert_eq!(invoke_scopes(c), [READ, WRITE, ADMIN], "{c}");
    }
}

#[test]
fn params_must_be_a_json_object() {
    assert_eq!(parse_params(None), Ok(None));
    assert_eq!(
        parse_params(Some(r#"{"command": ["echo", "hi"]}"#)),
        Ok(Some(json!({"command": ["echo", "hi"]})))
    );
    let bad = parse_params(Some("{command: 1")).unwrap_err();
    assert!(bad.starts_with("--params is not valid JSON: "), "{bad}");
    assert!(bad.contains("line 1 column"), "{bad}");
    let arr = parse_params(Some("[1]")).unwrap_err();
    assert!(arr.contains("must be a JSON object, not an array"), "{arr}");
}

#[test]
fn system_run_payloads_map_to_output_and_exit_codes() {
    let run = |v: Value| run_output(&v).map(|r| (r.code, r.note));
    let ok = json!({"exitCode": 0, "timedOut": false, "success": true,
                    "stdout": "hello\n", "stderr": "", "error": null});
    let out = run_output(&ok).unwrap();
    assert_eq!((out.stdout, out.stderr, out.code), ("hello\n", "", 0));
    assert_eq!(run(json!({"exitCode": 3, "stderr": "x"})), Some((3, None)));
    assert_eq!(run(json!({"exitCode": 255})), Some((125, None)));
    assert_eq!(run(json!({"exitCode": -1})), Some((1, None)));
    assert_eq!(
        run(json!({"exitCode": null, "success": false, "timedOut": true, "stdout": ""})),
        Some((1, Some("the command timed out on the node".into())))
    );
    assert_eq!(
        run(json!({"success": false, "stderr": "", "error": "spawn ENOENT"})),
        Some((1, Some("spawn ENOENT".into())))
    );
    assert_eq!(run(json!({"bins": {"sh": "/usr/bin/sh"}})), None);
    assert_eq!(run(json!("text")), None);
    assert_eq!(run(Value::Null), None);
}

#[test]
fn list_shows_paired_nodes_node_list_left_out() {
    let pairs = json!({"paired": [{"nodeId": "a"}, {"nodeId": "b", "displayName": "off"}]});
    let listed = json!({"nodes": [{"nodeId": "a", "connected": true}]});
    let rows = list_rows(&pairs, &listed);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["nodeId"], "b");
    assert_eq!(rows[1]["connected"], false);
    assert_eq!(rows[1]["approvalState"], "approved");
}

#[test]
fn status_rows_and_host_stats_read_well() {
    let now = 1_000_000;
    let row = json!({"nodeId": "548d1f00aa11bb22", "displayName": "peer-node",
                     "approvalState": "approved", "remoteIp": "10.0.0.7", "connected": true,
                     "connectedAtMs": now - 192_000, "pendingInvokes": 2});
    let s = status_row(now, &row);
    assert!(s.starts_with("548d1f00aa11  peer-node "), "{s}");
    assert!(
        s.ends_with("from 10.0.0.7 · connected 3m12s · 2 invoke(s) pending"),
        "{s}"
    );
    let off = status_row(now, &json!({"nodeId": "x", "connected": false}));
    assert!(off.ends_with("from - · offline"), "{off}");
    let h = json!({"cpuCount": 2, "loadAverage": [0.4, 0.23, 0.39],
                   "memoryTotalBytes": 25_276_502_016u64, "memoryFreeBytes": 1_073_741_824u64,
                   "updatedAtMs": now - 12_000});
    assert_eq!(
        host_stats(now, &h),
        "2 CPUs · load 0.40 0.23 0.39 · memory 1.0 GiB free of 23.5 GiB · updated 12s ago"
    );
    assert_eq!(human_bytes(512), "512 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
}
