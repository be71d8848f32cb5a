//! `morsa gateway`: run the S3 gateway, manage its users' access keys.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use morsa_gateway::{Db, GatewayConfig};
use serde_json::json;

/// What `morsa gateway` can do.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Run the S3 gateway in the foreground until Ctrl-C or SIGTERM.
    Run(ConfigArgs),
    /// Users and their access keys (the gateway must not be running: it holds the database).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Rebuild a lost gateway database from a namespace snapshot stored on Morsa: the newest
    /// one among the gateway account's blobs, or --blob.
    RestoreNamespace(RestoreArgs),
}

/// Options of `morsa gateway restore-namespace`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The snapshot blob to restore (default: the newest snapshot the account stored).
    #[arg(long, value_name = "BLOB_ID", allow_hyphen_values = true)]
    blob: Option<redstuff::BlobId>,
    #[command(flatten)]
    config: ConfigArgs,
}

/// What `morsa gateway key` can do.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create user NAME with a new access key pair and print it.
    Create(CreateArgs),
    /// List the users and their access key IDs (not their secrets).
    List(ListArgs),
    /// Delete user NAME and its key (its buckets and objects stay).
    Delete(DeleteArgs),
}

/// The gateway's configuration file.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The gateway configuration (gateway.toml).
    #[arg(long, value_name = "FILE", env = "MORSA_GATEWAY_CONFIG")]
    config: PathBuf,
}

/// Options of `morsa gateway key create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The user's name: letters, digits, '-', '_' or '.'.
    name: String,
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

/// Options of `morsa gateway key list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

/// Options of `morsa gateway key delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The user.
    name: String,
    #[command(flatten)]
    config: ConfigArgs,
}

fn open(config: &ConfigArgs) -> anyhow::Result<Db> {
    let config = GatewayConfig::load(&config.config)?;
    Db::open(&config.database_path()).with_context(|| {
        format!(
            "cannot open the gateway's database (is the gateway running? stop it first): {}",
            config.database_path().display()
        )
    })
}

/// Runs one `morsa gateway` command.
pub fn run(command: &GatewayCommand) -> anyhow::Result<()> {
    match command {
        GatewayCommand::Run(args) => run_gateway(args),
        GatewayCommand::RestoreNamespace(args) => restore_namespace(args),
        GatewayCommand::Key(KeyCommand::Create(args)) => {
            let user = open(&args.config)?.create_user(&args.name)?;
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "name": user.name,
                        "access_key_id": user.access_key_id,
                        "secret_access_key": user.secret_access_key,
                    }))?
                );
            } else {
                outln!("user {}", user.name);
                outln!("AWS_ACCESS_KEY_ID={}", user.access_key_id);
                outln!("AWS_SECRET_ACCESS_KEY={}", user.secret_access_key);
            }
            Ok(())
        }
        GatewayCommand::Key(KeyCommand::List(args)) => {
            let users = open(&args.config)?.list_users()?;
            if args.json {
                let users: Vec<_> = users
                    .iter()
                    .map(|user| json!({ "name": user.name, "access_key_id": user.access_key_id }))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for user in &users {
                    outln!("{:<24} {}", user.name, user.access_key_id);
                }
            }
            Ok(())
        }
        GatewayCommand::Key(KeyCommand::Delete(args)) => {
            let user = open(&args.config)?.delete_user(&args.name)?;
            outln!("deleted user {} (access key {})", user.name, user.access_key_id);
            Ok(())
        }
    }
}

/// The malloc arenas the gateway runs with unless `MALLOC_ARENA_MAX` is set. glibc gives
/// threads that allocate at once arenas of their own (up to 8 per core) and keeps freed memory
/// in the arena that gave it, so the chunk buffers and encodings that the gateway's threads
/// allocate and free in turn leave each arena holding its own peak: 1 GiB PUTs peaked at
/// 532–611 MiB with the default arenas and 416–527 MiB with 2 (docs/PERFORMANCE.md, S3
/// gateway).
const MALLOC_ARENAS: &str = "2";

/// Runs this command again with `MALLOC_ARENA_MAX` set (the process keeps its id), unless it
/// is set already; if that fails the gateway runs on with the default arenas.
fn bound_malloc_arenas() {
    use std::os::unix::process::CommandExt as _;
    const VARIABLE: &str = "MALLOC_ARENA_MAX";
    if !cfg!(all(target_os = "linux", target_env = "gnu")) || std::env::var_os(VARIABLE).is_some() {
        return;
    }
    let error = match std::env::current_exe() {
        Ok(program) => std::process::Command::new(program)
            .args(std::env::args_os().skip(1))
            .env(VARIABLE, MALLOC_ARENAS)
            .exec(),
        Err(error) => error,
    };
    eprintln!("warning: running with glibc's default malloc arenas: setting {VARIABLE} failed: {error}");
}

fn run_gateway(args: &ConfigArgs) -> anyhow::Result<()> {
    bound_malloc_arenas();
    morsa_plumbing::telemetry::init_logging("info");
    let config = GatewayConfig::load(&args.config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        morsa_gateway::server::run(&config, crate::coord::shutdown_signal()).await?;
        tracing::info!("gateway stopped");
        Ok(())
    })
}

fn restore_namespace(args: &RestoreArgs) -> anyhow::Result<()> {
    morsa_plumbing::telemetry::init_logging("warn");
    let config = GatewayConfig::load(&args.config.config)?;
    let client_config = morsa_client::ClientConfig::load(&config.client_config)?;
    let key = morsa_gateway::snapshot::snapshot_key(&client_config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let restored = runtime.block_on(async {
        let client = morsa_client::Client::connect(&client_config).await?;
        morsa_gateway::snapshot::restore_namespace(&client, &key, &config.database_path(), args.blob).await
    })?;
    let counts = restored.counts;
    outln!(
        "restored namespace snapshot {} (blob {}): {} users, {} buckets, {} objects, {} multipart uploads",
        restored.record.sequence,
        restored.record.blob_id,
        counts.users,
        counts.buckets,
        counts.objects,
        counts.uploads
    );
    outln!("into {}", config.database_path().display());
    Ok(())
}
