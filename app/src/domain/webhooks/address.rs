//! Where a webhook may point: never at this host's or its network's
//! private services unless the operator allows it (`--webhook-allow-private`),
//! and never at link-local addresses or the other addresses where cloud
//! metadata services answer. Checked when an endpoint is created and
//! again, on the addresses actually connected to, at every delivery (DNS
//! can change). A NAT64 prefix of the operator's own choosing cannot be
//! recognised: on such networks keep the private rule on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::domain::{DomainError, DomainResult};

/// The longest URL an endpoint may have.
pub const MAX_URL_CHARS: usize = 2000;
/// A name must resolve within this when an endpoint is added.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Cloud metadata services outside link-local space (AWS's IPv6 ones in
/// unique-local space, Alibaba's in carrier-grade NAT space): refused even
/// where private addresses are allowed.
const METADATA_V4: [Ipv4Addr; 1] = [Ipv4Addr::new(100, 100, 100, 200)];
const METADATA_V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023),
];

/// Why an address is refused, in words for the admin and the delivery log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Link-local (169.254.0.0/16, fe80::/10) or another cloud metadata
    /// address.
    LinkLocal,
    /// Loopback, private, shared (CGNAT) or unique-local.
    Private,
    /// Unspecified, broadcast, multicast, documentation or reserved.
    NotRoutable,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::LinkLocal => {
                "a link-local or cloud metadata address (where cloud metadata services answer) is never allowed"
            }
            Refusal::Private => {
                "a loopback or private address is refused unless the operator allows it (--webhook-allow-private)"
            }
            Refusal::NotRoutable => "the address is not a public unicast address",
        }
    }
}

/// Whether Keyward may connect to `ip`.
pub fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), Refusal> {
    let private = match ip {
        IpAddr::V4(v4) => return check_v4(v4, allow_private),
        IpAddr::V6(v6) => {
            // An IPv4 address written as IPv6 is judged as IPv4.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return check_v4(v4, allow_private);
            }
            let s = v6.segments();
            if s[0] & 0xffc0 == 0xfe80 || METADATA_V6.contains(&v6) {
                return Err(Refusal::LinkLocal);
            }
            let documentation = (s[0] == 0x2001 && s[1] == 0x0db8) || s[0] & 0xfff0 == 0x3ff0;
            // 100::/64 discards what it is sent.
            let discard = s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0;
            if v6.is_unspecified() || v6.is_multicast() || documentation || discard {
                return Err(Refusal::NotRoutable);
            }
            // Forms that carry an IPv4 address are refused rather than
            // decoded: NAT64 (64:ff9b::/96 and the local 64:ff9b:1::/48),
            // 6to4 (2002::/16), IPv4-compatible (::/96) and SIIT
            // (::ffff:0:0/96) addresses.
            let nat64 = s[0] == 0x0064 && s[1] == 0xff9b;
            let v4_compatible = s[..6].iter().all(|&x| x == 0) && !v6.is_loopback();
            let siit = s[..4].iter().all(|&x| x == 0) && s[4] == 0xffff && s[5] == 0;
            if nat64 || s[0] == 0x2002 || v4_compatible || siit {
                return Err(Refusal::NotRoutable);
            }
            v6.is_loopback() || s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0
        }
    };
    if private && !allow_private {
        return Err(Refusal::Private);
    }
    Ok(())
}

fn check_v4(ip: Ipv4Addr, allow_private: bool) -> Result<(), Refusal> {
    let o = ip.octets();
    if ip.is_link_local() || METADATA_V4.contains(&ip) {
        return Err(Refusal::LinkLocal);
    }
    let not_routable = o[0] == 0
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] >= 240
        // 192.0.0.0/24: protocol assignments (some clouds answer metadata there).
        || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        // 198.18.0.0/15: benchmarking.
        || (o[0] == 198 && (o[1] & 0xfe) == 18);
    if not_routable {
        return Err(Refusal::NotRoutable);
    }
    // 100.64.0.0/10 is carrier-grade NAT, inside someone's network.
    let private = ip.is_loopback() || ip.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64);
    if private && !allow_private {
        return Err(Refusal::Private);
    }
    Ok(())
}

/// A webhook URL as an admin gave it: `http` or `https`, a host, no
/// credentials, not too long; an address given literally is checked here.
/// A name is checked once resolved ([`resolve`]).
pub fn parse(text: &str, allow_private: bool) -> DomainResult<url::Url> {
    let bad = |m: &str| DomainError::invalid_field("url", m);
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("Give the endpoint's URL."));
    }
    if text.chars().count() > MAX_URL_CHARS {
        return Err(bad("The URL is longer than 2000 characters."));
    }
    let url = url::Url::parse(text).map_err(|_| bad("That is not a URL (https://example.com/hooks/keyward)."))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("The URL must start with https:// (or http://)."));
    }
    // Checked again as stored: percent-encoding can lengthen it.
    if url.as_str().len() > MAX_URL_CHARS * 3 {
        return Err(bad("The URL is longer than 2000 characters."));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "Put no user name or password in the URL: requests are signed instead.",
        ));
    }
    if url.fragment().is_some() {
        return Err(bad("The URL cannot have a #fragment."));
    }
    match url.host() {
        None => return Err(bad("The URL has no host.")),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_private).map_err(|r| bad(r.as_str()))?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_private).map_err(|r| bad(r.as_str()))?,
        Some(url::Host::Domain(name)) => {
            if is_local_name(name) && !allow_private {
                return Err(bad(Refusal::Private.as_str()));
            }
        }
    }
    Ok(url)
}

/// Names that mean this host whatever DNS says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// The addresses `host` resolves to, all of them allowed: one refused
/// address refuses the name (a name that also points inside is not one
/// to send to). The refusal does not say the address, so adding endpoints
/// cannot map what internal names resolve to.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<std::net::SocketAddr>, String> {
    if is_local_name(host) && !allow_private {
        return Err(Refusal::Private.as_str().into());
    }
    let unresolved = || format!("the name {host} does not resolve");
    let addrs: Vec<_> = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| unresolved())?
        .map_err(|_| unresolved())?
        .collect();
    if addrs.is_empty() {
        return Err(unresolved());
    }
    for a in &addrs {
        check_ip(a.ip(), allow_private)
            .map_err(|r| format!("{host} resolves to an address refused here: {}", r.as_str()))?;
    }
    Ok(addrs)
}

/// An address given literally in the URL, if it is one.
pub fn literal_ip(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn metadata_and_link_local_are_refused_even_when_private_is_allowed() {
        for a in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "fd00:ec2::23",
            "100.100.100.200",
        ] {
            assert_eq!(check_ip(ip(a), true), Err(Refusal::LinkLocal), "{a}");
        }
        for a in [
            "0.0.0.0",
            "::",
            "255.255.255.255",
            "224.0.0.1",
            "ff02::1",
            "192.0.0.192",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "::7f00:1",
            "::a9fe:a9fe",
            "::ffff:0:7f00:1",
            "100::1",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
            "3fff::1",
        ] {
            assert_eq!(check_ip(ip(a), true), Err(Refusal::NotRoutable), "{a}");
        }
    }

    #[test]
    fn private_addresses_need_the_operators_leave() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(check_ip(ip(a), false), Err(Refusal::Private), "{a}");
            assert_eq!(check_ip(ip(a), true), Ok(()), "{a}");
        }
        for a in ["93.184.216.34", "172.32.0.1", "100.128.0.1", "2606:4700::1111"] {
            assert_eq!(check_ip(ip(a), false), Ok(()), "{a}");
        }
    }

    #[test]
    fn urls_are_checked_for_shape_and_literal_addresses() {
        assert!(parse("https://hooks.example.com/keyward", false).is_ok());
        assert!(parse("http://127.0.0.1:9000/x", true).is_ok());
        for bad in [
            "",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#x",
            "not a url",
            "http://127.0.0.1/",
            "http://[::1]/",
            "http://localhost:8080/",
            "http://LOCALHOST./",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f.1/",
        ] {
            assert!(parse(bad, false).is_err(), "{bad} was accepted");
        }
        assert!(parse("http://169.254.169.254/", true).is_err());
        assert!(parse(&format!("https://example.com/{}", "a".repeat(2000)), false).is_err());
    }
}
