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

/// Installs the subscriber and a panic hook that reports through tracing.
pub fn init(level: &str, file: &Path) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v)
            .map_err(|e| format!("env RUST_LOG={v:?} is not a valid filter: {e}"))?,
        _ => EnvFilter::new(format!("{level},hyper=warn,ractor=warn")),
    };
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
    Ok(())
}
