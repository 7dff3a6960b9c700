//! The policy's `network` section: where `bash` children may connect. The guard decides which
//! destinations a child may reach (this module); the sandbox enforces it (a network namespace
//! whose only way out is pi-mcp's egress proxy, which asks [`NetworkPolicy::allows`] for every
//! connection). Patterns are parsed while the policy is deserialized, so a bad one is reported
//! with its file, line, column and field.

use std::fmt;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// How `bash` children reach the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The child runs in its own network namespace with only loopback; it reaches the outside
    /// only through pi-mcp's egress proxy, and only the destinations in `allow`. Where network
    /// namespaces are unavailable this falls back to `deny` (unless `network_required`).
    #[default]
    Allowlist,
    /// No sockets but Unix-domain and netlink ones (a seccomp filter).
    Deny,
    /// No network confinement at all.
    Open,
}

/// The `network` section of the policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    /// `allowlist` (default), `deny` or `open`. The older forms `"network": "allow"` and
    /// `"network": "deny"` mean `open` and `deny`.
    #[serde(default)]
    pub mode: NetworkMode,
    /// Destinations a child may reach in `allowlist` mode: `host[:port]`, where host is a name
    /// (`db.internal`), a name glob (`*.amazonaws.com`, `*`) or an IP address (`127.0.0.1`,
    /// `[::1]`), and port a number or `*`; no port means any port. An entry with a name or an
    /// address and a port (`db.internal:5432`, `127.0.0.1:9090`) is also forwarded as plain TCP
    /// inside the child's namespace, for clients that do not speak to an HTTP proxy (psql, ssh).
    #[serde(default)]
    pub allow: Vec<HostPattern>,
}

/// The shape the section is written in (the struct, or the older one-word form).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(default)]
    mode: NetworkMode,
    #[serde(default)]
    allow: Vec<HostPattern>,
}

impl<'de> Deserialize<'de> for NetworkPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = NetworkPolicy;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#"an object {"mode": ..., "allow": [...]}, or "allow" / "deny""#)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NetworkPolicy, E> {
                let mode = match v {
                    "allow" | "open" => NetworkMode::Open,
                    "deny" => NetworkMode::Deny,
                    "allowlist" => NetworkMode::Allowlist,
                    other => {
                        return Err(E::custom(format!(
                            "unknown network mode `{other}`: use allowlist, deny or open"
                        )));
                    }
                };
                Ok(NetworkPolicy {
                    mode,
                    allow: Vec::new(),
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<NetworkPolicy, A::Error> {
                let s = Section::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(NetworkPolicy {
                    mode: s.mode,
                    allow: s.allow,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One `allow` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(with = "String")]
pub struct HostPattern {
    host: Host,
    /// `None`: any port.
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    /// `*`: every host.
    Any,
    /// `*.example.com`: names below `example.com` (not the name itself); stored lower-case
    /// with the leading dot.
    Below(String),
    /// An exact name, lower-case.
    Name(String),
    Ip(IpAddr),
}

/// Why an `allow` entry does not parse.
#[derive(Debug, thiserror::Error)]
#[error(
    "bad network.allow entry `{entry}`: {why} (write host[:port], e.g. `*.amazonaws.com:443`, `db.internal:5432`, `127.0.0.1:9090`)"
)]
pub struct PatternError {
    entry: String,
    why: String,
}

impl TryFrom<String> for HostPattern {
    type Error = PatternError;
    fn try_from(entry: String) -> Result<Self, PatternError> {
        let bad = |why: &str| PatternError {
            entry: entry.clone(),
            why: why.to_string(),
        };
        let text = entry.trim();
        if text.is_empty() {
            return Err(bad("it is empty"));
        }
        if text.contains("://") || text.contains('/') {
            return Err(bad("a destination has no scheme or path"));
        }
        // `[v6]:port`, `[v6]`, `host:port`, `host`.
        let (host_text, port_text) = if let Some(rest) = text.strip_prefix('[') {
            let (h, after) = rest
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing `]`"))?;
            match after {
                "" => (h, None),
                p => (
                    h,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("expected `:port` after `]`"))?,
                    ),
                ),
            }
        } else if text.matches(':').count() > 1 {
            return Err(bad("write an IPv6 address in brackets: `[::1]:443`"));
        } else {
            match text.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (text, None),
            }
        };
        let port = match port_text {
            None | Some("*") => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the port must be a number from 1 to 65535, or `*`"))?,
            ),
        };
        let host = if host_text == "*" {
            Host::Any
        } else if let Ok(ip) = host_text.parse::<IpAddr>() {
            Host::Ip(ip)
        } else {
            let lower = host_text.to_ascii_lowercase();
            let (glob, name) = match lower.strip_prefix("*.") {
                Some(rest) => (true, rest.to_string()),
                None => (false, lower.clone()),
            };
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            if name.is_empty() || !name.split('.').all(label_ok) {
                return Err(bad(
                    "the host must be a name, `*.` followed by a name, `*`, or an IP address",
                ));
            }
            if glob {
                Host::Below(format!(".{name}"))
            } else {
                Host::Name(name)
            }
        };
        Ok(HostPattern { host, port })
    }
}

impl From<HostPattern> for String {
    fn from(p: HostPattern) -> String {
        p.to_string()
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.host {
            Host::Any => f.write_str("*")?,
            Host::Below(suffix) => write!(f, "*{suffix}")?,
            Host::Name(n) => f.write_str(n)?,
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
            Host::Ip(ip) => write!(f, "{ip}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl HostPattern {
    /// True when a connection to `host` (a name or an address, as the client asked for it) on
    /// `port` matches.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match &self.host {
            Host::Any => true,
            Host::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
            Host::Name(n) => host.trim_end_matches('.').eq_ignore_ascii_case(n),
            Host::Below(suffix) => {
                let h = host.trim_end_matches('.').to_ascii_lowercase();
                h.len() > suffix.len() && h.ends_with(suffix.as_str())
            }
        }
    }

    /// Whether this entry may lead to `addr` when it is a special address: loopback,
    /// unspecified (which connects to loopback), or a metadata address (link-local, such as
    /// the cloud instance metadata service). Only an entry naming it exactly does: an address
    /// entry must be that address; for loopback, a loopback name (`localhost:5432`) also does.
    /// Wildcards (`*`, `*.example.com`) and other names never lead there, so neither `*` nor a
    /// name that resolves (or is rebound) to 127.0.0.1 reaches the web console, `/mcp` or any
    /// other service on the host. (The host's other own addresses are caught after connecting:
    /// [`HostPattern::may_reach_self`].)
    pub fn may_reach(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        let special = addr.is_loopback() || addr.is_unspecified() || metadata(addr);
        !special || self.names_exactly(addr)
    }

    /// Whether this entry may lead to `addr`, an address of this machine itself (a connection
    /// whose local and peer addresses are the same: loopback, or the host's own interface
    /// addresses, a Docker bridge, ...): only when it names that address exactly.
    pub fn may_reach_self(&self, addr: IpAddr) -> bool {
        self.names_exactly(addr.to_canonical())
    }

    /// The entry names `addr` itself: that address, or a loopback name for a loopback address.
    fn names_exactly(&self, addr: IpAddr) -> bool {
        match &self.host {
            Host::Ip(ip) => ip.to_canonical() == addr,
            Host::Name(n) => addr.is_loopback() && loopback_name(n),
            Host::Any | Host::Below(_) => false,
        }
    }

    /// Whether this entry could lead a child to a service of this machine bound at
    /// `bound:port` (port 0: any port). Conservative: an entry naming any loopback or
    /// unspecified address counts, and any address entry counts for a service bound to all
    /// addresses.
    pub fn reaches_own(&self, bound: IpAddr, port: u16) -> bool {
        if port != 0 && self.port.is_some_and(|p| p != port) {
            return false;
        }
        let bound = bound.to_canonical();
        match &self.host {
            Host::Ip(ip) => {
                let ip = ip.to_canonical();
                ip == bound || ip.is_loopback() || ip.is_unspecified() || bound.is_unspecified()
            }
            Host::Name(n) => loopback_name(n),
            Host::Any | Host::Below(_) => false,
        }
    }

    /// For an entry with one host (a name or an address) and a port: the destination to
    /// forward as plain TCP inside a child's namespace.
    pub fn forward(&self) -> Option<(String, u16)> {
        let port = self.port?;
        match &self.host {
            Host::Name(n) => Some((n.clone(), port)),
            Host::Ip(ip) => Some((ip.to_string(), port)),
            Host::Any | Host::Below(_) => None,
        }
    }
}

/// Cloud instance metadata addresses, where a machine's credentials are served: link-local
/// (IPv4 169.254/16, which AWS, GCP, Azure and others use; IPv6 fe80::/10), AWS's IPv6
/// endpoint `fd00:ec2::254` and Alibaba Cloud's `100.100.100.200`.
pub fn metadata(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == std::net::Ipv4Addr::new(100, 100, 100, 200),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// Names that mean this machine's loopback (`localhost`, names below it, Debian's IPv6 ones).
fn loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "ip6-localhost"
        || name == "ip6-loopback"
}

impl NetworkPolicy {
    /// The `allow` entry that lets a child reach `host:port`, if any.
    pub fn allows(&self, host: &str, port: u16) -> Option<&HostPattern> {
        match self.mode {
            NetworkMode::Open => None,
            NetworkMode::Deny => None,
            NetworkMode::Allowlist => self.allow.iter().find(|p| p.matches(host, port)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> HostPattern {
        HostPattern::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn the_host_itself_is_reached_only_through_an_entry_naming_it() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for m in [
            "169.254.169.254",
            "fd00:ec2::254",
            "100.100.100.200",
            "fe80::1",
        ] {
            assert!(metadata(ip(m)), "{m}");
        }
        assert!(
            !metadata(ip("10.0.0.1")) && !metadata(ip("fd00::2")),
            "ULA is not metadata"
        );
        for wildcard in ["*", "*:8765", "*.example.com"] {
            let p = pattern(wildcard);
            for own in [
                "127.0.0.1",
                "127.1.2.3",
                "::1",
                "::ffff:127.0.0.1",
                "0.0.0.0",
                "169.254.169.254",
            ] {
                assert!(!p.may_reach(ip(own)), "{wildcard} must not reach {own}");
            }
            assert!(p.may_reach(ip("10.0.0.1")) && p.may_reach(ip("93.184.216.34")));
            assert!(
                !p.may_reach_self(ip("192.0.2.2")),
                "nor the host's own interface address"
            );
        }
        assert!(pattern("127.0.0.1:5432").may_reach(ip("127.0.0.1")));
        assert!(!pattern("127.0.0.1:5432").may_reach(ip("127.0.0.2")));
        assert!(pattern("localhost:5432").may_reach(ip("127.0.0.1")));
        assert!(pattern("ip6-localhost").may_reach(ip("::1")));
        assert!(
            !pattern("db.internal:5432").may_reach(ip("127.0.0.1")),
            "only loopback names"
        );
        assert!(!pattern("metadata.internal").may_reach(ip("169.254.169.254")));
        assert!(pattern("169.254.169.254:80").may_reach(ip("169.254.169.254")));
        assert!(pattern("192.0.2.2:5432").may_reach_self(ip("192.0.2.2")));
        // What could lead a child to a service of this machine bound at an address and port.
        let lo = ip("127.0.0.1");
        for e in [
            "127.0.0.1",
            "localhost:8765",
            "[::1]",
            "0.0.0.0",
            "127.0.0.1:8765",
        ] {
            assert!(pattern(e).reaches_own(lo, 8765), "{e}");
        }
        assert!(
            pattern("127.0.0.1:9090").reaches_own(lo, 0),
            "port 0 is any port"
        );
        assert!(pattern("[::1]").reaches_own(ip("::1"), 8765));
        for e in [
            "127.0.0.1:9090",
            "*",
            "*.example.com",
            "db.internal:8765",
            "10.0.0.1",
        ] {
            assert!(!pattern(e).reaches_own(lo, 8765), "{e}");
        }
    }

    #[test]
    fn patterns_match_hosts_and_ports() {
        let aws = pattern("*.amazonaws.com:443");
        assert!(aws.matches("logs.us-east-1.amazonaws.com", 443));
        assert!(aws.matches("S3.AMAZONAWS.COM.", 443));
        assert!(!aws.matches("amazonaws.com", 443));
        assert!(!aws.matches("evilamazonaws.com", 443));
        assert!(!aws.matches("s3.amazonaws.com", 80));
        let db = pattern("db.internal");
        assert!(db.matches("db.internal", 5432) && db.matches("DB.internal", 1));
        assert!(!db.matches("x.db.internal", 5432));
        let local = pattern("127.0.0.1:9090");
        assert!(local.matches("127.0.0.1", 9090) && !local.matches("127.0.0.1", 9091));
        assert!(!local.matches("localhost", 9090));
        assert!(pattern("[::1]:80").matches("[::1]", 80));
        assert!(pattern("*").matches("anything", 1));
        assert!(pattern("*:443").matches("anything", 443));
        assert_eq!(
            pattern("db.internal:5432").forward(),
            Some(("db.internal".into(), 5432))
        );
        assert_eq!(pattern("*.x.com:443").forward(), None);
        assert_eq!(pattern("[::1]:80").to_string(), "[::1]:80");
    }

    #[test]
    fn bad_patterns_say_why() {
        for bad in [
            "",
            "https://x.com",
            "x.com:0",
            "x.com:http",
            "::1:80",
            "*x.com",
            "a..b",
            "x.com/path",
        ] {
            let err = HostPattern::try_from(bad.to_string()).unwrap_err();
            assert!(err.to_string().contains("bad network.allow entry"), "{err}");
        }
    }

    #[test]
    fn the_section_parses_in_both_forms_with_positions() {
        let p: NetworkPolicy = serde_json::from_str(r#""deny""#).unwrap();
        assert_eq!(p.mode, NetworkMode::Deny);
        let p: NetworkPolicy = serde_json::from_str(r#""allow""#).unwrap();
        assert_eq!(p.mode, NetworkMode::Open);
        let p: NetworkPolicy =
            serde_json::from_str(r#"{"allow": ["127.0.0.1:9", "*.x.com:443"]}"#).unwrap();
        assert_eq!(p.mode, NetworkMode::Allowlist);
        assert!(p.allows("a.x.com", 443).is_some());
        assert!(p.allows("a.x.com", 80).is_none());
        let err = crate::guard::PolicyFile::parse(
            "{\n \"network\": {\n  \"allow\": [\"ok.com\", \"https://bad\"]\n }\n}",
            "p.json",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("p.json:3:"), "{err}");
        assert!(err.contains("network.allow"), "{err}");
        assert!(err.contains("no scheme"), "{err}");
    }
}
