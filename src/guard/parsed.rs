//! A policy read and parsed, its rules not yet compiled. The sandbox's writable and hidden
//! paths need only this much, and so does the check that pi-mcp's own state lies out of
//! `bash`'s reach; the app makes that check, then compiles the rules on another thread while
//! the state store opens (issue 14: the compile is about 1 ms of a 6-7 ms start).

use std::path::{Path, PathBuf};

use super::hidden::HiddenPatterns;
use super::policy::{self, PolicyError, PolicyFile};
use super::{DEFAULT_SOURCE, Guard, rego};

/// The policy file parsed, with the hidden paths it names.
#[derive(Debug)]
pub struct ParsedPolicy {
    pub(super) file: PolicyFile,
    pub(super) source: String,
    /// The file it came from; `None`: the built-in default.
    path: Option<PathBuf>,
    pub(super) hidden: HiddenPatterns,
    /// Glob patterns protected besides the policy's `protected_paths` (see [`Self::protecting`]).
    pub(super) also_protected: Vec<String>,
}

impl ParsedPolicy {
    /// Reads and parses the policy at `path`, or the built-in default when `None`.
    pub fn read(path: Option<&Path>) -> Result<ParsedPolicy, PolicyError> {
        match path {
            None => ParsedPolicy::of(
                PolicyFile::parse(policy::DEFAULT_POLICY, DEFAULT_SOURCE)?,
                DEFAULT_SOURCE,
                None,
            ),
            Some(p) => ParsedPolicy::of(PolicyFile::load(p)?, &p.display().to_string(), Some(p)),
        }
    }

    /// `file`, named `source` in messages, read from `path` (`None`: compiled in or built).
    pub(super) fn of(
        file: PolicyFile,
        source: &str,
        path: Option<&Path>,
    ) -> Result<ParsedPolicy, PolicyError> {
        let hidden =
            HiddenPatterns::new(&file.hidden_paths).map_err(|(i, message)| PolicyError::Rule {
                file: source.to_string(),
                rule: "-".into(),
                field: format!("hidden_paths[{i}]"),
                message,
            })?;
        Ok(ParsedPolicy {
            file,
            source: source.to_string(),
            path: path.map(Path::to_path_buf),
            hidden,
            also_protected: Vec::new(),
        })
    }

    /// The same policy with `paths` (absolute) protected as well: each path, everything
    /// beneath it, and its SQLite companions (`PATH-wal`, `PATH-shm`, `PATH-journal`). The app
    /// adds pi-mcp's own state this way, so `read`/`edit` refuse it and a `bash` argument naming
    /// it needs approval, whatever the policy file lists.
    pub fn protecting(mut self, paths: &[PathBuf]) -> ParsedPolicy {
        for p in paths.iter().filter(|p| p.is_absolute()) {
            let exact = globset::escape(&p.to_string_lossy());
            self.also_protected.push(format!("{exact}-*"));
            self.also_protected.push(exact);
        }
        self
    }

    pub fn file(&self) -> &PolicyFile {
        &self.file
    }

    /// What no `bash` child may read.
    pub fn hidden(&self) -> &HiddenPatterns {
        &self.hidden
    }

    /// Compiles the rules. A file's Rego policies are loaded and its rule examples checked; the
    /// built-in default's examples are checked by the test suite (it is compiled in, so it
    /// cannot change after that), which keeps start-up fast. `check_all` (`policy check`):
    /// every example and every pattern, the built-in default's included.
    pub fn compile(mut self, check_all: bool) -> Result<Guard, PolicyError> {
        let Some(path) = self.path.take() else {
            return if check_all {
                let guard = Guard::compile(self, true)?;
                guard.check_examples()?;
                guard.force_all()?;
                Ok(guard)
            } else {
                // Compiled in and checked by the test suite: its regexes' syntax is not
                // parsed again at every start.
                Guard::compile(self, false)
            };
        };
        let mut guard = Guard::compile(self, true)?;
        if !guard.file.rego.is_empty() {
            let base = path.parent().unwrap_or(Path::new("."));
            let rego = rego::RegoPolicies::load(&guard.file.rego, base, &guard.source)?;
            guard.rego = Some(std::sync::Arc::new(rego));
        }
        guard.check_examples()?;
        if check_all {
            // `policy check`: every pattern compiled, as a session may need any of them.
            guard.force_all()?;
        }
        Ok(guard)
    }
}
