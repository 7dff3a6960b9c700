//! State carried across the commands of one line that the guard cannot see through by
//! judging each command alone: a file written and then run (`curl -o i.sh ...; sh i.sh`), and
//! a symbolic or hard link made and then used as a path (`ln -s / r; rm -rf r/etc`), which
//! would reach wherever the link points, and a file written and then loaded as code by a
//! build tool, test runner, package manager or version-control hook (`echo ... > Makefile;
//! make`), which the guard cannot read.

use std::path::PathBuf;

use super::decision::{Decision, Reason, Verdict};
use super::paths::PathContext;
use super::rule::{Hit, Rule};
use super::{argv, shell, wrappers};

/// Written "files" that are not files: writing them stages nothing.
const SINKS: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
];
const SINK_PREFIXES: &[&str] = &["/dev/fd/", "/proc/self/fd/"];

/// A program of the policy's `code_loaders` (`make`, `npm test`, `pytest`, `git commit`,
/// `bash FILE`, ...) run after an earlier part of the same line wrote a file: what it loads
/// (a build file, a package manifest's scripts, a test configuration, a hook) may be what was
/// just written, and the guard judged the writing, not the code. A write counts when it goes
/// anywhere but a sink such as `/dev/null`, when the guard cannot resolve its target, or when
/// a program of `file_writers` writes files it does not name (`git clone`, `tar -x`).
pub fn staged_code(
    commands: &[shell::Command],
    shapes: &[argv::Shape],
    loaders: &[Rule],
    writers: &[Rule],
    paths: &PathContext,
    source: &str,
) -> Verdict {
    let mut v = Verdict::allow();
    if loaders.is_empty() {
        return v;
    }
    let mut staged: Option<String> = None;
    for (cmd, shape) in commands.iter().zip(shapes) {
        if let Some(write) = &staged
            && let Some(rule) = loaders
                .iter()
                .find(|r| r.check(cmd, shape, paths) != Hit::No)
        {
            v = v.merge(Verdict {
                decision: Decision::Ask,
                risk: 0,
                reasons: vec![Reason {
                    rule: rule.id.clone(),
                    decision: Decision::Ask,
                    risk: 0,
                    message: format!(
                        "`{}` loads code from files ({}), and {write} earlier on this line: it could load what was just written, which the guard has not seen",
                        cmd.display(),
                        rule.description
                    ),
                    source: Some(source.to_string()),
                }],
                commands: Vec::new(),
            });
        }
        if staged.is_none() {
            staged = written_file(cmd, shape, writers, paths);
        }
    }
    v
}

/// How `cmd` writes a file, in words, if it does.
fn written_file(
    cmd: &shell::Command,
    shape: &argv::Shape,
    writers: &[Rule],
    paths: &PathContext,
) -> Option<String> {
    let shown = cmd.display();
    for w in argv::write_targets(cmd, shape) {
        if w.dynamic {
            return Some(format!(
                "`{shown}` writes `{}`, a path known only at run time",
                w.text
            ));
        }
        let abs = paths.absolute(&w.text);
        let abs = abs.to_string_lossy();
        let sink =
            SINKS.contains(&abs.as_ref()) || SINK_PREFIXES.iter().any(|p| abs.starts_with(p));
        if !sink {
            return Some(format!("`{shown}` writes `{}`", w.text));
        }
    }
    writers
        .iter()
        .find(|r| r.check(cmd, shape, paths) != Hit::No)
        .map(|r| format!("`{shown}` writes files ({})", r.description))
}

/// A file written by one command and run as a script or program by another in the same call
/// (`echo ... > x.sh; bash x.sh`): the guard judged the writing, not what the file will hold.
pub fn write_then_run(
    commands: &[shell::Command],
    shapes: &[argv::Shape],
    paths: &PathContext,
) -> Verdict {
    let written: Vec<PathBuf> = commands
        .iter()
        .zip(shapes)
        .flat_map(|(c, s)| argv::write_targets(c, s))
        .filter(|w| !w.dynamic)
        .map(|w| paths.absolute(&w.text))
        .collect();
    if written.is_empty() {
        return Verdict::allow();
    }
    let mut v = Verdict::allow();
    for (cmd, shape) in commands.iter().zip(shapes) {
        let program = cmd.argv.first().filter(|w| w.text.contains('/'));
        let script = if wrappers::runs_script_file(cmd.program()) {
            shape.positionals.first()
        } else {
            None
        };
        for run in program.into_iter().chain(script) {
            if !run.dynamic && written.contains(&paths.absolute(&run.text)) {
                v = v.merge(Verdict::single(
                    Decision::Ask,
                    "write-then-run",
                    format!(
                        "`{}` runs `{}`, which this same command line writes first",
                        cmd.display(),
                        run.text
                    ),
                ));
            }
        }
    }
    v
}

/// Paths used after a link was made on the same line, through that link (`ln -s /etc e &&
/// echo x > e/passwd`): the lexical path looks like the workspace, the real one may be anywhere.
pub fn through_new_links(
    commands: &[shell::Command],
    shapes: &[argv::Shape],
    paths: &PathContext,
) -> Verdict {
    let mut links: Vec<PathBuf> = Vec::new();
    let mut v = Verdict::allow();
    for (cmd, shape) in commands.iter().zip(shapes) {
        let Some(here) = paths.after_cd(&cmd.cd) else {
            continue;
        };
        if !links.is_empty() {
            let used = cmd
                .argv
                .iter()
                .skip(1)
                .chain(&cmd.writes)
                .chain(&cmd.reads)
                .filter(|w| !w.dynamic && !w.text.starts_with('-'))
                .map(|w| (w.text.as_str(), here.absolute(&w.text)))
                .chain(std::iter::once((".", here.cwd.clone())));
            for (text, abs) in used {
                if let Some(link) = links.iter().find(|l| abs.starts_with(l) && abs != **l) {
                    v = v.merge(Verdict::single(
                        Decision::Ask,
                        "through-new-link",
                        format!(
                            "`{}` reaches `{text}` through `{}`, a link this same command line makes, so the real path could be anywhere",
                            cmd.display(),
                            link.display()
                        ),
                    ));
                }
            }
        }
        if cmd.program() == "ln" {
            links.extend(
                link_names(cmd, shape)
                    .into_iter()
                    .map(|t| here.absolute(&t)),
            );
        }
    }
    v
}

/// The names `ln` creates: its target operand, or the source's base name in the current
/// directory when only one operand is given.
fn link_names(cmd: &shell::Command, shape: &argv::Shape) -> Vec<String> {
    let pos: Vec<&str> = shape
        .positionals
        .iter()
        .filter(|w| !w.dynamic)
        .map(|w| w.text.as_str())
        .collect();
    match pos.as_slice() {
        [] => Vec::new(),
        [only] => vec![wrappers::basename(only.trim_end_matches('/')).to_string()],
        _ => argv::write_targets(cmd, shape)
            .into_iter()
            .filter(|w| !w.dynamic)
            .map(|w| w.text)
            .collect(),
    }
}
