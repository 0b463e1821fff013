//! In-process harness: starts the actor runtime inside the test's own tokio runtime on
//! `127.0.0.1:0` (no binary, no fixed port), so tests can pause time, reach the shared
//! parts and the typed actor references directly, and run several gateways at once.

use std::path::PathBuf;

use openclaw_actors::config::{self, Inputs};
use openclaw_actors::gateway::{self, Gateway};
use openclaw_actors::shared::Hub;

use super::{temp_dir, TOKEN};

/// A gateway running in this process.
pub struct InProc {
    /// The running gateway (root, shared parts, peers).
    pub gw: Gateway,
    /// Its throwaway HOME (state dir under `.openclaw`).
    pub home: PathBuf,
}

// === impl InProc ===

impl InProc {
    /// Starts a gateway with `config` (JSON5; `{}` when `None`) and `env` on top of
    /// `HOME` and `OPENCLAW_GATEWAY_TOKEN`.
    pub async fn start(config: Option<&str>, env: &[(&str, &str)]) -> InProc {
        let home = temp_dir("inproc");
        let dir = home.join(".openclaw");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("openclaw.json");
        std::fs::write(&path, config.unwrap_or("{}")).unwrap();
        let inputs = Inputs {
            config: Some(path),
            port: Some(0),
            ..Default::default()
        };
        let mut vars: Vec<(String, String)> = vec![
            ("HOME".into(), home.display().to_string()),
            ("OPENCLAW_GATEWAY_TOKEN".into(), TOKEN.into()),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let lookup = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let settings = config::resolve(&inputs, &lookup).unwrap_or_else(|e| panic!("{e}"));
        let gw = gateway::start(settings)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        InProc { gw, home }
    }

    /// Shared state.
    pub fn hub(&self) -> &Hub {
        &self.gw.hub
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.gw.hub.registry.port()
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port())
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.gw.hub.facts.settings.paths.config_path.clone()
    }
}
