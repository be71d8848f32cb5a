//! Logging of the `morsa` binary: human-readable lines on stderr, filtered by `RUST_LOG`.

/// Installs the stderr subscriber with `default` as the filter when `RUST_LOG` is unset or
/// invalid (e.g. `"info"`, `"warn,morsa_node=debug"`). Only the first call in a process
/// installs it; later calls do nothing.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
