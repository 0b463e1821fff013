//! One row per key: two small config files, resolved, and the keys the plan reports.

use super::*;
use crate::config::{resolve_with, HostInfo, Inputs};
use std::path::PathBuf;

use crate::config::resolve::tests::env_of;

fn loopback_host() -> HostInfo {
    HostInfo {
        addrs: Box::new(|| vec!["127.0.0.1".parse().unwrap()]),
        in_container: Box::new(|| false),
    }
}

/// Resolves `text` as the config file, with `extra` in the environment.
fn settings(name: &str, text: &str, extra: &[(&str, &str)]) -> Settings {
    let d: PathBuf = std::env::temp_dir().join(format!("oc-plan-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let cfg = d.join("openclaw.json");
    std::fs::write(&cfg, text).unwrap();
    let home = d.to_str().unwrap().to_string();
    let mut pairs = vec![("HOME", home.as_str())];
    pairs.extend_from_slice(extra);
    let inputs = Inputs {
        config: Some(cfg),
        ..Default::default()
    };
    let s = resolve_with(&inputs, &env_of(&pairs), &loopback_host())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    std::fs::remove_dir_all(&d).unwrap();
    s
}

const PREAUTH: &str = "OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP";

#[test]
fn plan_table() {
    // (name, old file, new file, env of the new side, apply, restart)
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static [&'static str],
        &'static [&'static str],
    );
    let rows: &[Row] = &[
        ("no change", "{}", "{}", &[], &[], &[]),
        ("same token", "{gateway:{auth:{token:'t1'}}}", "{gateway:{auth:{token:'t1'}}}", &[], &[], &[]),
        ("token", "{gateway:{auth:{token:'t1'}}}", "{gateway:{auth:{token:'t2'}}}", &[], &["gateway.auth.token"], &[]),
        ("token added", "{}", "{gateway:{auth:{token:'t1'}}}", &[], &["gateway.auth.token"], &[]),
        (
            "password",
            "{gateway:{auth:{mode:'password',password:'p1'}}}",
            "{gateway:{auth:{mode:'password',password:'p2'}}}",
            &[],
            &["gateway.auth.password"],
            &[],
        ),
        ("allowlist", "{gateway:{allowedIPs:['10.0.0.0/8']}}", "{gateway:{allowedIPs:['10.0.0.0/8','192.168.0.0/16']}}", &[], &["gateway.allowedIPs"], &[]),
        ("allowLoopback", "{}", "{gateway:{allowLoopback:false}}", &[], &["gateway.allowedIPs"], &[]),
        ("trustedProxies", "{}", "{gateway:{trustedProxies:['127.0.0.1']}}", &[], &["gateway.trustedProxies"], &[]),
        ("realIpFallback", "{}", "{gateway:{allowRealIpFallback:true}}", &[], &["gateway.trustedProxies"], &[]),
        (
            "trustedProxy auth",
            "{gateway:{trustedProxies:['127.0.0.1'],auth:{mode:'trusted-proxy',trustedProxy:{userHeader:'x-user'}}}}",
            "{gateway:{trustedProxies:['127.0.0.1'],auth:{mode:'trusted-proxy',trustedProxy:{userHeader:'x-who'}}}}",
            &[],
            &["gateway.auth.trustedProxy"],
            &[],
        ),
        ("rateLimit", "{}", "{gateway:{rateLimit:{maxRequests:5}}}", &[], &["gateway.rateLimit"], &[]),
        ("preauth cap", "{}", "{}", &[(PREAUTH, "3")], &[PREAUTH], &[]),
        ("lockout", "{}", "{gateway:{auth:{rateLimit:{maxAttempts:3}}}}", &[], &["gateway.auth.rateLimit"], &[]),
        ("port", "{gateway:{port:20000}}", "{gateway:{port:20001}}", &[], &[], &["gateway.port"]),
        ("bind mode", "{}", "{gateway:{bind:'auto'}}", &[], &[], &["gateway.bind"]),
        ("bind host", "{gateway:{bind:'127.0.0.2'}}", "{gateway:{bind:'127.0.0.3'}}", &[], &[], &["gateway.bind"]),
        ("auth mode", "{}", "{gateway:{auth:{mode:'none'}}}", &[], &[], &["gateway.auth.mode"]),
        ("tls", "{}", "{gateway:{tls:{enabled:false}}}", &[], &[], &["gateway.tls"]),
        ("tailscale mode", "{}", "{gateway:{tailscale:{mode:'off'}}}", &[], &[], &["gateway.tailscale.mode"]),
        ("tailscale without mode", "{}", "{gateway:{tailscale:{}}}", &[], &[], &[]),
        (
            "tailscale allowedUsers",
            "{gateway:{tailscale:{mode:'serve',auth:{allowedUsers:['a@x']}}}}",
            "{gateway:{tailscale:{mode:'serve',auth:{allowedUsers:['a@x','b@x']}}}}",
            &[],
            &["gateway.tailscale.auth.allowedUsers"],
            &[],
        ),
        (
            "identityScopes",
            "{gateway:{tailscale:{mode:'serve'}}}",
            "{gateway:{tailscale:{mode:'serve'},auth:{identityScopes:{'a@x':['operator.write']}}}}",
            &[],
            &["gateway.auth.identityScopes"],
            &[],
        ),
        (
            "tailscale identity auth switch",
            "{gateway:{tailscale:{mode:'serve'}}}",
            "{gateway:{tailscale:{mode:'serve',auth:{enabled:false}}}}",
            &[],
            &[],
            &["gateway.tailscale.auth.enabled"],
        ),
        ("handshakeTimeoutMs", "{}", "{gateway:{handshakeTimeoutMs:20000}}", &[], &[], &["gateway.handshakeTimeoutMs"]),
        ("tickIntervalMs", "{}", "{gateway:{tickIntervalMs:1000}}", &[], &[], &["gateway.tickIntervalMs"]),
        ("shutdownGraceMs", "{}", "{gateway:{shutdownGraceMs:1}}", &[], &[], &["gateway.shutdownGraceMs"]),
        (
            "tunnels",
            "{}",
            "{tunnels:[{name:'a',sshTarget:'me@h',localPort:20100,remotePort:18789}]}",
            &[],
            &["tunnels"],
            &[],
        ),
        ("logging level", "{}", "{logging:{level:'debug'}}", &[], &["logging.level"], &[]),
        ("logging file", "{}", "{logging:{file:'/tmp/oc-other.log'}}", &[], &[], &["logging"]),
        ("browser", "{}", "{browser:{cdpUrl:'http://127.0.0.1:9222'}}", &[], &[], &["browser"]),
        ("reload", "{}", "{gateway:{reload:{mode:'off'}}}", &[], &[], &["gateway.reload"]),
        (
            "both kinds, table order",
            "{gateway:{port:20000,auth:{token:'t1'}}}",
            "{gateway:{port:20001,allowLoopback:false,auth:{token:'t2',rateLimit:{enabled:false}}},logging:{file:'/tmp/oc-x.log'}}",
            &[],
            &["gateway.auth.token", "gateway.allowedIPs", "gateway.auth.rateLimit"],
            &["gateway.port", "logging"],
        ),
    ];
    assert!(!rows.is_empty());
    for (i, (name, old, new, env, apply, restart)) in rows.iter().enumerate() {
        let old = settings(&format!("{i}-old"), old, &[]);
        let new = settings(&format!("{i}-new"), new, env);
        let want = Plan {
            apply: apply.to_vec(),
            restart: restart.to_vec(),
        };
        assert_eq!(plan(&old, &new), want, "{name}");
        assert_eq!(plan(&old, &old), Plan::default(), "{name}: old vs itself");
    }
}
