//! Who the client is: the connection's peer, or, when that peer is a configured trusted
//! proxy, the address that proxy put in `X-Forwarded-For`. Rate limits and the sign-in
//! lockout both key on it, so a client cannot choose its own address by sending the header.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// The trusted proxies, from `server.trusted_proxies`.
#[derive(Debug, Clone, Default)]
pub struct ClientAddresses {
    trusted: Vec<IpNet>,
}

impl ClientAddresses {
    pub fn new(trusted: Vec<IpNet>) -> Self {
        ClientAddresses { trusted }
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted.iter().any(|range| range.contains(&address))
    }

    /// The client's address for `request`.
    pub fn of(&self, request: &HttpRequest) -> IpAddr {
        let peer = request
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim);
        self.resolve(peer, forwarded)
    }

    /// Walks the chain from the nearest hop outwards while the hops are trusted proxies;
    /// the first hop that is not one is the client. Anything unreadable ends the walk at
    /// the last trusted hop's word so far.
    fn resolve<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let chain: Vec<&str> = forwarded.collect();
        let mut client = peer;
        for hop in chain.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                break;
            };
            client = address;
            if !self.is_trusted(address) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let none = ClientAddresses::default();
        assert_eq!(
            none.resolve(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9"),
            "no trusted proxy: the header is ignored"
        );
        let proxied = ClientAddresses::new(vec!["10.0.0.0/8".parse().expect("net")]);
        assert_eq!(
            proxied.resolve(ip("198.51.100.7"), ["1.2.3.4"].into_iter()),
            ip("198.51.100.7"),
            "from an untrusted peer the header is ignored"
        );
        assert_eq!(
            proxied.resolve(ip("10.1.1.1"), ["1.2.3.4"].into_iter()),
            ip("1.2.3.4")
        );
        assert_eq!(
            proxied.resolve(
                ip("10.1.1.1"),
                ["6.6.6.6", "1.2.3.4", "10.2.2.2"].into_iter()
            ),
            ip("1.2.3.4"),
            "what the client itself wrote to the left of the proxies is not believed"
        );
        assert_eq!(
            proxied.resolve(ip("10.1.1.1"), ["garbage"].into_iter()),
            ip("10.1.1.1")
        );
    }
}
