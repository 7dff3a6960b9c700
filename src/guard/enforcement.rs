//! What the OS sandbox will actually bound for a `bash` child, as the guard sees it. The guard
//! judges the text it can read; whatever it cannot account for (a program the policy does not
//! know) is only safe to allow when the sandbox bounds its effects: writes, the network and
//! the hidden paths. The sandbox says what it enforces; the guard judges more strictly where a
//! layer is missing.

use serde::{Deserialize, Serialize};

/// The layers the sandbox enforces for the children this guard judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Enforcement {
    /// Landlock confines writes to the workspace, its temp directory and `writable_paths`.
    pub writes: bool,
    /// The child's network is bounded: its own namespace with the allow-list proxy, or no
    /// sockets at all (seccomp).
    pub network: bool,
    /// Hidden paths and pi-mcp's secrets are unreadable to the child by an OS mechanism.
    pub hidden: bool,
}

impl Enforcement {
    /// Nothing enforced: the strictest assumption, and a fresh guard's default.
    pub const NONE: Enforcement = Enforcement {
        writes: false,
        network: false,
        hidden: false,
    };
    /// Writes confined, network and hidden paths not (Landlock alone).
    pub const PARTIAL: Enforcement = Enforcement {
        writes: true,
        network: false,
        hidden: false,
    };
    /// Every layer enforced.
    pub const FULL: Enforcement = Enforcement {
        writes: true,
        network: true,
        hidden: true,
    };

    /// True when writes, network and hidden paths are all bounded.
    pub fn is_full(&self) -> bool {
        self.writes && self.network && self.hidden
    }

    /// Each layer by name with whether it is enforced, in a fixed order.
    pub fn layers(&self) -> [(&'static str, bool); 3] {
        [
            ("writes", self.writes),
            ("network", self.network),
            ("hidden", self.hidden),
        ]
    }

    /// The layers enforced, by name (`writes`, `network`, `hidden`).
    pub fn bound(&self) -> Vec<&'static str> {
        self.layers()
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| n)
            .collect()
    }

    /// The layers missing, by name.
    pub fn missing(&self) -> Vec<&'static str> {
        self.layers()
            .into_iter()
            .filter(|(_, on)| !*on)
            .map(|(n, _)| n)
            .collect()
    }

    /// The missing layers in words for a message: `writes, network and hidden paths`.
    pub fn missing_in_words(&self) -> String {
        let words: Vec<&str> = self
            .missing()
            .into_iter()
            .map(|n| match n {
                "writes" => "writes outside the workspace",
                "network" => "the network",
                _ => "hidden paths and secrets",
            })
            .collect();
        match words.as_slice() {
            [] => "nothing".to_string(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }

    /// Parses `full`, `partial` or `none` (the `policy check --sandbox` values).
    pub fn from_level(level: &str) -> Option<Enforcement> {
        match level {
            "full" => Some(Enforcement::FULL),
            "partial" => Some(Enforcement::PARTIAL),
            "none" => Some(Enforcement::NONE),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_missing_layers() {
        assert!(Enforcement::FULL.is_full());
        assert!(!Enforcement::PARTIAL.is_full());
        assert_eq!(Enforcement::default(), Enforcement::NONE);
        assert_eq!(Enforcement::PARTIAL.missing(), vec!["network", "hidden"]);
        assert_eq!(Enforcement::PARTIAL.bound(), vec!["writes"]);
        assert_eq!(
            Enforcement::PARTIAL.missing_in_words(),
            "the network and hidden paths and secrets"
        );
        assert_eq!(
            Enforcement::NONE.missing_in_words(),
            "writes outside the workspace, the network and hidden paths and secrets"
        );
        assert_eq!(
            Enforcement::from_level("partial"),
            Some(Enforcement::PARTIAL)
        );
        assert_eq!(Enforcement::from_level("most"), None);
    }
}
