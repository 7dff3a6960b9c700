//! A command's argv as rules see it: flags normalised (`-rf` = `-fr` = `-r -f` =
//! `--recursive --force` through the policy's aliases), positional words, and the files the
//! command writes (redirections, `tee`, `dd of=`, `cp`/`mv` targets, `sed -i`, `truncate`).

use std::collections::{BTreeMap, BTreeSet};

use super::shell::Command;
use super::words::Word;

/// Flag aliases per program: `{"rm": {"--recursive": "-r", "-R": "-r"}}`.
pub type FlagAliases = BTreeMap<String, BTreeMap<String, String>>;

/// The parts of a command that rules match on.
#[derive(Debug, Default)]
pub struct Shape {
    /// Normalised flags: `-r`, `-f`, `--force-with-lease`.
    pub flags: BTreeSet<String>,
    /// Words that are not flags, in order (option values included).
    pub positionals: Vec<Word>,
    /// True when some argument is dynamic, so flags or positionals may be missing from view.
    pub has_dynamic: bool,
}

/// Splits `cmd`'s arguments into flags and positionals.
pub fn shape(cmd: &Command, aliases: &FlagAliases) -> Shape {
    let program = cmd.program();
    let program_aliases = aliases.get(program);
    let mut out = Shape::default();
    let mut after_dashdash = false;
    let add = |flag: String, out: &mut Shape| {
        let canonical = program_aliases.and_then(|a| {
            a.get(&flag).or_else(|| {
                // getopt_long accepts any unambiguous prefix: `--rec` is `--recursive`.
                let mut prefixed = a.iter().filter(|(k, _)| {
                    flag.len() > 3 && flag.starts_with("--") && k.starts_with(&flag)
                });
                match (prefixed.next(), prefixed.next()) {
                    (Some((_, v)), None) => Some(v),
                    _ => None,
                }
            })
        });
        out.flags.insert(canonical.cloned().unwrap_or(flag));
    };
    // find's positional words are its start paths; the expression after them is options.
    let is_find = program == "find";
    let mut in_find_expression = false;
    for w in cmd.argv.iter().skip(1) {
        if is_find && !w.dynamic && (w.text.starts_with('-') || w.text == "(" || w.text == "!") {
            in_find_expression = true;
        }
        if in_find_expression {
            if w.dynamic {
                out.has_dynamic = true;
            } else if w.text.starts_with('-') {
                add(w.text.clone(), &mut out);
            }
            continue;
        }
        if w.dynamic {
            out.has_dynamic = true;
            out.positionals.push(w.clone());
            continue;
        }
        let t = w.text.as_str();
        if after_dashdash || t == "-" || !t.starts_with('-') {
            out.positionals.push(w.clone());
        } else if t == "--" {
            after_dashdash = true;
        } else if let Some(long) = t.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            add(format!("--{name}"), &mut out);
        } else if t[1..].parse::<f64>().is_ok() {
            out.positionals.push(w.clone());
        } else {
            // A single-dash word: an alias may name it whole (`-delete`, `-R`); otherwise it is
            // a bundle of one-letter flags.
            if program_aliases.is_some_and(|a| a.contains_key(t)) {
                add(t.to_string(), &mut out);
            }
            for c in t[1..].chars() {
                add(format!("-{c}"), &mut out);
            }
        }
    }
    out
}

/// Every file `cmd` would write to.
pub fn write_targets(cmd: &Command, shape: &Shape) -> Vec<Word> {
    let mut out = cmd.writes.clone();
    let pos = &shape.positionals;
    match cmd.program() {
        "tee" => out.extend(pos.iter().cloned()),
        "truncate" | "shred" => {
            out.extend(pos.iter().filter(|w| !looks_like_size(&w.text)).cloned())
        }
        "dd" => out.extend(cmd.argv.iter().filter_map(|w| {
            w.text.strip_prefix("of=").map(|t| Word {
                text: t.to_string(),
                dynamic: w.dynamic,
            })
        })),
        "cp" | "mv" | "install" | "ln" | "rsync" | "scp" => {
            // `-t DIR` names the target; then every positional is a source.
            let target_dir = option_values(cmd, &["-t", "--target-directory"]);
            let sources = if target_dir.is_empty() {
                pos.len().saturating_sub(1)
            } else {
                pos.len()
            };
            if target_dir.is_empty() {
                out.extend(pos.last().cloned());
            }
            out.extend(target_dir);
            // Moving a file removes it from where it was: the sources are written too.
            if cmd.program() == "mv" {
                out.extend(
                    pos.iter()
                        .take(sources)
                        .filter(|w| !out_has(&out, w))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        "sort" => out.extend(option_values(cmd, &["-o", "--output"])),
        "tar" | "gtar" | "bsdtar" if extracts(cmd, shape) => {
            out.extend(option_values(cmd, &["-C", "--directory"]))
        }
        // Creating, appending or updating writes the archive named by `-f`.
        "tar" | "gtar" | "bsdtar" if archives(cmd, shape) => {
            out.extend(option_values(cmd, &["-f", "--file"]));
            // Old style, `tar czf out.tgz src`: the file follows the bundle.
            if cmd
                .argv
                .get(1)
                .is_some_and(|w| !w.text.starts_with('-') && w.text.contains('f'))
            {
                out.extend(cmd.argv.get(2).cloned());
            }
        }
        "curl" | "wget" => out.extend(option_values(
            cmd,
            &["-o", "--output", "-O", "--output-document"],
        )),
        "sed" | "perl" if shape.flags.contains("-i") || shape.flags.contains("--in-place") => {
            out.extend(pos.iter().skip(1).cloned())
        }
        _ => {}
    }
    out
}

fn out_has(out: &[Word], w: &Word) -> bool {
    out.iter().any(|o| o.text == w.text)
}

/// True for a tar that extracts (`-x`, `--extract`, `--get`, or an old-style `xf` bundle).
fn extracts(cmd: &Command, shape: &Shape) -> bool {
    shape.flags.contains("-x")
        || shape.flags.contains("--extract")
        || shape.flags.contains("--get")
        || cmd
            .argv
            .get(1)
            .is_some_and(|w| !w.text.starts_with('-') && w.text.contains('x'))
}

/// True for a tar that writes an archive (`-c`, `-r`, `-u`, `-A` or an old-style bundle).
fn archives(cmd: &Command, shape: &Shape) -> bool {
    [
        "-c",
        "--create",
        "-r",
        "--append",
        "-u",
        "--update",
        "-A",
        "--catenate",
    ]
    .iter()
    .any(|f| shape.flags.contains(*f))
        || cmd
            .argv
            .get(1)
            .is_some_and(|w| !w.text.starts_with('-') && w.text.contains(['c', 'r', 'u']))
}

/// Values of the given options, as `-o value`, `--opt value` or `--opt=value`.
fn option_values(cmd: &Command, names: &[&str]) -> Vec<Word> {
    let mut out = Vec::new();
    let argv = &cmd.argv;
    // A bundle of short flags ending in a value-taking one (`-so FILE`) takes the next word.
    let bundle_ends_with = |t: &str| {
        t.len() > 2
            && t.starts_with('-')
            && !t.starts_with("--")
            && names
                .iter()
                .any(|n| n.len() == 2 && n.starts_with('-') && t.ends_with(&n[1..]))
    };
    for (i, w) in argv.iter().enumerate() {
        if names.contains(&w.text.as_str()) || bundle_ends_with(&w.text) {
            out.extend(argv.get(i + 1).cloned());
        } else if let Some((_, v)) = w
            .text
            .split_once('=')
            .filter(|(k, _)| names.contains(k) && k.starts_with("--"))
        {
            out.push(Word {
                text: v.to_string(),
                dynamic: w.dynamic,
            });
        }
    }
    out
}

/// A truncate/shred size such as `0`, `+1M`, `/4K`: digits after an optional prefix.
fn looks_like_size(t: &str) -> bool {
    let rest = t.strip_prefix(['+', '-', '<', '>', '/', '%']).unwrap_or(t);
    rest.chars().next().is_some_and(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Command {
        Command {
            argv: s.split_whitespace().map(Word::literal).collect(),
            ..Command::default()
        }
    }

    #[test]
    fn flag_spellings_normalise_to_the_same_set() {
        let mut aliases = FlagAliases::new();
        aliases.insert(
            "rm".into(),
            [("--recursive", "-r"), ("-R", "-r"), ("--force", "-f")]
                .into_iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        );
        let want: BTreeSet<String> = ["-r", "-f"].into_iter().map(String::from).collect();
        for s in [
            "rm -rf x",
            "rm -fr x",
            "rm -r -f x",
            "rm --recursive --force x",
            "rm -Rf x",
        ] {
            let sh = shape(&cmd(s), &aliases);
            assert!(want.is_subset(&sh.flags), "{s}: {:?}", sh.flags);
            assert_eq!(sh.positionals.len(), 1, "{s}");
        }
        assert_eq!(
            shape(&cmd("rm -- -rf"), &aliases).positionals[0].text,
            "-rf"
        );
    }

    #[test]
    fn finds_written_files() {
        let c = cmd("dd if=/dev/zero of=/dev/sda bs=1M");
        let targets = write_targets(&c, &shape(&c, &FlagAliases::new()));
        assert_eq!(targets[0].text, "/dev/sda");
        let c = cmd("sed -i s/a/b/ /etc/hosts");
        let sh = shape(&c, &FlagAliases::new());
        assert_eq!(write_targets(&c, &sh)[0].text, "/etc/hosts");
    }
}
