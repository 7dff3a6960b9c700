//! How an OSV record is read (https://ossf.github.io/osv-schema/: only the parts the guard
//! uses, `null` read as empty) and how its ranges are matched against one version: events
//! sorted in the ecosystem's order, `introduced` / `fixed` / `last_affected` / `limit`, and the
//! first fixed release after the version.

use std::path::Path;

use serde::{Deserialize, Deserializer};

use super::{Ecosystem, MAX_RECORD_BYTES};
use crate::guard::versions::Version;

/// One `affected[]` item of a record, for one package.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) record: usize,
    pub(super) ranges: Vec<Range>,
    pub(super) versions: Vec<String>,
}

#[derive(Debug)]
pub(super) struct Range {
    pub(super) semver: bool,
    pub(super) events: Vec<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Introduced,
    Fixed,
    LastAffected,
    Limit,
}

#[derive(Debug)]
pub(super) struct Event {
    pub(super) kind: Kind,
    pub(super) version: String,
}

/// Reads a version string of one scheme.
pub(super) type Parser<'a> = &'a dyn Fn(&str) -> Option<Version>;

/// `Some(first fixed version after v)` when entry `e` affects `v`, else `None`.
pub(super) fn affects(
    eco: Ecosystem,
    e: &Entry,
    raw: &str,
    v: &Version,
    v_semver: Option<&Version>,
) -> Option<Option<String>> {
    let listed = e.versions.iter().any(|s| {
        s == raw
            || Version::parse(eco, s)
                .is_some_and(|x| x.compare(v) == Some(std::cmp::Ordering::Equal))
    });
    let mut hit = listed;
    let mut fixed: Option<(Version, String)> = None;
    let parse_eco = |s: &str| Version::parse(eco, s);
    let parse_semver = |s: &str| Version::parse_semver(s);
    for r in &e.ranges {
        let (v, parse): (&Version, Parser) = if r.semver {
            match v_semver {
                Some(vs) => (vs, &parse_semver),
                None => continue,
            }
        } else {
            (v, &parse_eco)
        };
        let Some(mut events) = r
            .events
            .iter()
            .map(|ev| {
                if ev.kind == Kind::Introduced && is_zero(&ev.version) {
                    Some((None, ev))
                } else {
                    parse(&ev.version).map(|p| (Some(p), ev))
                }
            })
            .collect::<Option<Vec<_>>>()
        else {
            continue; // a range with a version this scheme cannot read is not guessed at
        };
        events.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.compare(y).unwrap_or(std::cmp::Ordering::Equal),
        });
        let at_least = |p: &Option<Version>| {
            p.as_ref()
                .is_none_or(|p| v.compare(p).is_some_and(|o| o.is_ge()))
        };
        let mut in_range = false;
        let mut limited = false;
        for (p, ev) in &events {
            match ev.kind {
                Kind::Introduced if at_least(p) => in_range = true,
                Kind::Fixed if at_least(p) => in_range = false,
                Kind::LastAffected
                    if p.as_ref()
                        .is_some_and(|p| v.compare(p).is_some_and(|o| o.is_gt())) =>
                {
                    in_range = false
                }
                Kind::Limit if at_least(p) => limited = true,
                _ => {}
            }
        }
        if !in_range || limited {
            continue;
        }
        hit = true;
        let next_fix = events
            .iter()
            .filter(|(_, ev)| ev.kind == Kind::Fixed)
            .find_map(|(p, ev)| {
                p.as_ref()
                    .filter(|p| p.compare(v).is_some_and(|o| o.is_gt()))
                    .map(|p| (p.clone(), ev.version.clone()))
            });
        if let Some((p, s)) = next_fix {
            let lower = fixed
                .as_ref()
                .is_none_or(|(old, _)| p.compare(old).is_some_and(|o| o.is_lt()));
            if lower {
                fixed = Some((p, s));
            }
        }
    }
    hit.then(|| fixed.map(|(_, s)| s))
}

/// `a < b` in `eco`'s order (false when either does not parse).
pub(super) fn less(eco: Ecosystem, a: &str, b: &str) -> bool {
    match (Version::parse(eco, a), Version::parse(eco, b)) {
        (Some(x), Some(y)) => x.compare(&y).is_some_and(|o| o.is_lt()),
        _ => false,
    }
}

/// OSV's "from the beginning" introduced versions.
pub(super) fn is_zero(v: &str) -> bool {
    matches!(v, "0" | "0.0.0-0" | "0.0.0")
}

pub(super) fn read_record(path: &Path) -> Option<RawRecord> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > MAX_RECORD_BYTES {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The parts of an OSV record (https://ossf.github.io/osv-schema/) the guard uses.
#[derive(Deserialize)]
pub(super) struct RawRecord {
    pub(super) id: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) aliases: Vec<String>,
    #[serde(default)]
    pub(super) summary: Option<String>,
    #[serde(default)]
    pub(super) details: Option<String>,
    #[serde(default)]
    pub(super) withdrawn: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) affected: Vec<RawAffected>,
}

#[derive(Deserialize)]
pub(super) struct RawAffected {
    #[serde(default)]
    pub(super) package: Option<RawPackage>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) ranges: Vec<RawRange>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) versions: Vec<String>,
}

#[derive(Deserialize)]
pub(super) struct RawPackage {
    pub(super) ecosystem: String,
    pub(super) name: String,
}

#[derive(Deserialize)]
pub(super) struct RawRange {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) events: Vec<RawEvent>,
}

#[derive(Deserialize)]
pub(super) struct RawEvent {
    pub(super) introduced: Option<String>,
    pub(super) fixed: Option<String>,
    pub(super) last_affected: Option<String>,
    pub(super) limit: Option<String>,
}

impl RawEvent {
    pub(super) fn into_event(self) -> Option<Event> {
        let (kind, version) = match self {
            RawEvent {
                introduced: Some(v),
                ..
            } => (Kind::Introduced, v),
            RawEvent { fixed: Some(v), .. } => (Kind::Fixed, v),
            RawEvent {
                last_affected: Some(v),
                ..
            } => (Kind::LastAffected, v),
            RawEvent { limit: Some(v), .. } => (Kind::Limit, v),
            _ => return None,
        };
        Some(Event { kind, version })
    }
}

/// `null` reads as the empty default (OSV exporters write `"versions": null`).
pub(super) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
