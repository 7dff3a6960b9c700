//! Version ordering per package ecosystem, so that OSV advisory ranges are matched the way each
//! ecosystem orders its releases: PEP 440 for PyPI (epochs, pre-, post- and dev-releases),
//! SemVer 2.0 for npm and crates.io, Go's semver (a leading `v`; pseudo-versions are SemVer
//! pre-releases) and RubyGems' `Gem::Version` rules (`2.2.8.1`, `1.0.0.rc1`).

use std::cmp::Ordering;
use std::str::FromStr;

use super::osv::Ecosystem;

/// A version parsed by one ecosystem's rules. Versions of different schemes do not compare.
#[derive(Debug, Clone)]
pub enum Version {
    Pep440(pep440_rs::Version),
    Semver(semver::Version),
    Gem(GemVersion),
}

impl Version {
    /// Parses `text` by `eco`'s rules; `None` when it is not a version there.
    pub fn parse(eco: Ecosystem, text: &str) -> Option<Version> {
        let text = text.trim();
        match eco {
            Ecosystem::PyPI => pep440_rs::Version::from_str(text).ok().map(Version::Pep440),
            // npm's own parser accepts a leading `v` or `=`.
            Ecosystem::Npm => semver_version(text.trim_start_matches(['=', 'v']).trim()),
            Ecosystem::CratesIo => semver_version(text),
            Ecosystem::Go => semver_version(text.strip_prefix('v').unwrap_or(text)),
            Ecosystem::RubyGems => GemVersion::parse(text).map(Version::Gem),
        }
    }

    /// Parses `text` as SemVer 2.0 (a leading `v` allowed), as OSV `SEMVER` ranges require
    /// whatever the ecosystem.
    pub fn parse_semver(text: &str) -> Option<Version> {
        let text = text.trim();
        semver_version(text.strip_prefix('v').unwrap_or(text))
    }

    /// The order of two versions of the same scheme; `None` across schemes.
    pub fn compare(&self, other: &Version) -> Option<Ordering> {
        match (self, other) {
            (Version::Pep440(a), Version::Pep440(b)) => Some(a.cmp(b)),
            (Version::Semver(a), Version::Semver(b)) => Some(a.cmp(b)),
            (Version::Gem(a), Version::Gem(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// SemVer with build metadata dropped: SemVer 2.0 says it does not take part in precedence.
fn semver_version(text: &str) -> Option<Version> {
    let mut v = semver::Version::parse(text).ok()?;
    v.build = semver::BuildMetadata::EMPTY;
    Some(Version::Semver(v))
}

/// A RubyGems version: numeric and alphabetic segments, where any alphabetic segment makes a
/// pre-release (`1.0.0.rc1` < `1.0.0`), and trailing zeros do not count (`1.0` == `1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemVersion {
    /// `Gem::Version#canonical_segments`.
    segments: Vec<GemSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GemSegment {
    Number(u64),
    Text(String),
}

impl GemVersion {
    /// Parses like `Gem::Version.new`: digits first, then `[0-9A-Za-z]` runs separated by
    /// dots; a `-` means `.pre.`.
    pub fn parse(text: &str) -> Option<GemVersion> {
        let text = text.trim().replace('-', ".pre.");
        if !text.starts_with(|c: char| c.is_ascii_digit())
            || text.split('.').any(str::is_empty)
            || !text.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            return None;
        }
        let mut segments = Vec::new();
        let mut run = String::new();
        let flush = |run: &mut String, out: &mut Vec<GemSegment>| -> Option<()> {
            if run.is_empty() {
                return Some(());
            }
            let seg = if run.starts_with(|c: char| c.is_ascii_digit()) {
                GemSegment::Number(run.parse().ok()?)
            } else {
                GemSegment::Text(run.clone())
            };
            out.push(seg);
            run.clear();
            Some(())
        };
        for c in text.chars() {
            let switch = run
                .chars()
                .last()
                .is_some_and(|p| p.is_ascii_digit() != c.is_ascii_digit());
            if c == '.' || switch {
                flush(&mut run, &mut segments)?;
            }
            if c != '.' {
                run.push(c);
            }
        }
        flush(&mut run, &mut segments)?;
        // canonical_segments: trailing zeros go, separately in the release part and in the
        // pre-release part.
        let split = segments
            .iter()
            .position(|s| matches!(s, GemSegment::Text(_)))
            .unwrap_or(segments.len());
        let mut pre = segments.split_off(split);
        for part in [&mut segments, &mut pre] {
            while part.last() == Some(&GemSegment::Number(0)) {
                part.pop();
            }
        }
        segments.extend(pre);
        Some(GemVersion { segments })
    }
}

impl Ord for GemVersion {
    /// `Gem::Version#<=>`: missing segments are 0; text sorts before numbers.
    fn cmp(&self, other: &Self) -> Ordering {
        let zero = GemSegment::Number(0);
        let len = self.segments.len().max(other.segments.len());
        for i in 0..len {
            let a = self.segments.get(i).unwrap_or(&zero);
            let b = other.segments.get(i).unwrap_or(&zero);
            let o = match (a, b) {
                (GemSegment::Number(x), GemSegment::Number(y)) => x.cmp(y),
                (GemSegment::Text(x), GemSegment::Text(y)) => x.cmp(y),
                (GemSegment::Text(_), GemSegment::Number(_)) => Ordering::Less,
                (GemSegment::Number(_), GemSegment::Text(_)) => Ordering::Greater,
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

impl PartialOrd for GemVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(eco: Ecosystem, a: &str, b: &str) -> Ordering {
        let (x, y) = (Version::parse(eco, a), Version::parse(eco, b));
        match (x, y) {
            (Some(x), Some(y)) => x.compare(&y).expect("same scheme"),
            _ => panic!("{eco}: cannot parse `{a}` or `{b}`"),
        }
    }

    #[test]
    fn pep440_orders_pre_post_dev_and_epochs() {
        use Ordering::*;
        let eco = Ecosystem::PyPI;
        for (a, b, o) in [
            ("3.1.3rc1", "3.1.3", Less),
            ("3.1.3a1", "3.1.3b1", Less),
            ("3.1.3.dev1", "3.1.3a1", Less),
            ("3.1.3", "3.1.3.post1", Less),
            ("2.31", "2.31.0", Equal),
            ("1!1.0", "2.0", Greater),
            ("1!0.1", "99.0", Greater),
            ("1.0+local.1", "1.0", Greater),
            ("1.0-rc.1", "1.0rc1", Equal),
            ("v1.2", "1.2", Equal),
            ("2.10.0", "2.9.0", Greater),
        ] {
            assert_eq!(order(eco, a, b), o, "{a} vs {b}");
        }
        assert!(Version::parse(eco, "not-a-version").is_none());
    }

    #[test]
    fn semver_orders_pre_releases_and_ignores_build_metadata() {
        use Ordering::*;
        for eco in [Ecosystem::Npm, Ecosystem::CratesIo] {
            for (a, b, o) in [
                ("4.17.21-beta.1", "4.17.21", Less),
                ("1.0.0-alpha", "1.0.0-alpha.1", Less),
                ("1.0.0-alpha.beta", "1.0.0-beta", Less),
                ("1.0.0-beta.2", "1.0.0-beta.11", Less),
                ("1.0.0-rc.1", "1.0.0", Less),
                ("0.0.0-0", "0.0.0", Less),
                ("1.0.0+build.5", "1.0.0", Equal),
                ("0.14.10", "0.14.9", Greater),
            ] {
                assert_eq!(order(eco, a, b), o, "{eco}: {a} vs {b}");
            }
        }
        assert_eq!(order(Ecosystem::Npm, "v4.17.20", "=4.17.20"), Equal);
        assert!(Version::parse(Ecosystem::Npm, "4.17").is_none());
        assert!(Version::parse(Ecosystem::CratesIo, "v1.0.0").is_none());
    }

    #[test]
    fn go_versions_drop_the_v_and_pseudo_versions_are_pre_releases() {
        use Ordering::*;
        let eco = Ecosystem::Go;
        for (a, b, o) in [
            ("v0.3.7", "0.3.8", Less),
            ("v0.3.8", "0.3.8", Equal),
            ("v0.0.0-20220101000000-abcdef123456", "0.0.1", Less),
            (
                "v0.0.0-20220101000000-abcdef123456",
                "v0.0.0-20210101000000-abcdef123456",
                Greater,
            ),
            ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3", Greater),
            ("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4", Less),
            ("v2.0.0+incompatible", "2.0.0", Equal),
        ] {
            assert_eq!(order(eco, a, b), o, "{a} vs {b}");
        }
        assert!(Version::parse(eco, "latest").is_none());
    }

    #[test]
    fn gem_versions_follow_rubygems() {
        use Ordering::*;
        let eco = Ecosystem::RubyGems;
        for (a, b, o) in [
            ("2.2.8", "2.2.8.1", Less),
            ("2.2.8.1", "2.2.9", Less),
            ("1.0.0.rc1", "1.0.0", Less),
            ("1.0.0.rc1", "1.0.0.rc2", Less),
            ("1.0.0.beta", "1.0.0.rc", Less),
            ("1.0", "1", Equal),
            ("1.0.a", "1.a", Equal),
            ("1.0.0-rc1", "1.0.0.pre.rc1", Equal),
            ("3.0.9.1", "3.0.10", Less),
            ("10.0", "9.9.9", Greater),
        ] {
            assert_eq!(order(eco, a, b), o, "{a} vs {b}");
        }
        for bad in ["", "a1", "1..2", "1.2 3", "1.2$"] {
            assert!(GemVersion::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn schemes_do_not_compare_with_each_other() {
        let a = Version::parse(Ecosystem::PyPI, "1.0").expect("pep 440");
        let b = Version::parse(Ecosystem::Npm, "1.0.0").expect("semver");
        assert_eq!(a.compare(&b), None);
    }
}
