//! Diagnostic logging: stderr plus the gateway log file (read by `logs.tail`). `RUST_LOG`
//! overrides `--log-level`; at `trace` every actor message is logged inside its `conn` span.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::MakeWriterExt;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Switches the filter of the installed subscriber at run time.
pub struct Reload {
    handle: tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    /// The filter installed at start.
    pub initial: String,
    /// `RUST_LOG` chose it (config reloads then leave it alone).
    pub from_env: bool,
}

impl Reload {
    /// A setter for the gateway's `LogControl`: validates, then swaps the filter.
    pub fn setter(&self) -> openclaw_actors::shared::SetFilter {
        let handle = self.handle.clone();
        Box::new(move |filter: &str| {
            let f = EnvFilter::try_new(filter)
                .map_err(|e| format!("{filter:?} is not a valid log filter: {e}"))?;
            handle
                .reload(f)
                .map_err(|e| format!("cannot switch the log filter: {e}"))?;
            Ok(String::new())
        })
    }
}

/// Installs the subscriber and a panic hook that reports through tracing; the returned
/// handle switches the filter later.
pub fn init(level: &str, file: &Path) -> Result<Reload, String> {
    let (filter, initial, from_env) = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => (
            EnvFilter::try_new(&v)
                .map_err(|e| format!("env RUST_LOG={v:?} is not a valid filter: {e}"))?,
            v,
            true,
        ),
        _ => {
            let f = openclaw_actors::shared::LogControl::level_filter(level);
            (EnvFilter::new(&f), f, false)
        }
    };
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    if let Some(dir) = file.parent() {
        openclaw_actors::state::ensure_private_dir(dir)
            .map_err(|e| format!("cannot create log dir {}: {e}", dir.display()))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| {
            format!(
                "cannot open log file {}: {e} (set logging.file)",
                file.display()
            )
        })?;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr.with_max_level(tracing::Level::TRACE))
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let to_file = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(f))
        .with_ansi(false)
        .with_target(true);
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(to_file)
        .try_init()
        .map_err(|e| e.to_string())?;
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
    Ok(Reload {
        handle,
        initial,
        from_env,
    })
}
