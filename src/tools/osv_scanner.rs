//! Checks package versions by running Google's `osv-scanner` when it is on PATH, and picks the
//! advisory source the guard uses at start: `osv-scanner` (falling back to the local database
//! when it fails), else the local OSV database, else none, which is reported once. The guard
//! performs no I/O itself, so the program runs here, behind the guard's
//! [`Advisories`] trait.
//!
//! One lookup writes a one-package lockfile (`requirements.txt`, `package-lock.json`,
//! `Cargo.lock`, `go.mod` or `Gemfile.lock`) to a temporary directory and runs
//! `osv-scanner --format json --lockfile <file>` (the same flags in its v1 and v2), whose
//! report carries the full OSV records; their ranges are read like the local database's.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::guard::osv::{Advisories, AdvisoryError, Ecosystem, Finding, OsvDb};

/// The program looked for on PATH.
pub const PROGRAM: &str = "osv-scanner";
/// Longest one `osv-scanner` run may take before it is killed.
pub const SCANNER_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes of `osv-scanner` output read.
pub const MAX_SCANNER_OUTPUT: u64 = 16 * 1024 * 1024;

/// Advisories from `osv-scanner`, with a local database to fall back on.
pub struct OsvScanner {
    program: PathBuf,
    fallback: Option<OsvDb>,
    timeout: Duration,
    cache: Mutex<HashMap<(Ecosystem, String, String), Vec<Finding>>>,
    /// Why the scanner stopped being used (after its first failure).
    broken: Mutex<Option<String>>,
}

impl OsvScanner {
    pub fn new(program: PathBuf, fallback: Option<OsvDb>) -> OsvScanner {
        OsvScanner {
            program,
            fallback,
            timeout: SCANNER_TIMEOUT,
            cache: Mutex::new(HashMap::new()),
            broken: Mutex::new(None),
        }
    }

    /// The same scanner, killed after `timeout` instead of [`SCANNER_TIMEOUT`].
    pub fn with_timeout(mut self, timeout: Duration) -> OsvScanner {
        self.timeout = timeout;
        self
    }

    /// `osv-scanner` on PATH, if there is one.
    pub fn find_on_path() -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(PROGRAM))
            .find(|p| is_executable(p))
    }

    /// Runs the scanner on a one-package lockfile.
    fn scan(&self, eco: Ecosystem, name: &str, version: &str) -> Result<Vec<Finding>, String> {
        let (file, text) = lockfile(eco, name, version)?;
        let dir = tempfile::Builder::new()
            .prefix("pi-mcp-osv.")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let path = dir.path().join(file);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let mut child = Command::new(&self.program)
            .args(["--format", "json", "--lockfile"])
            .arg(&path)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program.display()))?;
        let drain = |r: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(r) = r {
                    let _ = r.take(MAX_SCANNER_OUTPUT).read_to_end(&mut buf);
                }
                buf
            })
        };
        let out = drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{PROGRAM} took longer than {:?}", self.timeout));
                }
                Err(e) => return Err(format!("waiting for {PROGRAM}: {e}")),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        // 0: nothing found, 1: vulnerabilities found; anything else is a failure
        if !matches!(status.code(), Some(0 | 1)) {
            let tail = String::from_utf8_lossy(&stderr);
            let tail: String = tail
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(format!("{PROGRAM} failed ({status}): {tail}"));
        }
        parse_report(&stdout, eco, name, version)
    }
}

impl std::fmt::Debug for OsvScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsvScanner")
            .field("program", &self.program)
            .field("fallback", &self.fallback)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Advisories for OsvScanner {
    fn describe(&self) -> String {
        match &self.fallback {
            Some(db) => format!(
                "{} (falling back to the {})",
                self.program.display(),
                db.describe()
            ),
            None => self.program.display().to_string(),
        }
    }

    fn check(
        &self,
        eco: Ecosystem,
        name: &str,
        version: &str,
    ) -> Result<Vec<Finding>, AdvisoryError> {
        let key = (eco, eco.normalize(name), version.to_string());
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hit);
        }
        let broken = self.broken.lock().ok().and_then(|b| b.clone());
        let why = match broken {
            Some(why) => why,
            None => match self.scan(eco, name, version) {
                Ok(found) => {
                    if let Ok(mut c) = self.cache.lock() {
                        c.insert(key, found.clone());
                    }
                    return Ok(found);
                }
                Err(why) => {
                    tracing::warn!("{why}; package installs are checked without it from now on");
                    if let Ok(mut b) = self.broken.lock() {
                        *b = Some(why.clone());
                    }
                    why
                }
            },
        };
        match &self.fallback {
            Some(db) => db.check(eco, name, version),
            None => Err(AdvisoryError::Source(why)),
        }
    }

    fn unfixed(&self, eco: Ecosystem, name: &str) -> Vec<Finding> {
        self.fallback
            .as_ref()
            .map(|db| db.unfixed(eco, name))
            .unwrap_or_default()
    }
}

/// Set once the missing-database warning was given: it is said once per process.
static MISSING_DB_WARNED: AtomicBool = AtomicBool::new(false);

/// How loudly a missing advisory source is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingDb {
    /// A warning, once per process: the faces that run commands for a model or a daemon
    /// (`serve`, `heartbeat`, `agent`, `doctor`).
    Warn,
    /// A debug line: one-shot commands (`ghost`, `monitor`, `approvals`, `policy`), where the
    /// verdict of an install (`osv-no-database`) already says it.
    #[default]
    Quiet,
}

/// The advisory source for the guard, chosen once at start and logged: `osv-scanner` if it is
/// on PATH, else the OSV database in `db_dir`, else none (installs will need approval; said
/// as `missing` says).
pub fn advisories_at_start(db_dir: &Path, missing: MissingDb) -> Option<Arc<dyn Advisories>> {
    let started = Instant::now();
    let db = match OsvDb::load(db_dir) {
        Ok(db) => {
            tracing::info!(
                "OSV database: {} advisories from {} in {:.1?}{}",
                db.len(),
                db_dir.display(),
                started.elapsed(),
                match db.skipped() {
                    0 => String::new(),
                    n => format!(" ({n} unreadable records skipped)"),
                }
            );
            Some(db)
        }
        Err(e) => {
            tracing::debug!("{e}");
            None
        }
    };
    if let Some(program) = OsvScanner::find_on_path() {
        let scanner = OsvScanner::new(program, db);
        tracing::info!("package installs are checked with {}", scanner.describe());
        return Some(Arc::new(scanner));
    }
    match db {
        Some(db) => Some(Arc::new(db)),
        None => {
            let message = format!(
                "no OSV advisory database at {} and no {PROGRAM} on PATH: every package install \
                 will need approval (run `pi-mcp osv update` to download the database)",
                db_dir.display()
            );
            if missing == MissingDb::Warn && !MISSING_DB_WARNED.swap(true, Ordering::Relaxed) {
                tracing::warn!("{message}");
            } else {
                tracing::debug!("{message}");
            }
            None
        }
    }
}

/// Advisories older than this are reported as stale by `pi-mcp doctor`.
pub const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The advisory source's health for `pi-mcp doctor`: `osv-scanner` on PATH, and the OSV
/// database in `db_dir` (records per ecosystem, age of the newest download), without loading it.
pub fn health(db_dir: &Path) -> Vec<crate::health::Check> {
    use crate::health::Check;
    let scanner = OsvScanner::find_on_path();
    let mut records = Vec::new();
    let mut newest: Option<std::time::SystemTime> = None;
    for eco in Ecosystem::ALL {
        let dir = db_dir.join(eco.as_str());
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let n = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count();
        if n == 0 {
            continue;
        }
        records.push(format!("{} {n}", eco.as_str()));
        let modified = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
        newest = newest.max(modified);
    }
    let mut out = Vec::new();
    if let Some(program) = &scanner {
        out.push(Check::ok(
            "osv-scanner",
            format!("{} checks package installs", program.display()),
        ));
    }
    let age = newest.and_then(|t| t.elapsed().ok());
    let update = "run `pi-mcp osv update` (or install osv-scanner)";
    out.push(match (records.is_empty(), age) {
        (true, _) if scanner.is_some() => Check::ok(
            "OSV database",
            format!("none at {} (osv-scanner is used instead)", db_dir.display()),
        ),
        (true, _) => Check::warn(
            "OSV database",
            format!(
                "none at {} and no {PROGRAM} on PATH: every package install needs approval",
                db_dir.display()
            ),
            update,
        ),
        (false, Some(age)) if age > STALE_AFTER => Check::warn(
            "OSV database",
            format!(
                "{} ({}), downloaded {} days ago",
                db_dir.display(),
                records.join(", "),
                age.as_secs() / 86_400
            ),
            update,
        ),
        (false, age) => Check::ok(
            "OSV database",
            format!(
                "{} ({}){}",
                db_dir.display(),
                records.join(", "),
                age.map(|a| format!(", downloaded {} hours ago", a.as_secs() / 3600))
                    .unwrap_or_default()
            ),
        ),
    });
    out
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The file name and contents of a lockfile naming exactly `name` at `version`.
fn lockfile(eco: Ecosystem, name: &str, version: &str) -> Result<(&'static str, String), String> {
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@/+~!".contains(c))
    };
    if !safe(name) || !safe(version) {
        return Err(format!("cannot write `{name}` `{version}` into a lockfile"));
    }
    Ok(match eco {
        Ecosystem::PyPI => ("requirements.txt", format!("{name}=={version}\n")),
        Ecosystem::Npm => (
            "package-lock.json",
            serde_json::json!({
                "name": "pi-mcp-check", "version": "0.0.0", "lockfileVersion": 3, "requires": true,
                "packages": {
                    "": {"name": "pi-mcp-check", "version": "0.0.0", "dependencies": {name: version}},
                    format!("node_modules/{name}"): {"version": version}
                }
            })
            .to_string(),
        ),
        Ecosystem::CratesIo => (
            "Cargo.lock",
            format!(
                "version = 3\n\n[[package]]\nname = \"{name}\"\nversion = \"{version}\"\n\
                 source = \"registry+https://github.com/rust-lang/crates.io-index\"\n"
            ),
        ),
        Ecosystem::Go => {
            let v = if version.starts_with('v') { version.to_string() } else { format!("v{version}") };
            ("go.mod", format!("module example.com/pi-mcp-check\n\ngo 1.21\n\nrequire {name} {v}\n"))
        }
        Ecosystem::RubyGems => (
            "Gemfile.lock",
            format!(
                "GEM\n  remote: https://rubygems.org/\n  specs:\n    {name} ({version})\n\n\
                 PLATFORMS\n  ruby\n\nDEPENDENCIES\n  {name}\n"
            ),
        ),
    })
}

/// The findings for `name` `version` in an `osv-scanner --format json` report.
fn parse_report(
    json: &[u8],
    eco: Ecosystem,
    name: &str,
    version: &str,
) -> Result<Vec<Finding>, String> {
    let report: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| format!("{PROGRAM} printed something that is not its JSON report: {e}"))?;
    let want = eco.normalize(name);
    let mut records = Vec::new();
    for result in report["results"].as_array().into_iter().flatten() {
        for pkg in result["packages"].as_array().into_iter().flatten() {
            let p = &pkg["package"];
            let same = p["ecosystem"].as_str() == Some(eco.as_str())
                && p["name"].as_str().is_some_and(|n| eco.normalize(n) == want);
            if same {
                records.extend(
                    pkg["vulnerabilities"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
    }
    let ids: Vec<(String, Vec<String>, String)> = records
        .iter()
        .filter_map(|r| {
            let id = r["id"].as_str()?.to_string();
            let aliases = r["aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect();
            let summary = r["summary"].as_str().unwrap_or_default().to_string();
            Some((id, aliases, summary))
        })
        .collect();
    // Read the ranges like the local database does, for the first fixed version; keep every
    // advisory the scanner reported even when its ranges cannot be read here.
    let db = OsvDb::from_json_records(PROGRAM, records);
    let mut found = db.check(eco, name, version).unwrap_or_default();
    for (id, aliases, summary) in ids {
        let known = found
            .iter()
            .any(|f| f.id == id || f.aliases.contains(&id) || aliases.contains(&f.id));
        if !known {
            found.push(Finding {
                id,
                aliases,
                summary,
                fixed: None,
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A stand-in `osv-scanner` that checks its arguments and prints `report`.
    fn fake_scanner(dir: &Path, report: &str, exit: i32) -> PathBuf {
        let report_file = dir.join("report.json");
        std::fs::write(&report_file, report).expect("write report");
        let script = format!(
            "#!/bin/sh\n[ \"$1 $2 $3\" = \"--format json --lockfile\" ] || exit 99\n\
             cp \"$4\" {dir}/last-lockfile\ncat {report}\nexit {exit}\n",
            dir = dir.display(),
            report = report_file.display()
        );
        let path = dir.join(PROGRAM);
        std::fs::write(&path, script).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn report_with(record_file: &str, name: &str, version: &str) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv");
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(record_file)).expect("fixture"))
                .expect("json");
        serde_json::json!({"results": [{"source": {"path": "/tmp/x", "type": "lockfile"},
            "packages": [{"package": {"name": name, "version": version, "ecosystem": "PyPI"},
                "vulnerabilities": [record], "groups": []}]}]})
        .to_string()
    }

    #[test]
    fn the_scanner_report_gives_ids_and_first_fixed_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let report = report_with("PyPI/GHSA-h5c8-rqwp-cp95.json", "jinja2", "3.1.2");
        let scanner = OsvScanner::new(fake_scanner(dir.path(), &report, 1), None);
        let f = scanner
            .check(Ecosystem::PyPI, "Jinja2", "3.1.2")
            .expect("scan");
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].id.as_str(), f[0].fixed.as_deref()),
            ("GHSA-h5c8-rqwp-cp95", Some("3.1.3"))
        );
        let lock = std::fs::read_to_string(dir.path().join("last-lockfile")).expect("lockfile");
        assert_eq!(lock, "Jinja2==3.1.2\n");
        // cached: a second lookup does not run it again
        std::fs::remove_file(dir.path().join(PROGRAM)).expect("rm");
        assert_eq!(
            scanner
                .check(Ecosystem::PyPI, "jinja2", "3.1.2")
                .expect("cached"),
            f
        );
    }

    #[test]
    fn a_failing_scanner_falls_back_to_the_database_or_reports_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = fake_scanner(dir.path(), "not json", 127);
        let alone = OsvScanner::new(program.clone(), None);
        let e = alone
            .check(Ecosystem::Npm, "lodash", "4.17.20")
            .expect_err("no fallback");
        assert!(e.to_string().contains("failed"), "{e}");
        let db = crate::guard::osv::OsvDb::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/osv"),
        )
        .expect("fixture");
        let with_db = OsvScanner::new(program, Some(db));
        let f = with_db
            .check(Ecosystem::Npm, "lodash", "4.17.20")
            .expect("fallback");
        assert_eq!(f[0].id, "GHSA-35jh-r3h4-6jhm");
        assert!(with_db.describe().contains("falling back"));
    }

    #[test]
    fn a_scanner_that_hangs_is_killed_after_the_timeout() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(PROGRAM);
        std::fs::write(&path, "#!/bin/sh\nexec sleep 30\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let scanner = OsvScanner::new(path, None).with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let e = scanner
            .check(Ecosystem::PyPI, "jinja2", "3.1.2")
            .expect_err("timeout");
        assert!(e.to_string().contains("took longer than 300ms"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(SCANNER_TIMEOUT, Duration::from_secs(30));
    }

    #[test]
    fn lockfiles_name_exactly_one_package() {
        for eco in Ecosystem::ALL {
            let (file, text) = lockfile(eco, "pkg", "1.2.3").expect("lockfile");
            assert!(
                text.contains("pkg") && text.contains("1.2.3"),
                "{file}: {text}"
            );
        }
        assert!(lockfile(Ecosystem::PyPI, "x\ny", "1").is_err());
        assert!(lockfile(Ecosystem::Npm, "x", "1\"}").is_err());
    }
}
