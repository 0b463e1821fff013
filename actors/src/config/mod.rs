//! Configuration: the file schema, loading, and resolution of flags > env > file > defaults
//! into the [`Settings`] the runtime uses.

pub mod bind;
pub mod load;
pub mod plan;
pub mod policy;
pub mod reloader;
pub mod resolve;
pub mod schema;
pub mod ssh_config;
pub mod tailscale;
pub mod tls;
pub mod tunnels;

pub use bind::{BindPlan, HostInfo};
pub use load::ConfigError;
pub use plan::Plan;
pub use resolve::{
    resolve, resolve_paths, resolve_with, AuthMode, AuthSettings, Inputs, Paths, Settings, Source,
};
pub use schema::FileConfig;

/// Default gateway port.
pub const DEFAULT_PORT: u16 = 18789;
/// Port of the `dev` profile.
pub const DEV_PORT: u16 = 19001;
/// Default grace period for shutdown.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Default token length rules (`tokenValidation`).
pub const DEFAULT_TOKEN_MIN_LENGTH: usize = 32;
