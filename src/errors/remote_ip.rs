//! `when.request.remote_ip`: whether the client's address (the connection's peer, and with
//! `respect_forwarded_for_header` every `X-Forwarded-For` entry) lies in one of the CIDRs.

use crate::config::{Invalid, Kind};
use crate::vocab::request::Request;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteIp {
    #[serde(rename = "match", default)]
    pub ranges: Vec<Cidr>,
    #[serde(default)]
    pub respect_forwarded_for_header: bool,
}

/// An address range, parsed when the configuration loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl TryFrom<String> for Cidr {
    type Error = Invalid;

    fn try_from(s: String) -> Result<Cidr, Invalid> {
        let bad = || {
            Invalid::new(
                "remote_ip.match",
                Kind::Parse(format!("{s:?} is not a CIDR (such as 10.0.0.0/8)")),
            )
        };
        let (addr, bits) = s.split_once('/').ok_or_else(bad)?;
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { network, bits })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (net, ip, width) = match (self.network, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(n.to_bits()), u128::from(i.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
            _ => return false,
        };
        let shift = width - u32::from(self.bits);
        net.checked_shr(shift).unwrap_or(0) == ip.checked_shr(shift).unwrap_or(0)
    }
}

/// The address part of `ip`, `ip:port`, `[v6]:port` or `v6`.
fn parse_address(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    let host = s.rsplit_once(':').map_or(s, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

impl RemoteIp {
    pub fn matches(&self, request: Option<&Request>) -> bool {
        let Some(request) = request else { return false };
        let inside =
            |a: &str| parse_address(a).is_some_and(|ip| self.ranges.iter().any(|c| c.contains(ip)));
        if request.remote_addr.as_deref().is_some_and(inside) {
            return true;
        }
        self.respect_forwarded_for_header
            && request
                .headers
                .get_all("x-forwarded-for")
                .flat_map(|v| v.split(','))
                .any(inside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn ranges() {
        let private = cidr("10.0.0.0/8");
        assert!(private.contains("10.200.1.1".parse().unwrap()));
        assert!(!private.contains("11.0.0.1".parse().unwrap()));
        assert!(
            private.contains("::ffff:10.1.1.1".parse().unwrap()),
            "v4-mapped v6"
        );
        assert!(cidr("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
        assert!(cidr("192.0.2.7/32").contains("192.0.2.7".parse().unwrap()));
        assert!(cidr("2001:db8::/32").contains("2001:db8::1".parse().unwrap()));
        assert!(!cidr("2001:db8::/32").contains("10.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0", "10.0.0.0/33", "x/8", "::/129"] {
            assert!(Cidr::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert_eq!(
            parse_address("[2001:db8::1]:443"),
            "2001:db8::1".parse().ok()
        );
        assert_eq!(parse_address("192.0.2.1:5000"), "192.0.2.1".parse().ok());
        assert_eq!(parse_address(" 192.0.2.1 "), "192.0.2.1".parse().ok());
    }
}
