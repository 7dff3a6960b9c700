//! State carried across the commands of one line that the guard cannot see through by
//! judging each command alone: a file written and then run (`curl -o i.sh ...; sh i.sh`), and
//! a symbolic or hard link made and then used as a path (`ln -s / r; rm -rf r/etc`), which
//! would reach wherever the link points.

use std::path::PathBuf;

use super::decision::{Decision, Verdict};
use super::paths::PathContext;
use super::{argv, shell, wrappers};

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
