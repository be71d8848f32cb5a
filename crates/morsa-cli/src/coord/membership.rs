//! `morsa coord add-replica` and `morsa coord remove-replica`: change a running group's
//! membership through any replica (it forwards to the leader), with the admin token.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use morsa_api::client::{ClientOptions, CoordClient};
use morsa_api::coord::Membership;

use crate::blobs::runtime;

/// Where to send a membership change and how to authorize it.
#[derive(Debug, Args)]
pub struct GroupArgs {
    /// A replica of the group (the change is forwarded to the leader); repeat the option to
    /// give several, tried in turn.
    #[arg(long = "coordinator", value_name = "URL", required = true)]
    coordinators: Vec<String>,
    /// The file holding the admin token (the one `admin_token_file` in the replicas'
    /// coord.toml names).
    #[arg(long, value_name = "FILE", env = "MORSA_ADMIN_TOKEN_FILE")]
    admin_token_file: PathBuf,
    /// Print the group after the change as one JSON object.
    #[arg(long)]
    json: bool,
}

/// Options of `morsa coord add-replica`.
#[derive(Debug, Args)]
pub struct AddReplicaArgs {
    #[command(flatten)]
    group: GroupArgs,
    /// The new replica's ID (its coord.toml `id`), unique in the group.
    #[arg(long, value_name = "ID")]
    id: u64,
    /// The URL the other replicas reach the new replica at, e.g. `http://10.0.0.4:7001`.
    #[arg(long, value_name = "REPLICA_URL")]
    url: String,
}

/// Options of `morsa coord remove-replica`.
#[derive(Debug, Args)]
pub struct RemoveReplicaArgs {
    #[command(flatten)]
    group: GroupArgs,
    /// The ID of the replica to remove.
    #[arg(long, value_name = "ID")]
    id: u64,
}

impl GroupArgs {
    fn client(&self) -> anyhow::Result<CoordClient> {
        CoordClient::with_urls(&self.coordinators, ClientOptions::default())
            .context("invalid --coordinator URL")
    }

    fn token(&self) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(&self.admin_token_file).with_context(|| {
            format!("cannot read the admin token file {}", self.admin_token_file.display())
        })?;
        Ok(text.trim().to_owned())
    }

    fn print(&self, what: &str, membership: &Membership) -> anyhow::Result<()> {
        if self.json {
            outln!("{}", serde_json::to_string(membership)?);
            return Ok(());
        }
        outln!("{what}; the group (led by replica {}):", membership.leader);
        for member in &membership.replicas {
            let role = if member.voter { "voter" } else { "learner" };
            outln!("  replica {} {} {role}", member.id, member.url);
        }
        Ok(())
    }
}

/// Runs `morsa coord add-replica`.
pub fn add(args: &AddReplicaArgs) -> anyhow::Result<()> {
    let (client, token) = (args.group.client()?, args.group.token()?);
    let membership = runtime()?
        .block_on(client.add_replica(&token, args.id, &args.url))
        .with_context(|| format!("replica {} at {} was not added", args.id, args.url))?;
    args.group.print(&format!("replica {} added and caught up", args.id), &membership)
}

/// Runs `morsa coord remove-replica`.
pub fn remove(args: &RemoveReplicaArgs) -> anyhow::Result<()> {
    let (client, token) = (args.group.client()?, args.group.token()?);
    let membership = runtime()?
        .block_on(client.remove_replica(&token, args.id))
        .with_context(|| format!("replica {} was not removed", args.id))?;
    args.group.print(&format!("replica {} removed", args.id), &membership)
}
