//! Recognises package installs in a simple command (`pip install`, `python -m pip install`,
//! `uv pip install`, `npm i`, `yarn add`, `pnpm add`, `cargo add/install`, `go get/install`,
//! `gem install`, ...) and lists each package with the exact version it pins, if any, read
//! from the arguments and from `-r requirements.txt` files; [`judge_installs`] then checks them
//! against OSV advisories. Paths and URLs are marked, not looked up: they are not registry
//! packages. What the arguments cannot tell (a word computed at run time, an unreadable
//! requirements file) is marked unresolved.

mod cargo;
mod gem;
mod go;
mod judge;
mod node;
mod python;

use std::path::Path;

pub use judge::{InstallReason, judge_installs};

use super::osv::Ecosystem;
use super::shell::Command;
use super::words::Word;

/// Largest requirements file read.
pub const MAX_REQUIREMENTS_BYTES: u64 = 1024 * 1024;
/// Deepest chain of `-r` includes followed.
pub const MAX_REQUIREMENTS_DEPTH: usize = 5;

/// One package a command would install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    pub ecosystem: Ecosystem,
    /// The package name as written (for a path or URL, the spec itself).
    pub name: String,
    /// The exact version pinned, when there is one.
    pub version: Option<String>,
    /// The spec as written (`jinja2==3.1.2`, `lodash@^4`).
    pub spec: String,
    /// Where it was found: `command line` or `requirements.txt:3`.
    pub source: String,
    pub origin: Origin,
}

/// What kind of thing is being installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A package from the ecosystem's registry, checkable against OSV.
    Registry,
    /// A local path or archive (`.`, `./pkg`, `dist/x.whl`, `file:...`).
    Local,
    /// A URL or version-control reference, which OSV cannot check.
    Remote,
    /// Something the guard cannot read without running anything.
    Unresolved(String),
}

/// Every package `cmd` would install; empty when it installs none. `cwd` is where the command
/// runs (relative `-r` files are read from there).
pub fn installs(cmd: &Command, cwd: &Path) -> Vec<Install> {
    let args: Vec<&Word> = cmd.argv.iter().skip(1).collect();
    let program = cmd.program();
    let mut out = Vec::new();
    match program {
        p if python::is_pip(p) => python::pip_command(&args, cwd, &mut out),
        p if python::is_python(p) => python::python_m_pip(&args, cwd, &mut out),
        "uv" => python::uv(&args, cwd, &mut out),
        "pipx" => python::pipx(&args, cwd, &mut out),
        "npm" | "yarn" | "pnpm" | "bun" => node::node(program, &args, &mut out),
        "cargo" => cargo::cargo(&args, &mut out),
        "go" => go::go(&args, &mut out),
        "gem" => gem::gem(&args, &mut out),
        _ => {}
    }
    out
}

const COMMAND_LINE: &str = "command line";

/// How a tool spells flags: GNU style (`-r FILE`, `-rFILE`, `-Ur FILE`, `--flag=v`) or Go's
/// (`-tags x`, `-tags=x`, no clusters).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Gnu,
    Go,
}

/// Flags that take a value, as lists of space-separated names.
type Valued<'a> = &'a [&'a str];

fn takes_value(valued: Valued, flag: &str) -> bool {
    valued
        .iter()
        .any(|list| list.split_whitespace().any(|f| f == flag))
}

/// A parsed argument: a flag with the value it took, or a positional word.
enum Arg<'a> {
    Flag(String, Option<Word>),
    Pos(&'a Word),
}

/// Splits `args` into flags and positionals.
fn parse_args<'a>(args: &[&'a Word], style: Style, valued: Valued) -> Vec<Arg<'a>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut only_positional = false;
    while let Some(w) = args.get(i) {
        i += 1;
        let t = w.text.as_str();
        if only_positional || !t.starts_with('-') || t == "-" {
            out.push(Arg::Pos(w));
            continue;
        }
        if t == "--" {
            only_positional = true;
            continue;
        }
        let part = |text: &str| Word {
            text: text.to_string(),
            dynamic: w.dynamic,
        };
        let long = style == Style::Go || t.starts_with("--");
        if let Some((name, value)) = t.split_once('=').filter(|_| long) {
            out.push(Arg::Flag(name.to_string(), Some(part(value))));
        } else if !long && t.len() > 2 {
            // a cluster of short flags: the first one that takes a value takes the rest
            for (k, c) in t.char_indices().skip(1) {
                let name = format!("-{c}");
                if takes_value(valued, &name) {
                    let rest = &t[k + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        i += 1;
                        args.get(i - 1).map(|v| (*v).clone())
                    } else {
                        Some(part(rest))
                    };
                    out.push(Arg::Flag(name, value));
                    break;
                }
                out.push(Arg::Flag(name, None));
            }
        } else if takes_value(valued, t) {
            out.push(Arg::Flag(t.to_string(), args.get(i).map(|v| (*v).clone())));
            i += 1;
        } else {
            out.push(Arg::Flag(t.to_string(), None));
        }
    }
    out
}

/// The positional words of `args`.
fn positionals<'a>(args: &[&'a Word], style: Style, valued: Valued) -> Vec<&'a Word> {
    parse_args(args, style, valued)
        .into_iter()
        .filter_map(|a| match a {
            Arg::Pos(w) => Some(w),
            Arg::Flag(..) => None,
        })
        .collect()
}

/// The value of the last of `names` given, if any.
fn flag_value(args: &[&Word], style: Style, valued: Valued, names: &[&str]) -> Option<Word> {
    parse_args(args, style, valued)
        .into_iter()
        .filter_map(|a| match a {
            Arg::Flag(f, v) if names.contains(&f.as_str()) => v,
            _ => None,
        })
        .next_back()
}

/// The first positional (the subcommand) and the words after it, skipping leading flags.
fn subcommand<'a, 'b>(
    args: &'b [&'a Word],
    style: Style,
    valued: Valued,
) -> Option<(&'a Word, &'b [&'a Word])> {
    let mut i = 0;
    while let Some(w) = args.get(i) {
        let t = w.text.as_str();
        if !t.starts_with('-') {
            return Some((*w, &args[i + 1..]));
        }
        i += 1;
        let attached = t.contains('=') && (style == Style::Go || t.starts_with("--"));
        if takes_value(valued, t) && !attached {
            i += 1;
        }
    }
    None
}

/// A package's version requirement: the one written in its spec (`name@1.2`), else the version
/// flag's value. `Err` holds the install to report when that value is computed at run time.
fn requirement(
    eco: Ecosystem,
    spec: &str,
    in_spec: Option<String>,
    flag: &Option<Word>,
) -> Result<Option<String>, Box<Install>> {
    match (in_spec, flag) {
        (Some(r), _) => Ok(Some(r)),
        (None, Some(v)) if v.dynamic => {
            Err(Box::new(unresolved(eco, spec, COMMAND_LINE, COMPUTED)))
        }
        (None, Some(v)) => Ok(Some(v.text.clone())),
        (None, None) => Ok(None),
    }
}

fn unresolved(eco: Ecosystem, spec: &str, source: &str, why: &str) -> Install {
    Install {
        ecosystem: eco,
        name: spec.to_string(),
        version: None,
        spec: spec.to_string(),
        source: source.to_string(),
        origin: Origin::Unresolved(why.to_string()),
    }
}

const COMPUTED: &str = "part of it is computed at run time";

/// An install whose spec (or subcommand) is a word computed at run time.
fn dynamic(eco: Ecosystem, w: &Word) -> Install {
    unresolved(eco, &w.text, COMMAND_LINE, COMPUTED)
}

/// A registry package found on the command line.
fn registry(eco: Ecosystem, name: &str, version: Option<String>, spec: &str) -> Install {
    Install {
        ecosystem: eco,
        name: name.to_string(),
        version,
        spec: spec.to_string(),
        source: COMMAND_LINE.to_string(),
        origin: Origin::Registry,
    }
}

/// A path or URL found on the command line.
fn elsewhere(eco: Ecosystem, spec: &str, origin: Origin) -> Install {
    Install {
        ecosystem: eco,
        name: spec.to_string(),
        version: None,
        spec: spec.to_string(),
        source: COMMAND_LINE.to_string(),
        origin,
    }
}

/// `Local` for paths and local archives, `Remote` for URLs and VCS references.
fn path_or_url(spec: &str, archives: &[&str]) -> Option<Origin> {
    let lower = spec.to_ascii_lowercase();
    if lower.starts_with("file:") {
        return Some(Origin::Local);
    }
    let vcs = ["git+", "hg+", "svn+", "bzr+", "git@", "git:"];
    if lower.contains("://") || vcs.iter().any(|p| lower.starts_with(p)) {
        return Some(Origin::Remote);
    }
    if spec.starts_with(['.', '/', '~']) || archives.iter().any(|a| lower.ends_with(a)) {
        return Some(Origin::Local);
    }
    None
}

/// True when `v` is a plain SemVer version (`1.2.3`, `1.2.3-rc.1`), not a range or a tag.
fn exact_semver(v: &str) -> bool {
    semver::Version::parse(v).is_ok()
}

#[cfg(test)]
mod tests;
