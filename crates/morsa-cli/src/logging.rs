//! Logs of the long-running commands: to stderr, filtered by `RUST_LOG` (default `info`).

/// Installs the subscriber once; later calls do nothing.
pub fn init() {
    init_with_default("info");
}

/// Installs the subscriber with `default` as the filter when `RUST_LOG` is not set.
pub fn init_with_default(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
