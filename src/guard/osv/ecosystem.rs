//! The package ecosystems the guard checks installs for, with OSV's names for them and each
//! registry's rule for when two package names are the same package.

/// The package ecosystems whose installs the guard recognises, named as OSV names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    PyPI,
    Npm,
    CratesIo,
    Go,
    RubyGems,
}

impl Ecosystem {
    pub const ALL: [Ecosystem; 5] = [
        Ecosystem::PyPI,
        Ecosystem::Npm,
        Ecosystem::CratesIo,
        Ecosystem::Go,
        Ecosystem::RubyGems,
    ];

    /// OSV's name, which is also the directory and archive name (`crates.io/all.zip`).
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::PyPI => "PyPI",
            Ecosystem::Npm => "npm",
            Ecosystem::CratesIo => "crates.io",
            Ecosystem::Go => "Go",
            Ecosystem::RubyGems => "RubyGems",
        }
    }

    /// The ecosystem OSV calls exactly `name`.
    pub fn from_osv(name: &str) -> Option<Ecosystem> {
        Ecosystem::ALL.into_iter().find(|e| e.as_str() == name)
    }

    /// A package name as the registry identifies it: PyPI per PEP 503 (case-insensitive, runs
    /// of `-_.` are one `-`), crates.io case-insensitive with `_` == `-`; npm, Go and RubyGems
    /// names are compared as written.
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::PyPI => {
                let mut out = String::with_capacity(name.len());
                for c in name.trim().chars() {
                    if matches!(c, '-' | '_' | '.') {
                        if !out.ends_with('-') {
                            out.push('-');
                        }
                    } else {
                        out.push(c.to_ascii_lowercase());
                    }
                }
                out
            }
            Ecosystem::CratesIo => name.trim().to_ascii_lowercase().replace('_', "-"),
            _ => name.trim().to_string(),
        }
    }
}

impl std::fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Ecosystem {
    type Err = String;

    /// OSV's names, case-insensitive, plus the tools' names (`pip`, `cargo`, `gem`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pypi" | "pip" | "python" => Ok(Ecosystem::PyPI),
            "npm" | "node" => Ok(Ecosystem::Npm),
            "crates.io" | "crates" | "cargo" | "rust" => Ok(Ecosystem::CratesIo),
            "go" | "golang" => Ok(Ecosystem::Go),
            "rubygems" | "gem" | "ruby" => Ok(Ecosystem::RubyGems),
            _ => Err(format!(
                "unknown ecosystem `{s}` (expected one of PyPI, npm, crates.io, Go, RubyGems)"
            )),
        }
    }
}
