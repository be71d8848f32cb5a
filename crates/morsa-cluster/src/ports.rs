//! Loopback addresses kept for our processes: a node's genesis address must be where it
//! listens, and it must come back on the same address when restarted.
//!
//! An address chosen by binding `127.0.0.1:0` and closing the socket is free for anyone until
//! our process binds it, and free again whenever that process is down: another cluster's
//! `127.0.0.1:0` or an outgoing connection's source port may take it, and the restarted
//! process fails to listen. So each address is *reserved* for as long as its
//! [`ReservedAddress`] lives: a socket bound to it with `SO_REUSEADDR`, never listening. The
//! kernel hands a reserved port to no ephemeral bind or connect, and refuses it to any bind
//! without `SO_REUSEADDR`; our processes bind with it (as tokio and std listeners do) and
//! listen there beside the reservation. Connections to a reserved address whose process is
//! down are refused, as if the port were free.
//!
//! That is Linux's `SO_REUSEADDR`. Elsewhere (the BSDs, macOS) it does not let a second socket
//! bind the very address beside the reservation, so there the port is only chosen, as before,
//! and not held.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::TcpSocket;

use crate::error::ClusterError;

/// A loopback address kept for one of our processes while this lives.
#[derive(Debug)]
pub struct ReservedAddress {
    address: SocketAddr,
    /// Bound, not listening; closed on drop (close-on-exec, so no child holds it). `None`
    /// where the kernel would refuse our process the address beside it.
    _socket: Option<TcpSocket>,
}

impl ReservedAddress {
    /// The address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDRESS`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// `count` distinct loopback addresses, each reserved until its [`ReservedAddress`] is dropped.
pub fn reserve_loopback_addresses(count: usize) -> Result<Vec<ReservedAddress>, ClusterError> {
    (0..count).map(|_| reserve_loopback_address()).collect()
}

fn reserve_loopback_address() -> Result<ReservedAddress, ClusterError> {
    let socket = TcpSocket::new_v4().map_err(ClusterError::io("cannot open a socket"))?;
    socket.set_reuseaddr(true).map_err(ClusterError::io("cannot set SO_REUSEADDR on a socket"))?;
    socket
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(ClusterError::io("cannot find a free port on 127.0.0.1"))?;
    let address = socket.local_addr().map_err(ClusterError::io("cannot read a reserved address"))?;
    let held = cfg!(target_os = "linux").then_some(socket);
    Ok(ReservedAddress { address, _socket: held })
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// How a program other than ours takes a port: without `SO_REUSEADDR`, as the kernel's
    /// choice of a source port for a connection does.
    fn bind_plainly(address: SocketAddr) -> std::io::Result<TcpSocket> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(false)?;
        socket.bind(address)?;
        Ok(socket)
    }

    #[test]
    fn reserved_addresses_are_distinct_and_loopback() {
        let reserved = reserve_loopback_addresses(5).unwrap();
        let mut ports: Vec<u16> = reserved.iter().map(|r| r.address().port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 5);
        assert!(reserved.iter().all(|r| r.address().ip().is_loopback()));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_reserved_address_is_ours_to_listen_on_again_and_again_and_nobody_elses() {
        let reserved = reserve_loopback_address().unwrap();
        let address = reserved.address();
        for _ in 0..2 {
            let error = bind_plainly(address).expect_err("another program took a reserved port");
            assert_eq!(error.kind(), ErrorKind::AddrInUse);
            // Our process listens there (std and tokio listeners set SO_REUSEADDR) ...
            let listener = TcpListener::bind(address).unwrap();
            TcpStream::connect(address).unwrap();
            drop(listener);
            // ... and while it is down, connections are refused, not left waiting.
            let refused = TcpStream::connect(address).unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
        }
        drop(reserved);
        bind_plainly(address).unwrap();
    }
}
