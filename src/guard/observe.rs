//! Observation-only shell commands: a command line every part of which only looks at the
//! system (`df -h`, `curl -s localhost/health`, `systemctl status x`, `tail -n 50 app.log`).
//! Autonomous runs that may not change anything on their own (`remediate: false`, the
//! `HEARTBEAT.md` check) run these without asking a human; everything else waits for approval.
//!
//! The classification fails closed: every simple command the parser finds (through pipelines,
//! lists, substitutions and wrappers) must be a program the policy's `observe_commands` lists,
//! used the way its entry allows (subcommand, flags, positionals, URL schemes), with all of its
//! arguments known before it runs when its entry restricts them, writing no file but
//! `/dev/null`, with nothing the parser could not account for, and the guard's own verdict on
//! the whole line must be `allow`. Anything else, unknown programs included, is not observation.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::argv::{self, FlagAliases};
use super::shell::{self, Command};
use super::{Decision, Guard, PathContext};

/// Per program (by basename), how it may be used to count as observation.
pub type ObservePolicy = BTreeMap<String, ObserveSpec>;

/// Files a command may write to and still only observe.
const HARMLESS_WRITES: &[&str] = &["/dev/null", "/dev/stdout", "/dev/stderr"];

/// How one program may be used and still count as observation. An empty entry (`{}`) admits
/// every use, with any arguments; any restriction also requires every argument to be known
/// before the command runs (no variables, globs or substitutions), since a computed word could
/// turn into a forbidden flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObserveSpec {
    /// The first word after the program (after any `global_flags` / `global_options`) must be
    /// one of these (`systemctl status`, `kubectl get`). Empty: no subcommand is required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subcommands: Vec<String>,
    /// Flags without a value allowed before the subcommand (`git --no-pager log`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_flags: Vec<String>,
    /// Options taking the next word (or `=value`) allowed before the subcommand
    /// (`kubectl -n prod get pods`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global_options: Vec<String>,
    /// Flags that make the program write or change something (`curl -o`, `find -delete`).
    /// Long flags also match their abbreviations (`--outp` for `--output`), short ones inside
    /// bundles (`-so` has `-o`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_flags: Vec<String>,
    /// Most non-flag words after the subcommand (`uniq IN` reads, `uniq IN OUT` writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_positionals: Option<usize>,
    /// When set, every word containing `://` must use one of these schemes (`http`, `https`):
    /// `gopher://` or `dict://` can send arbitrary bytes to a local service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_schemes: Vec<String>,
    /// Text no argument may contain (curl's `-w '%output{file}'` writes a file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_substrings: Vec<String>,
}

impl ObserveSpec {
    /// True when the entry restricts the arguments in some way.
    fn restricts(&self) -> bool {
        !self.subcommands.is_empty()
            || !self.forbidden_flags.is_empty()
            || self.max_positionals.is_some()
            || !self.url_schemes.is_empty()
            || !self.forbidden_substrings.is_empty()
    }
}

impl Guard {
    /// Whether `command` only observes (see the module documentation); fails closed.
    pub fn is_observation(&self, command: &str, paths: &PathContext) -> bool {
        self.not_observation(command, paths).is_none()
    }

    /// Why `command` is not observation only, or `None` when it is.
    pub fn not_observation(&self, command: &str, paths: &PathContext) -> Option<String> {
        let analysis = shell::analyze(command);
        if let Some(p) = analysis.problems.first() {
            return Some(format!(
                "the guard cannot account for all of it: {}",
                p.message
            ));
        }
        if analysis.commands.is_empty() {
            return Some("it runs no command".into());
        }
        let list = &self.file.observe_commands;
        for cmd in &analysis.commands {
            if let Some(why) = command_not_observation(cmd, list, &self.file.flag_aliases) {
                return Some(format!("`{}`: {why}", cmd.display()));
            }
        }
        let verdict = self.judge_command(command, paths);
        if verdict.decision != Decision::Allow {
            return Some(format!("the policy says {}", verdict.summary()));
        }
        None
    }
}

/// Why one simple command is not observation under `list`, or `None`.
fn command_not_observation(
    cmd: &Command,
    list: &ObservePolicy,
    aliases: &FlagAliases,
) -> Option<String> {
    let first = cmd.argv.first()?;
    if first.dynamic {
        return Some("the program is computed at run time".into());
    }
    let program = cmd.program();
    let Some(spec) = list.get(program) else {
        return Some(format!(
            "`{program}` is not a known observation program (policy `observe_commands`)"
        ));
    };
    if let Some(w) = cmd
        .writes
        .iter()
        .find(|w| w.dynamic || !HARMLESS_WRITES.contains(&w.text.as_str()))
    {
        return Some(format!("it writes to `{}`", w.text));
    }
    let shape = argv::shape(cmd, aliases);
    if let Some(w) = argv::write_targets(cmd, &shape)
        .iter()
        .find(|w| w.dynamic || !HARMLESS_WRITES.contains(&w.text.as_str()))
    {
        return Some(format!("it writes to `{}`", w.text));
    }
    if !spec.restricts() {
        return None;
    }
    if cmd.args_from_stdin {
        return Some("its arguments come from stdin".into());
    }
    let args = &cmd.argv[1..];
    if let Some(w) = args.iter().find(|w| w.dynamic) {
        return Some(format!("`{}` is computed at run time", w.text));
    }
    let rest = match subcommand(spec, args) {
        Ok(rest) => rest,
        Err(why) => return Some(why),
    };
    let plain = argv::shape(
        &Command {
            argv: std::iter::once(first.clone())
                .chain(rest.iter().cloned())
                .collect(),
            ..Command::default()
        },
        &FlagAliases::new(),
    );
    let flags = shape.flags.iter().chain(plain.flags.iter());
    for flag in flags {
        if let Some(f) = spec.forbidden_flags.iter().find(|f| flag_matches(flag, f)) {
            return Some(format!("`{f}` changes state"));
        }
    }
    for w in rest {
        if let Some(f) = spec
            .forbidden_flags
            .iter()
            .find(|f| f.starts_with('-') && !f.starts_with("--") && f.len() > 2 && w.text == **f)
        {
            return Some(format!("`{f}` changes state"));
        }
    }
    if let Some(max) = spec.max_positionals
        && plain.positionals.len() > max
    {
        return Some(format!(
            "more than {max} non-flag argument(s) (it may name a file to write)"
        ));
    }
    for w in args {
        let lower = w.text.to_ascii_lowercase();
        if !spec.url_schemes.is_empty()
            && let Some((scheme, _)) = lower.split_once("://")
            && !spec
                .url_schemes
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme))
        {
            return Some(format!(
                "`{}` uses a scheme other than {:?}",
                w.text, spec.url_schemes
            ));
        }
        if let Some(s) = spec
            .forbidden_substrings
            .iter()
            .find(|s| w.text.contains(s.as_str()))
        {
            return Some(format!("`{}` contains `{s}`", w.text));
        }
    }
    None
}

/// The words after the subcommand (all words when the entry requires none).
fn subcommand<'a>(
    spec: &ObserveSpec,
    args: &'a [super::words::Word],
) -> Result<&'a [super::words::Word], String> {
    if spec.subcommands.is_empty() {
        return Ok(args);
    }
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let t = w.text.as_str();
        if spec.global_flags.iter().any(|f| f == t) {
            i += 1;
        } else if spec.global_options.iter().any(|o| o == t) {
            i += 2;
        } else if spec.global_options.iter().any(|o| {
            t.strip_prefix(o.as_str())
                .is_some_and(|v| v.starts_with('='))
        }) {
            i += 1;
        } else if spec.subcommands.iter().any(|s| s == t) {
            return Ok(&args[i + 1..]);
        } else {
            return Err(format!(
                "`{t}` is not one of its read-only subcommands ({})",
                spec.subcommands.join(", ")
            ));
        }
    }
    Err(format!(
        "no read-only subcommand ({})",
        spec.subcommands.join(", ")
    ))
}

/// Whether a flag as written (`--outp`, `-o`) is the forbidden `flag`: the same, or a long
/// flag that abbreviates it (getopt_long accepts any unambiguous prefix).
fn flag_matches(written: &str, forbidden: &str) -> bool {
    written == forbidden
        || (written.len() > 2
            && written.starts_with("--")
            && forbidden.starts_with("--")
            && forbidden.starts_with(written))
}

#[cfg(test)]
mod tests;
