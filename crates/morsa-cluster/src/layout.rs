//! The cluster directory: the names of its files and the exact text of the ones we write.
//!
//! ```text
//! DIR/genesis.json   coord.toml   coord/          the coordinator's config and log
//! DIR/coordI.toml    coordI/                      coordinator replica I ≥ 1 (of --coordinators)
//! DIR/coord-admin.token                           authorizes `morsa coord add-replica`, mode 0600
//! DIR/nodeI.key      nodeI.toml   nodeI/          node I's BLS key, config and database
//! DIR/account.key    client.toml                  the funded user account and the client config
//! DIR/gateway.toml   gateway/     s3.env          the S3 gateway's config, database, keys
//! DIR/gateway.keyring  gateway.passphrase         the keyring objects are encrypted with
//! DIR/cluster.json                                who runs where (pids, URLs, shards)
//! DIR/logs/coord.log logs/nodeI.log               everything the processes print
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use morsa_core::AccountKey;

/// The genesis file.
pub const GENESIS: &str = "genesis.json";
/// The coordinator's configuration.
pub const COORD_CONFIG: &str = "coord.toml";
/// The coordinator replicas' admin token (named by every replica's `admin_token_file`): it
/// authorizes `morsa coord add-replica` and `remove-replica`; mode 0600.
pub const COORD_ADMIN_TOKEN: &str = "coord-admin.token";
/// The user account's key: 64 lowercase hex characters of its seed and a newline, mode 0600.
pub const ACCOUNT_KEY: &str = "account.key";
/// The client's configuration (`MORSA_CONFIG`).
pub const CLIENT_CONFIG: &str = "client.toml";
/// Who runs where: [`crate::ClusterState`] as JSON.
pub const STATE: &str = "cluster.json";
/// The directory of the processes' logs.
pub const LOGS: &str = "logs";
/// The S3 gateway's configuration.
pub const GATEWAY_CONFIG: &str = "gateway.toml";
/// The S3 gateway's data directory (its database), relative to the cluster directory.
pub const GATEWAY_DATA: &str = "gateway";
/// The keyring the gateway encrypts objects with (`morsa key` reads it with `--keyring`).
pub const GATEWAY_KEYRING: &str = "gateway.keyring";
/// The random passphrase of [`GATEWAY_KEYRING`], mode 0600.
pub const GATEWAY_PASSPHRASE: &str = "gateway.passphrase";
/// `export` lines for S3 clients: the gateway's endpoint and a user's keys, mode 0600.
pub const S3_ENV: &str = "s3.env";

/// The gateway's log, relative to the cluster directory.
pub fn gateway_log() -> PathBuf {
    Path::new(LOGS).join("gateway.log")
}

/// The text of `s3.env`: what aws cli, restic, rclone and boto3 read from the environment.
pub fn s3_env(access_key_id: &str, secret_access_key: &str, endpoint: &str, region: &str) -> String {
    format!(
        "export AWS_ACCESS_KEY_ID={access_key_id}\nexport AWS_SECRET_ACCESS_KEY={secret_access_key}\n\
         export AWS_ENDPOINT_URL={endpoint}\nexport AWS_REGION={region}\nexport AWS_DEFAULT_REGION={region}\n"
    )
}

/// Node `index`'s configuration file name.
pub fn node_config(index: usize) -> String {
    format!("node{index}.toml")
}

/// Node `index`'s BLS key file name.
pub fn node_key(index: usize) -> String {
    format!("node{index}.key")
}

/// The key of node `index`'s operator account (it signs the node's `RetireNode` and
/// `Withdraw`).
pub fn node_operator_key(index: usize) -> String {
    format!("node{index}.operator.key")
}

/// Node `index`'s log, relative to the cluster directory.
pub fn node_log(index: usize) -> PathBuf {
    Path::new(LOGS).join(format!("node{index}.log"))
}

/// The coordinator's log, relative to the cluster directory.
pub fn coord_log() -> PathBuf {
    Path::new(LOGS).join("coord.log")
}

/// The name shared by coordinator replica `index`'s files: `coord` for the first, `coordI`
/// for the others.
fn coord_name(index: usize) -> String {
    if index == 0 { "coord".to_owned() } else { format!("coord{index}") }
}

/// Coordinator replica `index`'s configuration file name (`coord.toml` for the first).
pub fn coord_config(index: usize) -> String {
    format!("{}.toml", coord_name(index))
}

/// Coordinator replica `index`'s log, relative to the cluster directory.
pub fn coord_replica_log(index: usize) -> PathBuf {
    Path::new(LOGS).join(format!("{}.log", coord_name(index)))
}

/// The text of `coord.toml` (paths relative to the cluster directory).
pub fn coord_toml(listen: SocketAddr) -> String {
    format!(
        "listen = \"{listen}\"\ndata_dir = \"coord\"\ngenesis = \"{GENESIS}\"\n\
         admin_token_file = \"{COORD_ADMIN_TOKEN}\"\n"
    )
}

/// Appended to every `coord.toml`: a local cluster's nodes summarize what they lack every
/// second ([`NODE_AVAILABILITY`]), so a node is counted as not reporting after four seconds
/// (production defaults: 10 s and 30 s), and a killed node shows in the margin at once.
pub const COORD_AVAILABILITY: &str = "\n[availability]\nstale_after_ms = 4000\n";

/// Appended to every `nodeI.toml` (see [`COORD_AVAILABILITY`]).
pub const NODE_AVAILABILITY: &str = "\n[availability]\nreport_interval_ms = 1000\n";

/// Appended to `coord.toml` for a coordinator whose epochs can be ended on demand.
pub const MANUAL_EPOCHS: &str = "\n[testing]\nmanual_epochs = true\n";

/// The text of replica `index`'s config in a group listening on `group` (replica IDs are
/// indices + 1); a group of one is [`coord_toml`].
pub fn coord_replica_toml(index: usize, group: &[SocketAddr]) -> String {
    if group.len() == 1 {
        return coord_toml(group[0]);
    }
    let mut text = format!(
        "listen = \"{}\"\ndata_dir = \"{}\"\ngenesis = \"{GENESIS}\"\nid = {}\n\
         admin_token_file = \"{COORD_ADMIN_TOKEN}\"\n",
        group[index],
        coord_name(index),
        index + 1
    );
    for (other, address) in group.iter().enumerate() {
        text.push_str(&format!("[[replicas]]\nid = {}\nurl = \"http://{address}\"\n", other + 1));
    }
    text
}

/// The text of `nodeI.toml`: the node listens where the genesis says it is reached.
pub fn node_toml(index: usize, listen: SocketAddr, coordinator_urls: &[String]) -> String {
    format!(
        "listen = \"{listen}\"\ndata_dir = \"node{index}\"\nkey_file = \"{key}\"\n{}{NODE_AVAILABILITY}",
        coordinators_line(coordinator_urls),
        key = node_key(index)
    )
}

/// `coordinator_url = "…"` for one coordinator, `coordinator_urls = […]` for replicas.
fn coordinators_line(urls: &[String]) -> String {
    match urls {
        [one] => format!("coordinator_url = \"{one}\"\n"),
        many => {
            let quoted: Vec<String> = many.iter().map(|url| format!("\"{url}\"")).collect();
            format!("coordinator_urls = [{}]\n", quoted.join(", "))
        }
    }
}

/// The text of `client.toml`, exactly as `morsa store` reads it: the coordinator, the account
/// key, and the nodes a client without a cached committee asks when no coordinator answers.
pub fn client_toml(coordinator_urls: &[String], node_urls: &[String]) -> String {
    let nodes: Vec<String> = node_urls.iter().map(|url| format!("\"{url}\"")).collect();
    format!(
        "{}account_key_file = \"{ACCOUNT_KEY}\"\nnode_urls = [{}]\n",
        coordinators_line(coordinator_urls),
        nodes.join(", ")
    )
}

/// The text of `account.key`.
pub fn account_key_text(key: &AccountKey) -> String {
    format!("{}\n", hex::encode(key.seed()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use morsa_plumbing::file::{Access, create_new, replace};

    use super::*;

    const ADDRESS: &str = "127.0.0.1:7000";

    #[test]
    fn config_files_have_the_exact_expected_text() {
        let listen: SocketAddr = ADDRESS.parse().unwrap();
        assert_eq!(
            client_toml(
                &["http://127.0.0.1:7000".into()],
                &["http://127.0.0.1:9000".into(), "http://127.0.0.1:9001".into()]
            ),
            "coordinator_url = \"http://127.0.0.1:7000\"\naccount_key_file = \"account.key\"\n\
             node_urls = [\"http://127.0.0.1:9000\", \"http://127.0.0.1:9001\"]\n"
        );
        assert_eq!(
            coord_toml(listen),
            "listen = \"127.0.0.1:7000\"\ndata_dir = \"coord\"\ngenesis = \"genesis.json\"\n\
             admin_token_file = \"coord-admin.token\"\n"
        );
        assert_eq!(
            node_toml(3, "127.0.0.1:9003".parse().unwrap(), &["http://127.0.0.1:7000".into()]),
            "listen = \"127.0.0.1:9003\"\ndata_dir = \"node3\"\nkey_file = \"node3.key\"\n\
             coordinator_url = \"http://127.0.0.1:7000\"\n\n[availability]\nreport_interval_ms = 1000\n"
        );
        let replicas: Vec<String> = vec!["http://127.0.0.1:7001".into(), "http://127.0.0.1:7002".into()];
        assert_eq!(
            client_toml(&replicas, &[]),
            "coordinator_urls = [\"http://127.0.0.1:7001\", \"http://127.0.0.1:7002\"]\n\
             account_key_file = \"account.key\"\nnode_urls = []\n"
        );
        assert_eq!(node_log(2), Path::new("logs/node2.log"));
        assert_eq!(
            s3_env("AK", "SK", "http://127.0.0.1:9", "us-east-1"),
            "export AWS_ACCESS_KEY_ID=AK\nexport AWS_SECRET_ACCESS_KEY=SK\nexport AWS_ENDPOINT_URL=http://127.0.0.1:9\n\
             export AWS_REGION=us-east-1\nexport AWS_DEFAULT_REGION=us-east-1\n"
        );
    }

    #[test]
    fn replica_configs_name_the_whole_group_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let group: Vec<SocketAddr> =
            vec!["127.0.0.1:7001".parse().unwrap(), "127.0.0.1:7002".parse().unwrap()];
        assert_eq!(coord_replica_toml(0, &group[..1]), coord_toml(group[0]));
        let path = dir.path().join(coord_config(1));
        create_new(&path, coord_replica_toml(1, &group).as_bytes(), Access::Shared).unwrap();
        let loaded = morsa_coord::CoordConfig::load(&path).unwrap();
        assert_eq!((loaded.id, &loaded.data_dir), (2, &dir.path().join("coord1")));
        assert_eq!(loaded.admin_token_file, Some(dir.path().join(COORD_ADMIN_TOKEN)));
        assert_eq!(
            loaded.initial_replicas(),
            [(1, "http://127.0.0.1:7001".to_owned()), (2, "http://127.0.0.1:7002".to_owned())]
        );
        assert_eq!(coord_replica_log(0), coord_log());
    }

    #[test]
    fn written_configs_load_with_the_real_parsers() {
        let dir = tempfile::tempdir().unwrap();
        let coord = dir.path().join(COORD_CONFIG);
        create_new(&coord, coord_toml(ADDRESS.parse().unwrap()).as_bytes(), Access::Shared).unwrap();
        let loaded = morsa_coord::CoordConfig::load(&coord).unwrap();
        assert_eq!(loaded.genesis, dir.path().join(GENESIS));
        assert!(!loaded.testing.manual_epochs);
        let manual = dir.path().join("manual.toml");
        let text = coord_toml(ADDRESS.parse().unwrap()) + MANUAL_EPOCHS;
        create_new(&manual, text.as_bytes(), Access::Shared).unwrap();
        assert!(morsa_coord::CoordConfig::load(&manual).unwrap().testing.manual_epochs);
        let node = dir.path().join(node_config(0));
        let replicas: Vec<String> = vec!["http://127.0.0.1:7001".into(), "http://127.0.0.1:7002".into()];
        let text = node_toml(0, "127.0.0.1:9000".parse().unwrap(), &replicas);
        create_new(&node, text.as_bytes(), Access::Shared).unwrap();
        let loaded = morsa_node::NodeConfig::load(&node).unwrap();
        assert_eq!(loaded.key_file, dir.path().join("node0.key"));
        assert_eq!(loaded.data_dir, dir.path().join("node0"));
        assert_eq!(loaded.coordinator_urls, replicas);
    }

    #[test]
    fn the_account_key_is_hex_of_the_seed_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let key = AccountKey::from_seed([0xab; 32]);
        let path = dir.path().join(ACCOUNT_KEY);
        create_new(&path, account_key_text(&key).as_bytes(), Access::Secret).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", "ab".repeat(32)));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(
            create_new(&path, b"other", Access::Secret).is_err(),
            "an existing file is never overwritten"
        );
        replace(&dir.path().join(STATE), b"{}", Access::Shared).unwrap();
        replace(&dir.path().join(STATE), b"{\"a\":1}", Access::Shared).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(STATE)).unwrap(), "{\"a\":1}");
    }
}
