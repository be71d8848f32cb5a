//! [`Cluster`]: the coordinator and the storage nodes of a local cluster, started, watched,
//! killed, restarted and stopped as real processes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use morsa_core::AccountKey;
use morsa_node::keys;
use morsa_plumbing::file::{self, Access};

mod gateway;
mod leader;
mod lifecycle;

pub use gateway::GATEWAY_USER;
pub use lifecycle::{operator_key, retire_node};

use crate::error::ClusterError;
use crate::genesis::{LocalNode, local_genesis};
use crate::layout;
use crate::link_shape::LinkShape;
use crate::netem::LinkShaper;
use crate::pids;
use crate::ports::{ReservedAddress, reserve_loopback_addresses};
use crate::process::{Launch, Process};
use crate::ready::{READY_TIMEOUT, block_on, node_ready};
use crate::spec::ClusterSpec;
use crate::state::{ClusterState, CoordinatorReplicaState, CoordinatorState, NodeInfo, NodeState};

/// How long a process may take to exit on SIGTERM before it is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running local cluster. Its methods block (they wait for processes); from async code,
/// call them on a blocking thread (`tokio::task::spawn_blocking`).
///
/// Dropping it SIGKILLs every process still running; [`Cluster::shutdown`] stops them
/// cleanly instead.
#[derive(Debug)]
pub struct Cluster {
    spec: ClusterSpec,
    coordinator_url: String,
    /// Every coordinator replica's URL, by index (the first is `coordinator_url`).
    coordinator_urls: Vec<String>,
    control_url: Option<String>,
    nodes: Vec<NodeInfo>,
    /// The S3 gateway and its URL, once started ([`Cluster::start_gateway`]); declared first
    /// among the processes so that it is dropped (killed) before the nodes.
    gateway: Option<(Process, String)>,
    node_processes: Vec<Process>,
    // Declared after the nodes so that they are dropped (killed) after them, as in a clean
    // shutdown.
    coordinators: Vec<Process>,
    /// The proxies in front of the nodes with a shaped link ([`crate::netem`]); dropped last,
    /// after every process.
    links: Option<LinkShaper>,
    /// Every address the cluster's processes listen on, kept for them while they are down
    /// too ([`crate::ports`]); dropped after the processes.
    reserved: Vec<ReservedAddress>,
    shut_down: bool,
}

impl Cluster {
    /// Creates the cluster directory `spec.dir`, writes keys, genesis and configs, starts the
    /// coordinator and the nodes, and waits until every node is ready (healthy and caught up
    /// with the coordinator's events). Blocks for up to about a minute.
    pub fn up(spec: ClusterSpec) -> Result<Self, ClusterError> {
        Self::launch(spec, false, morsa_coord::challenge::ChallengeRules::default())
    }

    /// [`Cluster::up`] with a coordinator whose epochs can also be ended on demand
    /// (`[testing] manual_epochs`, `CoordClient::next_epoch`): for tests that must not
    /// depend on how fast the machine is.
    pub fn up_with_manual_epochs(spec: ClusterSpec) -> Result<Self, ClusterError> {
        Self::launch(spec, true, morsa_coord::challenge::ChallengeRules::default())
    }

    /// [`Cluster::up`] with storage challenges on, as `rules` says (genesis
    /// `node_rules.challenges`).
    pub fn up_with_challenges(
        spec: ClusterSpec,
        rules: morsa_coord::challenge::ChallengeRules,
    ) -> Result<Self, ClusterError> {
        Self::launch(spec, false, rules)
    }

    fn launch(
        mut spec: ClusterSpec,
        manual_epochs: bool,
        challenges: morsa_coord::challenge::ChallengeRules,
    ) -> Result<Self, ClusterError> {
        spec.validate()?;
        spec.dir = prepare_dir(&spec.dir)?;
        let dir = spec.dir.clone();
        let reserved = reserve_loopback_addresses(spec.nodes + spec.coordinators + spec.node_links.len())?;
        let addresses: Vec<_> = reserved.iter().map(ReservedAddress::address).collect();
        let (coordinator_addresses, rest) = addresses.split_at(spec.coordinators);
        let (listen_addresses, proxy_addresses) = rest.split_at(spec.nodes);
        // A node with a shaped link is advertised (genesis, client config) at its proxy's
        // address and listens on its own.
        let mut node_addresses = listen_addresses.to_vec();
        let mut proxies = Vec::new();
        for ((index, shape), proxy) in spec.node_links.iter().zip(proxy_addresses) {
            proxies.push((*index, *proxy, listen_addresses[*index], *shape));
            node_addresses[*index] = *proxy;
        }
        let links = if proxies.is_empty() { None } else { Some(LinkShaper::start(proxies)?) };
        let registrations = (0..spec.nodes)
            .map(|index| {
                keys::generate_key_file(&dir.join(layout::node_key(index))).map(|k| keys::registration(&k))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let operators: Vec<AccountKey> = (0..spec.nodes).map(|_| AccountKey::generate()).collect();
        for (index, operator) in operators.iter().enumerate() {
            let text = layout::account_key_text(operator);
            file::create_new(&dir.join(layout::node_operator_key(index)), text.as_bytes(), Access::Secret)?;
        }
        let local_nodes: Vec<LocalNode<'_>> = registrations
            .iter()
            .zip(&node_addresses)
            .zip(&operators)
            .map(|((registration, address), operator)| LocalNode {
                registration,
                address: *address,
                operator: operator.id(),
            })
            .collect();
        let user = AccountKey::generate();
        file::create_new(
            &dir.join(layout::ACCOUNT_KEY),
            layout::account_key_text(&user).as_bytes(),
            Access::Secret,
        )?;
        let mut genesis = local_genesis(
            spec.shards,
            spec.epoch_duration_ms()?,
            morsa_plumbing::now_ms(),
            &local_nodes,
            user.id(),
            spec.zones,
        );
        genesis.node_rules.challenges = challenges;
        let committee = genesis.initial_state()?.committee;
        let genesis_text = serde_json::to_string_pretty(&genesis).map_err(|error| ClusterError::Io {
            what: "cannot serialize the genesis".into(),
            source: std::io::Error::other(error),
        })?;
        file::create_new(&dir.join(layout::GENESIS), genesis_text.as_bytes(), Access::Shared)?;
        // One token for the whole group, so the operator can change the membership.
        morsa_node::AdminToken::create_at(&dir.join(layout::COORD_ADMIN_TOKEN))
            .map_err(ClusterError::io("cannot write the coordinators' admin token"))?;
        for index in 0..spec.coordinators {
            let mut coord_toml = layout::coord_replica_toml(index, coordinator_addresses);
            coord_toml.push_str(layout::COORD_AVAILABILITY);
            if manual_epochs {
                coord_toml.push_str(layout::MANUAL_EPOCHS);
            }
            file::create_new(&dir.join(layout::coord_config(index)), coord_toml.as_bytes(), Access::Shared)?;
        }
        let coordinator_urls: Vec<String> =
            coordinator_addresses.iter().map(|address| format!("http://{address}")).collect();
        // Nodes and clients are given every replica and fail over between them.
        let coordinator_url = coordinator_urls[0].clone();

        let mut nodes = Vec::with_capacity(spec.nodes);
        for (index, (registration, address)) in registrations.iter().zip(&node_addresses).enumerate() {
            let config = dir.join(layout::node_config(index));
            let listen = listen_addresses[index];
            let node_toml = layout::node_toml(index, listen, &coordinator_urls);
            file::create_new(&config, node_toml.as_bytes(), Access::Shared)?;
            let shards = committee
                .members
                .iter()
                .find(|member| member.node_id == registration.node_id)
                .map(|member| member.shards.clone())
                .unwrap_or_default();
            nodes.push(NodeInfo {
                index,
                url: format!("http://{address}"),
                direct_url: (listen != *address).then(|| format!("http://{listen}")),
                node_id: registration.node_id,
                shards,
                config,
                log: dir.join(layout::node_log(index)),
            });
        }
        let launch = |name: String, args: [&str; 2], config: &Path, log: PathBuf| Launch {
            name,
            binary: spec.binary.clone(),
            args: args.iter().map(OsString::from).chain(["--config".into(), config.into()]).collect(),
            dir: dir.clone(),
            log,
        };
        let coordinators = (0..spec.coordinators)
            .map(|index| {
                let name = if spec.coordinators == 1 {
                    "coordinator".into()
                } else {
                    format!("coordinator {index}")
                };
                let config = dir.join(layout::coord_config(index));
                Process::new(launch(
                    name,
                    ["coord", "run"],
                    &config,
                    dir.join(layout::coord_replica_log(index)),
                ))
            })
            .collect();
        let node_processes = nodes
            .iter()
            .map(|node| {
                Process::new(launch(
                    format!("node {}", node.index),
                    ["node", "run"],
                    &node.config,
                    node.log.clone(),
                ))
            })
            .collect();
        let mut cluster = Cluster {
            spec,
            coordinator_url,
            coordinator_urls,
            control_url: None,
            nodes,
            gateway: None,
            node_processes,
            coordinators,
            links,
            reserved,
            shut_down: false,
        };
        for index in 0..cluster.coordinators.len() {
            cluster.start_coordinator(index)?;
        }
        for index in 0..cluster.nodes.len() {
            cluster.spawn_node(index)?;
        }
        for index in 0..cluster.nodes.len() {
            cluster.wait_ready(index)?;
        }
        let node_urls: Vec<String> = cluster.nodes.iter().map(|node| node.url.clone()).collect();
        let client_toml = layout::client_toml(&cluster.coordinator_urls, &node_urls);
        file::create_new(&cluster.client_config_path(), client_toml.as_bytes(), Access::Shared)?;
        cluster.save_state()?;
        Ok(cluster)
    }

    /// The cluster directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    /// The coordinator's base URL, `http://127.0.0.1:PORT`.
    pub fn coordinator_url(&self) -> &str {
        &self.coordinator_url
    }

    /// Every coordinator replica's base URL, by index.
    pub fn coordinator_urls(&self) -> &[String] {
        &self.coordinator_urls
    }

    /// Whether coordinator replica `index` is running.
    pub fn is_coordinator_running(&mut self, index: usize) -> bool {
        self.coordinators.get_mut(index).is_some_and(Process::is_running)
    }

    /// SIGKILLs coordinator replica `index`: a crash.
    pub fn kill_coordinator(&mut self, index: usize) -> Result<(), ClusterError> {
        self.running_coordinator(index)?.kill();
        self.save_state()
    }

    /// Stops coordinator replica `index` with SIGTERM, waiting up to [`STOP_TIMEOUT`].
    pub fn stop_coordinator(&mut self, index: usize) -> Result<(), ClusterError> {
        let outcome = self.running_coordinator(index)?.terminate(STOP_TIMEOUT);
        self.save_state()?;
        match outcome {
            Some(Err(message)) => Err(ClusterError::Unclean(message)),
            Some(Ok(())) | None => Ok(()),
        }
    }

    /// Restarts coordinator replica `index` on its configuration and data (it catches up
    /// with the group by itself).
    pub fn restart_coordinator(&mut self, index: usize) -> Result<(), ClusterError> {
        self.check_coordinator(index)?;
        if self.is_coordinator_running(index) {
            return Err(ClusterError::CoordinatorRunning(index));
        }
        self.start_coordinator(index)
    }

    fn check_coordinator(&self, index: usize) -> Result<(), ClusterError> {
        if self.shut_down {
            return Err(ClusterError::ShutDown);
        }
        if index >= self.coordinators.len() {
            return Err(ClusterError::NoSuchCoordinator {
                index,
                last: self.coordinators.len().saturating_sub(1),
            });
        }
        Ok(())
    }

    fn running_coordinator(&mut self, index: usize) -> Result<&mut Process, ClusterError> {
        self.check_coordinator(index)?;
        if !self.is_coordinator_running(index) {
            return Err(ClusterError::CoordinatorNotRunning(index));
        }
        Ok(&mut self.coordinators[index])
    }

    /// `DIR/client.toml`: the configuration for `morsa store` and friends.
    pub fn client_config_path(&self) -> PathBuf {
        self.spec.dir.join(layout::CLIENT_CONFIG)
    }

    /// `DIR/coord-admin.token`: the admin token every coordinator replica accepts for
    /// membership changes (`morsa coord add-replica` / `remove-replica`).
    pub fn coord_admin_token_path(&self) -> PathBuf {
        self.spec.dir.join(layout::COORD_ADMIN_TOKEN)
    }

    /// `DIR/account.key`: the funded user account's key.
    pub fn account_key_path(&self) -> PathBuf {
        self.spec.dir.join(layout::ACCOUNT_KEY)
    }

    /// The storage nodes, by index.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// Records the supervisor's control API URL in `cluster.json`.
    pub fn set_control_url(&mut self, url: Option<String>) -> Result<(), ClusterError> {
        self.control_url = url;
        self.save_state()
    }

    /// Whether node `index` is running.
    pub fn is_running(&mut self, index: usize) -> bool {
        self.node_processes.get_mut(index).is_some_and(Process::is_running)
    }

    /// SIGKILLs node `index` and reaps it: a crash.
    pub fn kill(&mut self, index: usize) -> Result<(), ClusterError> {
        let process = self.running_node(index)?;
        process.kill();
        self.save_state()
    }

    /// Stops node `index` with SIGTERM, waiting up to [`STOP_TIMEOUT`] (then SIGKILL). An
    /// error if it did not exit cleanly; it is stopped either way.
    pub fn stop(&mut self, index: usize) -> Result<(), ClusterError> {
        let outcome = self.running_node(index)?.terminate(STOP_TIMEOUT);
        self.save_state()?;
        match outcome {
            Some(Err(message)) => Err(ClusterError::Unclean(message)),
            Some(Ok(())) | None => Ok(()),
        }
    }

    /// Restarts node `index` on its configuration and data, and waits until it is ready
    /// (caught up with the coordinator, or serving from its store if no replica runs).
    pub fn start(&mut self, index: usize) -> Result<(), ClusterError> {
        self.check_index(index)?;
        if self.is_running(index) {
            return Err(ClusterError::AlreadyRunning(index));
        }
        self.spawn_node(index)?;
        self.wait_ready(index)
    }

    /// Changes the shape of node `index`'s link (`morsa cluster slow`); an error if the node
    /// was not started behind one (`--node-delay` / `--node-rate`).
    pub fn shape_link(&mut self, index: usize, shape: LinkShape) -> Result<(), ClusterError> {
        self.check_index(index)?;
        if !self.links.as_ref().is_some_and(|links| links.set(index, shape)) {
            return Err(ClusterError::NoLink(index));
        }
        Ok(())
    }

    /// The shape of node `index`'s link, if it has one.
    pub fn link(&self, index: usize) -> Option<LinkShape> {
        self.links.as_ref().and_then(|links| links.get(index))
    }

    /// The content of `cluster.json` now.
    pub fn state(&mut self) -> ClusterState {
        let nodes = self
            .nodes
            .iter()
            .zip(&mut self.node_processes)
            .map(|(info, process)| NodeState { info: info.clone(), pid: process.pid() })
            .collect();
        ClusterState {
            supervisor_pid: std::process::id(),
            control_url: self.control_url.clone(),
            dir: self.spec.dir.clone(),
            running: !self.shut_down,
            coordinator: CoordinatorState {
                url: self.coordinator_url.clone(),
                pid: self.coordinators[0].pid(),
                log: self.coordinators[0].launch.log.clone(),
            },
            coordinators: self
                .coordinators
                .iter_mut()
                .zip(&self.coordinator_urls)
                .enumerate()
                .map(|(index, (process, url))| CoordinatorReplicaState {
                    index,
                    url: url.clone(),
                    pid: process.pid(),
                    log: process.launch.log.clone(),
                })
                .collect(),
            coordinator_admin_token_file: Some(self.coord_admin_token_path()),
            nodes,
            gateway: self.gateway_state(),
        }
    }

    /// Stops every node with SIGTERM, then the coordinator, each within [`STOP_TIMEOUT`]
    /// (then SIGKILL). Everything is stopped when it returns; an error lists what did not stop
    /// cleanly. Calling it again does nothing.
    pub fn shutdown(&mut self) -> Result<(), ClusterError> {
        if self.shut_down {
            return Ok(());
        }
        // The gateway first: it is a client of the nodes.
        let mut problems: Vec<String> = self
            .gateway
            .as_mut()
            .and_then(|(process, _)| process.terminate(STOP_TIMEOUT))
            .and_then(Result::err)
            .into_iter()
            .collect();
        for process in &mut self.node_processes {
            if let Some(pid) = process.pid() {
                pids::send(pid, pids::Signal::Term);
            }
        }
        problems.extend(
            self.node_processes
                .iter_mut()
                .filter_map(|process| process.terminate(STOP_TIMEOUT))
                .filter_map(Result::err),
        );
        for process in &mut self.coordinators {
            if let Some(pid) = process.pid() {
                pids::send(pid, pids::Signal::Term);
            }
        }
        problems.extend(
            self.coordinators
                .iter_mut()
                .filter_map(|process| process.terminate(STOP_TIMEOUT))
                .filter_map(Result::err),
        );
        self.shut_down = true;
        self.save_state()?;
        if problems.is_empty() { Ok(()) } else { Err(ClusterError::Unclean(problems.join("; "))) }
    }

    fn check_index(&self, index: usize) -> Result<(), ClusterError> {
        if self.shut_down {
            return Err(ClusterError::ShutDown);
        }
        if index >= self.nodes.len() {
            return Err(ClusterError::NoSuchNode { index, last: self.nodes.len().saturating_sub(1) });
        }
        Ok(())
    }

    fn running_node(&mut self, index: usize) -> Result<&mut Process, ClusterError> {
        self.check_index(index)?;
        if !self.is_running(index) {
            return Err(ClusterError::NotRunning(index));
        }
        Ok(&mut self.node_processes[index])
    }

    fn start_coordinator(&mut self, index: usize) -> Result<(), ClusterError> {
        let url = self.coordinators[index].start()?;
        self.save_state()?;
        let expected = &self.coordinator_urls[index];
        if &url != expected {
            return Err(
                self.process_error(&self.coordinators[index], format!("listens on {url}, not {expected}"))
            );
        }
        Ok(())
    }

    fn spawn_node(&mut self, index: usize) -> Result<(), ClusterError> {
        let url = self.node_processes[index].start()?;
        self.save_state()?;
        let node = &self.nodes[index];
        let expected = node.direct_url.as_ref().unwrap_or(&node.url);
        if &url != expected {
            return Err(
                self.process_error(&self.node_processes[index], format!("listens on {url}, not {expected}"))
            );
        }
        Ok(())
    }

    /// Waits until node `index` is ready: caught up with the running coordinator replicas or,
    /// when none runs, serving from its store.
    fn wait_ready(&mut self, index: usize) -> Result<(), ClusterError> {
        let running: Vec<usize> =
            (0..self.coordinators.len()).filter(|replica| self.is_coordinator_running(*replica)).collect();
        let running: Vec<String> =
            running.into_iter().map(|replica| self.coordinator_urls[replica].clone()).collect();
        let node = &self.nodes[index];
        let ready = node_ready(&running, &node.url, node.node_id, self.spec.shards, READY_TIMEOUT);
        let outcome = block_on(ready).map_err(ClusterError::io("cannot start a thread to wait on"))?;
        outcome.map(drop).map_err(|reason| self.process_error(&self.node_processes[index], reason))
    }

    fn process_error(&self, process: &Process, reason: String) -> ClusterError {
        ClusterError::Process { name: process.launch.name.clone(), reason, log: process.launch.log.clone() }
    }

    fn save_state(&mut self) -> Result<(), ClusterError> {
        self.state().save()
    }
}

/// Creates `dir` (and its `logs/`) and returns it absolute; refuses a directory holding a
/// running cluster, or anything at all.
fn prepare_dir(dir: &Path) -> Result<PathBuf, ClusterError> {
    if let Ok(state) = ClusterState::load(dir)
        && state.running
        && pids::is_alive(state.supervisor_pid)
    {
        return Err(ClusterError::DirInUse { dir: dir.to_path_buf(), pid: state.supervisor_pid });
    }
    let io = |what: &str| ClusterError::io(format!("cannot {what} {}", dir.display()));
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ClusterError::DirNotEmpty(dir.to_path_buf()));
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io("create"))?;
        }
        Err(error) => return Err(io("read")(error)),
    }
    let dir = dir.canonicalize().map_err(io("resolve"))?;
    std::fs::create_dir(dir.join(layout::LOGS)).map_err(io("create logs/ in"))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_empty_or_new_directory_is_used() {
        let root = tempfile::tempdir().unwrap();
        let fresh = prepare_dir(&root.path().join("a/b")).unwrap();
        assert!(fresh.is_absolute() && fresh.join("logs").is_dir());
        let message = prepare_dir(&fresh).unwrap_err().to_string();
        assert!(message.contains("not empty"), "{message}");
        let empty = root.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        prepare_dir(&empty).unwrap();
    }

    #[test]
    fn a_directory_with_a_live_supervisor_is_refused_as_in_use() {
        let root = tempfile::tempdir().unwrap();
        let state = ClusterState {
            supervisor_pid: std::process::id(),
            control_url: None,
            dir: root.path().to_path_buf(),
            running: true,
            coordinator: CoordinatorState { url: String::new(), pid: None, log: PathBuf::new() },
            coordinators: Vec::new(),
            coordinator_admin_token_file: None,
            nodes: Vec::new(),
            gateway: None,
        };
        state.save().unwrap();
        let message = prepare_dir(root.path()).unwrap_err().to_string();
        assert!(message.contains("holds a running cluster"), "{message}");
        assert!(message.contains("morsa cluster down"), "{message}");
    }
}
