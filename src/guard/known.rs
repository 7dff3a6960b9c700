//! Which programs the policy knows. A program the guard has never heard of may run a shell,
//! read any file or open a socket (GTFOBins lists hundreds), and the guard only sees its
//! redirections and paths; such a program is allowed only when the sandbox bounds writes,
//! network and hidden paths for it (see [`super::enforcement`]). "Known" is decided once, when
//! the policy compiles: the programs its block, risk, code-loader and program-option rules
//! name, the `observe_commands` and `known_programs` lists, the shell's own builtins, and the
//! wrappers, shells, interpreters and database clients the guard looks through or models.

use std::collections::HashMap;

use globset::Glob;

use super::lazy::LazyGlob;

use super::policy::PolicyFile;
use super::words::Word;
use super::wrappers;

/// Shell builtins and keywords: bash runs them itself, and the guard judges them as bash would.
pub const BUILTINS: &[&str] = &[
    ":",
    ".",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
];

/// Directories whose programs are the system's own: `/usr/bin/git` is `git`. A program given
/// by any other path (`./x`, `/opt/x/bin/y`, `~/bin/z`) is unknown, whatever its name.
const SYSTEM_BIN_DIRS: &[&str] = &["/bin", "/usr/bin", "/sbin", "/usr/sbin"];

/// Program names (or globs such as `mkfs*`, `python3.*`) mapped to the entries they belong to:
/// a hash lookup for plain names, a short scan for the few globs.
#[derive(Debug, Clone, Default)]
pub struct ProgramIndex {
    literal: HashMap<String, Vec<usize>>,
    globs: Vec<(LazyGlob, usize)>,
}

impl ProgramIndex {
    /// Adds `pattern` (a name or a glob) for entry `entry`.
    pub fn add(&mut self, pattern: &str, entry: usize) -> Result<(), String> {
        if pattern.contains(['*', '?', '[', '{']) {
            let glob = Glob::new(pattern).map_err(|e| e.to_string())?;
            self.globs.push((LazyGlob::new(glob), entry));
        } else {
            self.literal
                .entry(pattern.to_string())
                .or_default()
                .push(entry);
        }
        Ok(())
    }

    /// The entries `name` (a basename) belongs to.
    pub fn lookup<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.literal.get(name).into_iter().flatten().copied().chain(
            self.globs
                .iter()
                .filter(move |(g, _)| g.is_match(name))
                .map(|(_, e)| *e),
        )
    }

    /// Adds `name` as a plain name, even with glob characters (`[`).
    pub fn add_literal(&mut self, name: &str, entry: usize) {
        self.literal
            .entry(name.to_string())
            .or_default()
            .push(entry);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.lookup(name).next().is_some()
    }
}

/// The programs the policy knows, compiled once with the guard.
#[derive(Debug, Clone, Default)]
pub struct KnownPrograms {
    names: ProgramIndex,
}

impl KnownPrograms {
    /// Every program the policy names (see the module documentation). The error is the
    /// `known_programs` index and message of a glob that does not compile.
    pub fn compile(file: &PolicyFile) -> Result<KnownPrograms, (String, String)> {
        let mut names = ProgramIndex::default();
        for (i, p) in file.known_programs.iter().enumerate() {
            names
                .add(p, 0)
                .map_err(|m| (format!("known_programs[{i}]"), m))?;
        }
        let rule_programs = file
            .block
            .iter()
            .chain(&file.risk)
            .chain(&file.code_loaders)
            .chain(&file.file_writers)
            .flat_map(|r| r.matcher.program.iter())
            .chain(file.program_options.iter().flat_map(|o| o.program.iter()))
            .chain(file.observe_commands.keys());
        // Rule programs were compiled (and their globs checked) with their rules.
        for p in rule_programs {
            let _ = names.add(p, 0);
        }
        for p in BUILTINS
            .iter()
            .chain(wrappers::SHELLS)
            .chain(wrappers::STDIN_INTERPRETERS)
            .chain(wrappers::STDIN_SQL_CLIENTS)
            .chain(wrappers::LOOKED_THROUGH)
        {
            names.add_literal(p, 0);
        }
        Ok(KnownPrograms { names })
    }

    /// True when `program` (argv[0] as written) is a program the policy knows, or a function
    /// the same command line defines.
    pub fn knows(&self, program: &Word, functions: &[String]) -> bool {
        let text = program.text.as_str();
        let name = wrappers::basename(text);
        if let Some((dir, _)) = text.rsplit_once('/') {
            let dir = if dir.is_empty() { "/" } else { dir };
            return SYSTEM_BIN_DIRS.contains(&dir) && self.names.contains(name);
        }
        self.names.contains(name) || functions.iter().any(|f| f == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(policy: &str) -> KnownPrograms {
        let file = PolicyFile::parse(policy, "t.json").expect("policy parses");
        KnownPrograms::compile(&file).expect("compiles")
    }

    #[test]
    fn known_programs_come_from_the_policy_the_shell_and_the_wrappers() {
        let k = known(
            r#"{"known_programs": ["jq", "python3.*"],
                "risk": [{"id": "r", "score": 10, "match": {"program": ["mkfs*"]}}]}"#,
        );
        for name in [
            "jq",
            "python3.11",
            "mkfs.ext4",
            "cd",
            "[",
            "sudo",
            "bash",
            "psql",
            "find",
        ] {
            assert!(k.knows(&Word::literal(name), &[]), "{name}");
        }
        assert!(k.knows(&Word::literal("/usr/bin/jq"), &[]));
        for name in ["frobnicate", "./jq", "/opt/x/bin/jq", "bin/jq"] {
            assert!(!k.knows(&Word::literal(name), &[]), "{name}");
        }
        assert!(k.knows(&Word::literal("deploy"), &["deploy".to_string()]));
    }
}
