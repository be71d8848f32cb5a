//! Free loopback ports, chosen before the processes start: a node's genesis address must be
//! where it listens, and it must come back on the same address when restarted.
//!
//! The kernel hands out a free port for `127.0.0.1:0`; we close the socket and give the port
//! to the process. Another program could take it in between: then the process fails to
//! listen and [`crate::Cluster::up`] reports it with its log. Holding every socket until all
//! ports are chosen at least keeps the ports distinct.

use std::net::{SocketAddr, TcpListener};

use crate::error::ClusterError;

/// `count` distinct free ports on 127.0.0.1.
pub fn free_loopback_addresses(count: usize) -> Result<Vec<SocketAddr>, ClusterError> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ClusterError::io("cannot find a free port on 127.0.0.1"))?;
    listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ClusterError::io("cannot read a listening address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct_loopback_and_free_again() {
        let addresses = free_loopback_addresses(5).unwrap();
        let mut ports: Vec<u16> = addresses.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 5);
        assert!(addresses.iter().all(|address| address.ip().is_loopback()));
        TcpListener::bind(addresses[0]).unwrap();
    }
}
