//! Node addresses: what clients and peers connect to, so the coordinator accepts only
//! `[http://|https://]host:port[/prefix]` with a real host and a nonzero port, and, unless the
//! deployment is local, no loopback, link-local, unspecified, multicast or broadcast host
//! (an address that would point every client at itself or at a cloud metadata service).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest node address accepted.
pub(crate) const MAX_ADDRESS_LEN: usize = 256;

/// Why a node address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Empty, or longer than 256 bytes.
    #[error("must have 1 to {MAX_ADDRESS_LEN} bytes")]
    Length,
    /// Spaces, control or non-ASCII characters.
    #[error("must be printable ASCII without spaces")]
    NotPrintable,
    /// A `user@` part.
    #[error("must not carry a user name")]
    UserName,
    /// No `:port`.
    #[error("must be host:port")]
    NoPort,
    /// The port is not a number from 0 to 65535.
    #[error("port {0:?} is not a number from 1 to 65535")]
    BadPort(String),
    /// Port 0.
    #[error("port 0 is not a port one can connect to")]
    PortZero,
    /// A bracketed host that is not an IPv6 address.
    #[error("{0} is not an IPv6 address")]
    BadIpv6(String),
    /// A host that is neither a DNS name nor an IP address.
    #[error("{0:?} is not a host name or IP address")]
    BadHost(String),
    /// An all-numeric host that is not an IPv4 address.
    #[error("{0:?} is not a valid IPv4 address")]
    BadIpv4(String),
    /// A host other machines cannot reach, in a deployment that is not local.
    #[error(
        "{0} is a loopback, link-local, unspecified or multicast host, which other machines cannot reach \
         (allowed only when the genesis sets allow_loopback_addresses)"
    )]
    Unreachable(String),
}

/// Checks `address`; the error says what is wrong with it.
pub(crate) fn check_node_address(address: &str, allow_loopback: bool) -> Result<(), AddressError> {
    if address.is_empty() || address.len() > MAX_ADDRESS_LEN {
        return Err(AddressError::Length);
    }
    if !address.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(AddressError::NotPrintable);
    }
    let rest =
        address.strip_prefix("http://").or_else(|| address.strip_prefix("https://")).unwrap_or(address);
    let (authority, _prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(AddressError::UserName);
    }
    let (host, port) = authority.rsplit_once(':').ok_or(AddressError::NoPort)?;
    let port: u16 = port.parse().map_err(|_| AddressError::BadPort(port.to_string()))?;
    if port == 0 {
        return Err(AddressError::PortZero);
    }
    let ip = match host.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')) {
        Some(inner) => {
            Some(IpAddr::V6(inner.parse::<Ipv6Addr>().map_err(|_| AddressError::BadIpv6(host.to_string()))?))
        }
        None => match host.parse::<Ipv4Addr>() {
            Ok(ip) => Some(IpAddr::V4(ip)),
            Err(_) => {
                check_dns_name(host)?;
                None
            }
        },
    };
    if allow_loopback {
        return Ok(());
    }
    let local_name =
        host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    if local_name || ip.is_some_and(|ip| !is_reachable_by_others(ip)) {
        return Err(AddressError::Unreachable(host.to_string()));
    }
    Ok(())
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens.
fn check_dns_name(host: &str) -> Result<(), AddressError> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.is_empty() || !name.split('.').all(label_ok) {
        return Err(AddressError::BadHost(host.to_string()));
    }
    // All-numeric names are malformed IPv4 addresses, not names.
    if name.split('.').all(|label| label.bytes().all(|byte| byte.is_ascii_digit())) {
        return Err(AddressError::BadIpv4(host.to_string()));
    }
    Ok(())
}

/// Whether other machines can reach `ip`.
fn is_reachable_by_others(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            !(ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_multicast()
                || ip.is_broadcast())
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_reachable_by_others(IpAddr::V4(v4));
            }
            let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
            !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || link_local)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::check_node_address;

    #[test]
    fn public_hosts_with_a_port_are_accepted() {
        for address in [
            "203.0.113.7:9000",
            "node-1.example.org:443",
            "http://node.example.org:8080",
            "https://[2001:db8::1]:9000/morsa",
            "10.0.0.5:9000",
        ] {
            assert_eq!(check_node_address(address, false), Ok(()), "{address}");
        }
    }

    #[test]
    fn malformed_or_unreachable_addresses_are_refused() {
        for address in [
            "",
            "node.example.org",
            "node.example.org:0",
            "node.example.org:70000",
            "node example.org:9000",
            "user@node.example.org:9000",
            "-bad-.example:9000",
            "999.1.1.1:9000",
            "[not-v6]:9000",
            "127.0.0.1:9000",
            "localhost:9000",
            "api.localhost:9000",
            "0.0.0.0:9000",
            "169.254.169.254:80",
            "[::1]:9000",
            "[fe80::1]:9000",
            "[::ffff:127.0.0.1]:9000",
            "224.0.0.1:9000",
            "255.255.255.255:9000",
        ] {
            assert!(check_node_address(address, false).is_err(), "{address} was accepted");
        }
    }

    #[test]
    fn a_local_deployment_may_use_loopback_but_not_malformed_addresses() {
        assert_eq!(check_node_address("127.0.0.1:9000", true), Ok(()));
        assert_eq!(check_node_address("localhost:9000", true), Ok(()));
        let zero_port = check_node_address("127.0.0.1:0", true).unwrap_err().to_string();
        assert!(zero_port.starts_with("port 0 is not"), "{zero_port}");
        let no_port = check_node_address("127.0.0.1", true).unwrap_err().to_string();
        assert_eq!(no_port, "must be host:port");
    }
}
