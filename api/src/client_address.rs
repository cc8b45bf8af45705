//! Who the client is: the connection's peer or, when the peer is a proxy the operator
//! trusts (`TRUSTED_PROXIES`), the address that proxy saw. The login and registration limits
//! count by this address, sessions and log lines show it, and CORS believes the forwarded
//! scheme and host of a trusted proxy only.

use std::{net::IpAddr, sync::Arc};

use ipnet::{IpNet, Ipv4Net};
use poem::Request;

/// Which peers may tell us the client's address in `X-Forwarded-For`: addresses and
/// ranges. An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, as a dual-stack listener sees
/// an IPv4 peer) is taken as the IPv4 address it maps.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(Arc::new(networks))
    }

    /// Reads `TRUSTED_PROXIES` entries: addresses (`10.0.0.1`, `::1`) or ranges
    /// (`10.0.0.0/8`, `fd00::/8`); blank entries are skipped.
    ///
    /// # Errors
    /// One line naming the first entry that is neither: the service must not start with a
    /// proxy it would silently not trust.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut networks = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let network = match entry.parse::<IpNet>() {
                Ok(network) => network,
                Err(_) => match entry.parse::<IpAddr>() {
                    Ok(address) => IpNet::from(address),
                    Err(_) => anyhow::bail!(
                        "TRUSTED_PROXIES: {entry:?} is neither an IP address nor a range \
                         (such as 10.0.0.1 or 10.0.0.0/8)"
                    ),
                },
            };
            networks.push(canonical_network(network));
        }
        Ok(Self::new(networks))
    }

    /// Whether `peer` is one of the trusted proxies, whose forwarding headers are believed.
    pub fn is_trusted(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|network| network.contains(&peer))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case
    /// the right-most address of `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_address(&self, req: &Request) -> Option<IpAddr> {
        let peer = req.remote_addr().as_socket_addr().map(|a| a.ip())?;
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Some(self.resolve(peer, &forwarded))
    }

    fn resolve(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        forwarded
            .iter()
            .flat_map(|header| header.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .map(|a| a.to_canonical())
            .rev()
            .find(|a| !self.is_trusted(*a))
            .unwrap_or(peer)
    }
}

/// An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) as the IPv4 range it maps, so that it
/// matches the canonical addresses it is compared with.
fn canonical_network(network: IpNet) -> IpNet {
    match network {
        IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
            Some(v4) if v6.prefix_len() >= 96 => {
                Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(network, IpNet::V4)
            }
            _ => network,
        },
        IpNet::V4(_) => network,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        let entries: Vec<String> = entries.iter().map(|e| (*e).to_owned()).collect();
        TrustedProxies::parse(&entries).unwrap()
    }

    #[test]
    fn ranges_and_addresses_are_trusted_and_anything_else_refused() {
        let trusted = proxies(&["10.0.0.0/8", " 192.0.2.1 ", "fd00::/8", "::1", ""]);
        for peer in ["10.1.2.3", "192.0.2.1", "fd12::7", "::1", "::ffff:10.9.9.9"] {
            assert_eq!(
                trusted.resolve(ip(peer), &["198.51.100.7"]),
                ip("198.51.100.7"),
                "{peer}"
            );
        }
        for peer in ["11.0.0.1", "192.0.2.2", "fe80::1"] {
            assert_eq!(
                trusted.resolve(ip(peer), &["198.51.100.7"]),
                ip(peer),
                "{peer}"
            );
        }
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", "10.0.0.1:80"] {
            let err = TrustedProxies::parse(&[bad.to_owned()])
                .expect_err(bad)
                .to_string();
            assert!(err.contains(bad) && !err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn an_ipv4_mapped_peer_matches_its_ipv4_entry() {
        let trusted = proxies(&["127.0.0.1"]);
        assert_eq!(
            trusted.resolve(ip("::ffff:127.0.0.1"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        let mapped_range = proxies(&["::ffff:10.0.0.0/104"]);
        assert_eq!(
            mapped_range.resolve(ip("10.2.3.4"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = proxies(&["10.0.0.1"]);
        assert_eq!(
            proxies.resolve(ip("198.51.100.7"), &["203.0.113.9"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
        let proxies = proxies(&["10.0.0.1", "10.0.0.2"]);
        // The client forged the first entry; the proxies appended the real one and their own.
        let forwarded = ["203.0.113.9, 198.51.100.7", "10.0.0.2"];
        assert_eq!(
            proxies.resolve(ip("10.0.0.1"), &forwarded),
            ip("198.51.100.7")
        );
        assert_eq!(proxies.resolve(ip("10.0.0.1"), &[]), ip("10.0.0.1"));
        assert_eq!(
            proxies.resolve(ip("10.0.0.1"), &["not an address"]),
            ip("10.0.0.1")
        );
    }
}
