//! Wrong tokens counted per remote address, for the console's sign-in and the `/mcp` bearer
//! check: after [`MAX_FAILURES`] within [`WINDOW`], that address is refused (429) until the
//! window has passed, whatever it sends. Per address, so a stranger guessing cannot lock the
//! operator out; IPv6 addresses count per /64, which one host can fill with addresses, and
//! every loopback address counts as one. At most [`MAX_ADDRESSES`] remote addresses are
//! tracked; while that many are, further ones share one count (throttled together rather
//! than not at all), which never applies to loopback, so a flood from many networks cannot
//! lock out the operator on this machine. Behind a reverse proxy every request comes from the
//! proxy's address, so its clients share one count. No crate does this small job (the rate
//! limiters count requests, not failures).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Wrong tokens an address may send within [`WINDOW`].
pub const MAX_FAILURES: usize = 10;
/// The window failures count in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once.
pub const MAX_ADDRESSES: usize = 16_384;

/// The address everything beyond [`MAX_ADDRESSES`] is counted under.
const OVERFLOW: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Recent wrong tokens per address.
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// The key `ip` is counted under: itself, its /64 for IPv6, one key for all of loopback.
fn bucket(ip: IpAddr) -> IpAddr {
    if ip.to_canonical().is_loopback() {
        return IpAddr::V4(Ipv4Addr::LOCALHOST);
    }
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
        v4 => v4,
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) > WINDOW)
    {
        times.pop_front();
    }
}

impl Throttle {
    /// Too many wrong tokens from `ip` lately (or the count cannot be read: fail closed). An
    /// address not tracked shares the overflow count only while the table is full, and
    /// loopback never does.
    pub fn throttled(&self, ip: IpAddr) -> bool {
        let Ok(mut all) = self.failures.lock() else {
            return true;
        };
        let now = Instant::now();
        let key = bucket(ip);
        let key = if all.contains_key(&key) || key.is_loopback() || all.len() < MAX_ADDRESSES {
            key
        } else {
            OVERFLOW
        };
        all.get_mut(&key).is_some_and(|times| {
            prune(times, now);
            times.len() >= MAX_FAILURES
        })
    }

    /// Counts a wrong token from `ip`.
    pub fn failed(&self, ip: IpAddr) {
        let Ok(mut all) = self.failures.lock() else {
            return;
        };
        let now = Instant::now();
        let mut key = bucket(ip);
        if !all.contains_key(&key) && !key.is_loopback() && all.len() >= MAX_ADDRESSES {
            all.retain(|_, times| {
                prune(times, now);
                !times.is_empty()
            });
            if all.len() >= MAX_ADDRESSES {
                key = OVERFLOW;
            }
        }
        let times = all.entry(key).or_default();
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_count() {
        let t = Throttle::default();
        let guesser: IpAddr = "203.0.113.7".parse().unwrap();
        let operator: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(!t.throttled(guesser));
            t.failed(guesser);
        }
        assert!(t.throttled(guesser));
        assert!(!t.throttled(operator), "a guesser does not lock others out");
        // One IPv6 host rotating through its /64 counts as one.
        for i in 0..MAX_FAILURES {
            t.failed(format!("2001:db8::{i:x}").parse().unwrap());
        }
        assert!(t.throttled("2001:db8::ffff".parse().unwrap()));
        assert!(!t.throttled("2001:db8:1::1".parse().unwrap()));
    }

    #[test]
    fn beyond_the_tracked_addresses_new_ones_share_a_count() {
        let t = Throttle::default();
        for i in 0..MAX_ADDRESSES as u32 {
            t.failed(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)));
        }
        let late: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            t.failed(late);
        }
        assert!(t.throttled(late));
        assert!(
            t.throttled("198.51.100.2".parse().unwrap()),
            "shares the overflow count"
        );
        assert!(
            !t.throttled("127.0.0.1".parse().unwrap()),
            "loopback never overflows"
        );
        assert!(!t.throttled("::1".parse().unwrap()));
    }
}
