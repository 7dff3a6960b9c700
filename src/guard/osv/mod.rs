//! Known-vulnerability lookups for package installs. [`Advisories`] is what the guard asks
//! ("is jinja2 3.1.2 on PyPI affected by anything?"); [`OsvDb`] answers from a local copy of
//! the OSV database: the JSON records the OSV project publishes per ecosystem
//! (`<dir>/<Ecosystem>/<ID>.json`, what `<Ecosystem>/all.zip` unpacks to), loaded once at start
//! and matched with each ecosystem's own version order (see [`super::versions`]). Another
//! answerer (`osv-scanner`, which runs a program) lives in `tools::osv_scanner`.

mod ecosystem;
mod matching;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::versions::Version;
pub use ecosystem::Ecosystem;
use matching::{Entry, Kind, Range, RawEvent, RawRecord, affects, is_zero, less, read_record};

/// Largest single record file read; larger files are skipped as malformed.
pub const MAX_RECORD_BYTES: u64 = 8 * 1024 * 1024;
/// Most threads used to parse the database at start.
const MAX_LOAD_THREADS: usize = 8;
/// Longest advisory summary kept (characters).
const MAX_SUMMARY_CHARS: usize = 160;

/// One advisory that affects the version asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// The first release that fixes it for the version asked about, when there is one.
    pub fixed: Option<String>,
}

/// Why a lookup gave no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdvisoryError {
    #[error("`{version}` is not a {ecosystem} version that can be compared")]
    BadVersion {
        ecosystem: Ecosystem,
        version: String,
    },
    #[error("{0}")]
    Source(String),
}

/// Something that knows which package versions have known vulnerabilities.
pub trait Advisories: Send + Sync + std::fmt::Debug {
    /// Where the answers come from, for logs and messages.
    fn describe(&self) -> String;

    /// Advisories affecting `version` of package `name`.
    fn check(
        &self,
        ecosystem: Ecosystem,
        name: &str,
        version: &str,
    ) -> Result<Vec<Finding>, AdvisoryError>;

    /// Advisories that affect every version of `name` and have no fix (malicious packages,
    /// abandoned ones): an install of any version is affected.
    fn unfixed(&self, _ecosystem: Ecosystem, _name: &str) -> Vec<Finding> {
        Vec::new()
    }
}

/// Why the database could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum OsvError {
    #[error(
        "no OSV database at {0} (expected <dir>/<Ecosystem>/*.json; `pi-mcp osv update` downloads it)"
    )]
    Missing(PathBuf),
    #[error("cannot read the OSV database at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A local OSV database, indexed by ecosystem and normalised package name.
#[derive(Default)]
pub struct OsvDb {
    label: String,
    records: Vec<Record>,
    index: HashMap<(Ecosystem, String), Vec<Entry>>,
    skipped: usize,
}

#[derive(Debug)]
struct Record {
    id: String,
    aliases: Vec<String>,
    summary: String,
}

impl OsvDb {
    /// Loads every `<dir>/<Ecosystem>/*.json` record for the ecosystems in [`Ecosystem::ALL`].
    /// A record that does not parse is counted in [`OsvDb::skipped`], not fatal.
    pub fn load(dir: &Path) -> Result<OsvDb, OsvError> {
        let mut files: Vec<(Ecosystem, PathBuf)> = Vec::new();
        for eco in Ecosystem::ALL {
            let sub = dir.join(eco.as_str());
            if !sub.is_dir() {
                continue;
            }
            let io = |source| OsvError::Io {
                path: sub.clone(),
                source,
            };
            for entry in std::fs::read_dir(&sub).map_err(io)? {
                let path = entry.map_err(io)?.path();
                if path.extension().is_some_and(|e| e == "json") {
                    files.push((eco, path));
                }
            }
        }
        if files.is_empty() {
            return Err(OsvError::Missing(dir.to_path_buf()));
        }
        files.sort();
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, MAX_LOAD_THREADS);
        let chunk = files.len().div_ceil(threads);
        let parsed: Vec<(Ecosystem, Option<RawRecord>)> = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|(e, p)| (*e, read_record(p)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let mut db = OsvDb {
            label: format!("OSV database at {}", dir.display()),
            ..OsvDb::default()
        };
        db.skipped = files.len() - parsed.len();
        for (eco, raw) in parsed {
            match raw {
                // A record sits in every ecosystem directory it affects; index each copy only
                // for its own directory's ecosystem.
                Some(raw) => db.add(raw, Some(eco)),
                None => db.skipped += 1,
            }
        }
        Ok(db)
    }

    /// A database of records given as JSON values (for example those `osv-scanner` reports).
    pub fn from_json_records(
        label: &str,
        records: impl IntoIterator<Item = serde_json::Value>,
    ) -> OsvDb {
        let mut db = OsvDb {
            label: label.to_string(),
            ..OsvDb::default()
        };
        for value in records {
            match serde_json::from_value::<RawRecord>(value) {
                Ok(raw) => db.add(raw, None),
                Err(_) => db.skipped += 1,
            }
        }
        db
    }

    fn add(&mut self, raw: RawRecord, only: Option<Ecosystem>) {
        if raw.withdrawn.is_some() {
            return;
        }
        let record = self.records.len();
        let mut used = false;
        for a in raw.affected {
            let Some(pkg) = a.package else { continue };
            let Some(eco) = Ecosystem::from_osv(&pkg.ecosystem) else {
                continue;
            };
            if only.is_some_and(|o| o != eco) {
                continue;
            }
            let ranges = a
                .ranges
                .into_iter()
                .filter_map(|r| {
                    let semver = match r.kind.as_str() {
                        "SEMVER" => true,
                        "ECOSYSTEM" => false,
                        _ => return None, // GIT ranges name commits, not releases
                    };
                    let events = r.events.into_iter().filter_map(RawEvent::into_event);
                    Some(Range {
                        semver,
                        events: events.collect(),
                    })
                })
                .collect();
            self.index
                .entry((eco, eco.normalize(&pkg.name)))
                .or_default()
                .push(Entry {
                    record,
                    ranges,
                    versions: a.versions,
                });
            used = true;
        }
        if used {
            let summary = raw
                .summary
                .filter(|s| !s.trim().is_empty())
                .or_else(|| {
                    raw.details
                        .and_then(|d| d.lines().next().map(str::to_string))
                })
                .unwrap_or_default();
            self.records.push(Record {
                id: raw.id,
                aliases: raw.aliases,
                summary: shorten(summary.trim(), MAX_SUMMARY_CHARS),
            });
        }
    }

    /// Records loaded (those affecting at least one package of a known ecosystem).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Files or records that could not be parsed.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// How many packages per ecosystem have at least one advisory.
    pub fn packages_per_ecosystem(&self) -> BTreeMap<Ecosystem, usize> {
        let mut out = BTreeMap::new();
        for (eco, _) in self.index.keys() {
            *out.entry(*eco).or_insert(0) += 1;
        }
        out
    }

    /// The entries for a package. A Go install may name a package inside a module
    /// (`golang.org/x/text/language`): the longest module path with advisories is used.
    fn entries(&self, eco: Ecosystem, name: &str) -> &[Entry] {
        let mut key = eco.normalize(name);
        loop {
            if let Some(e) = self.index.get(&(eco, key.clone())) {
                return e;
            }
            match (eco, key.rfind('/')) {
                (Ecosystem::Go, Some(i)) => key.truncate(i),
                _ => return &[],
            }
        }
    }
}

/// Counts only: the records would flood any log that prints a guard.
impl std::fmt::Debug for OsvDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsvDb")
            .field("label", &self.label)
            .field("records", &self.records.len())
            .field("packages", &self.index.len())
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Advisories for OsvDb {
    fn describe(&self) -> String {
        format!("{} ({} advisories)", self.label, self.records.len())
    }

    fn check(
        &self,
        eco: Ecosystem,
        name: &str,
        version: &str,
    ) -> Result<Vec<Finding>, AdvisoryError> {
        let entries = self.entries(eco, name);
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let bad = || AdvisoryError::BadVersion {
            ecosystem: eco,
            version: version.to_string(),
        };
        let v = Version::parse(eco, version).ok_or_else(bad)?;
        let v_semver = Version::parse_semver(version);
        // record -> first fixed version, over all of its entries that match
        let mut hits: BTreeMap<usize, Option<String>> = BTreeMap::new();
        for e in entries {
            if let Some(fixed) = affects(eco, e, version, &v, v_semver.as_ref()) {
                let slot = hits.entry(e.record).or_insert(None);
                if let Some(f) = fixed {
                    let lower = match slot.as_deref() {
                        None => true,
                        Some(old) => less(eco, &f, old),
                    };
                    if lower {
                        *slot = Some(f);
                    }
                }
            }
        }
        Ok(self.findings(hits))
    }

    fn unfixed(&self, eco: Ecosystem, name: &str) -> Vec<Finding> {
        let hits = self
            .entries(eco, name)
            .iter()
            .filter(|e| {
                e.ranges.iter().any(|r| {
                    r.events.iter().all(|ev| ev.kind == Kind::Introduced)
                        && r.events.iter().any(|ev| is_zero(&ev.version))
                })
            })
            .map(|e| (e.record, None))
            .collect();
        self.findings(hits)
    }
}

impl OsvDb {
    /// Findings for the hit records, one per vulnerability: a record listed as an alias of an
    /// earlier one (a PYSEC copy of a GHSA advisory) is folded into it.
    fn findings(&self, hits: BTreeMap<usize, Option<String>>) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        let mut list: Vec<(&Record, Option<String>)> = hits
            .into_iter()
            .filter_map(|(i, f)| self.records.get(i).map(|r| (r, f)))
            .collect();
        list.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        for (r, fixed) in list {
            let same = out
                .iter_mut()
                .find(|f| f.aliases.contains(&r.id) || r.aliases.contains(&f.id) || f.id == r.id);
            match same {
                Some(f) => {
                    if f.fixed.is_none() {
                        f.fixed = fixed;
                    }
                }
                None => out.push(Finding {
                    id: r.id.clone(),
                    aliases: r.aliases.clone(),
                    summary: r.summary.clone(),
                    fixed,
                }),
            }
        }
        out
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let cut: String = s.chars().take(max.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

/// The fixture database under `tests/data/osv`, for tests.
#[cfg(test)]
pub(crate) fn fixture_db() -> OsvDb {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv");
    match OsvDb::load(&dir) {
        Ok(db) => db,
        Err(e) => panic!("fixture database: {e}"),
    }
}

#[cfg(test)]
mod tests;
