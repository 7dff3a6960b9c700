//! Programs that run another program or a script: `sudo`, `env`, `timeout`, `xargs`,
//! `find -exec`, `bash -c`, `eval`, ... The guard looks through them to what really runs.

use super::words::Word;
use spec::{command_start, spec, subcommand_launcher};

mod env;
mod spec;

pub use env::{INJECTING_ENV, injects_code};

/// What a wrapper runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwrapped {
    /// Another command, given as argv.
    Command {
        wrapper: String,
        argv: Vec<Word>,
        /// The inner command also receives arguments read from stdin (`xargs`).
        args_from_stdin: bool,
    },
    /// A shell script given as a string (`bash -c`, `eval`, `su -c`, `watch`, `ssh host cmd`).
    Script { wrapper: String, script: Word },
}

/// Shells whose `-c` takes a script string.
pub const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "ash",
    "fish",
    "csh",
    "tcsh",
    "busybox-sh",
    "rbash",
];

/// Interpreters that run code read from stdin when given no script.
pub const STDIN_INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "php",
    "lua",
    "luajit",
    "Rscript",
    "R",
    "julia",
    "tclsh",
    "wish",
    "expect",
    "guile",
    "racket",
    "sbcl",
    "clisp",
    "ocaml",
    "jshell",
    "deno",
    "bun",
    "pwsh",
    "groovy",
    "irb",
    "gst",
    "swipl",
    "gforth",
    "bc",
    "dc",
    "ed",
    "ex",
    "gdb",
    "ftp",
    "sftp",
    "redis-cli",
    "mongosh",
    "mongo",
];

/// Programs the guard looks through to the command or script they run (see [`unwrap`]):
/// they count as known, and what they run is judged on its own.
pub const LOOKED_THROUGH: &[&str] = &[
    "sudo",
    "doas",
    "env",
    "command",
    "builtin",
    "nohup",
    "busybox",
    "setsid",
    "caffeinate",
    "exec",
    "time",
    "nice",
    "ionice",
    "timeout",
    "stdbuf",
    "chroot",
    "flock",
    "runuser",
    "su",
    "xargs",
    "watch",
    "strace",
    "ltrace",
    "toybox",
    "eatmydata",
    "fakeroot",
    "nocache",
    "pkexec",
    "setpriv",
    "prlimit",
    "taskset",
    "chrt",
    "cgexec",
    "firejail",
    "tini",
    "dumb-init",
    "dbus-run-session",
    "unbuffer",
    "linux32",
    "linux64",
    "i386",
    "x86_64",
    "catchsegv",
    "valgrind",
    "torsocks",
    "proxychains",
    "proxychains4",
    "dbus-launch",
    "xvfb-run",
    "numactl",
    "cpulimit",
    "chpst",
    "setarch",
    "faketime",
    "nsenter",
    "unshare",
    "systemd-run",
    "eval",
    "trap",
    "alias",
    "find",
    "ssh",
    "kubectl",
    "oc",
    "parallel",
    "docker",
    "podman",
    "nerdctl",
    "docker-compose",
    "uv",
    "uvx",
    "npm",
    "pnpm",
    "yarn",
    "npx",
    "bunx",
    "pnpx",
];

/// Database and data-store clients that execute statements read from stdin.
pub const STDIN_SQL_CLIENTS: &[&str] = &[
    "psql",
    "mysql",
    "mariadb",
    "sqlite3",
    "clickhouse-client",
    "cockroach",
    "duckdb",
    "redis-cli",
    "mongo",
    "mongosh",
    "cqlsh",
];

/// Options of those clients that give the statements on the command line or in a file.
pub const SQL_CLIENT_INLINE: &[&str] = &[
    "-c",
    "--command",
    "-e",
    "--execute",
    "-f",
    "--file",
    "--eval",
];

/// True for programs that run a script file given as their first argument (`bash x.sh`,
/// `source x`, `python3 x.py`).
pub fn runs_script_file(name: &str) -> bool {
    is_shell(name) || STDIN_INTERPRETERS.contains(&name) || name == "source" || name == "."
}

/// The program's name as rules see it: the basename of argv[0].
pub fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

/// True for `python3.11` and friends when `name` is `python3`.
pub fn is_shell(name: &str) -> bool {
    SHELLS.contains(&name)
}

/// Finds the value of a short option (`-c SCRIPT`, also bundled as `-lc SCRIPT`).
fn short_option_value(argv: &[Word], letter: char) -> Option<&Word> {
    let mut i = 1;
    while i < argv.len() {
        let w = &argv[i].text;
        if w == "--" {
            return None;
        }
        if w.starts_with('-') && !w.starts_with("--") && w[1..].contains(letter) {
            // `bash -c -- 'script'`: the script follows the end-of-options marker.
            return argv
                .get(i + 1)
                .filter(|n| n.text != "--")
                .or_else(|| argv.get(i + 2));
        }
        i += 1;
    }
    None
}

/// True when a shell or interpreter given no inline script reads its program from stdin:
/// no script operand (option values such as `-o errexit` skipped), `-s`, or `-` / `/dev/stdin`.
pub fn script_from_stdin(name: &str, argv: &[Word]) -> bool {
    const STDIN: &[&str] = &["-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"];
    let shell = is_shell(name);
    let mut i = 1;
    while i < argv.len() {
        let w = argv[i].text.as_str();
        if w == "--" {
            return argv
                .get(i + 1)
                .is_none_or(|n| STDIN.contains(&n.text.as_str()));
        }
        if STDIN.contains(&w) || (shell && w == "-s") {
            return true;
        }
        if w.starts_with('-') || (shell && w.starts_with('+')) {
            let takes_value = if shell {
                matches!(w, "-o" | "+o" | "-O" | "+O" | "--rcfile" | "--init-file")
            } else {
                // `python -m mod`, `-W arg`, `-X opt`; `node -r mod`; `perl -I dir`.
                matches!(
                    w,
                    "-m" | "-W" | "-X" | "-r" | "--require" | "-I" | "--import"
                )
            };
            if w == "-m" && !shell {
                return false;
            }
            i += if takes_value { 2 } else { 1 };
            continue;
        }
        return false;
    }
    true
}

/// A shell started with a script further inside an unknown launcher's argv (`docker exec web
/// sh -c '...'`, `systemd-run bash -c '...'`, `nsenter -t 1 -m sh -c '...'`): the script.
pub fn embedded_shell_script(argv: &[Word]) -> Option<Word> {
    let at = argv
        .iter()
        .skip(1)
        .position(|w| is_shell(basename(&w.text)))?
        + 1;
    short_option_value(&argv[at..], 'c').cloned()
}

/// What `argv` runs inside itself, if it is a wrapper. Several results for `find` with
/// several `-exec`s.
pub fn unwrap(argv: &[Word]) -> Vec<Unwrapped> {
    let Some(first) = argv.first() else {
        return Vec::new();
    };
    let name = basename(&first.text);
    let cmd = |wrapper: &str, rest: &[Word], from_stdin: bool| Unwrapped::Command {
        wrapper: wrapper.to_string(),
        argv: rest.to_vec(),
        args_from_stdin: from_stdin,
    };
    let script = |wrapper: &str, w: Word| Unwrapped::Script {
        wrapper: wrapper.to_string(),
        script: w,
    };
    let joined = |words: &[Word]| Word {
        text: words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        dynamic: words.iter().any(|w| w.dynamic),
    };
    if is_shell(name) {
        return short_option_value(argv, 'c')
            .map(|w| vec![script(name, w.clone())])
            .unwrap_or_default();
    }
    match name {
        "eval" if argv.len() > 1 => return vec![script(name, joined(&argv[1..]))],
        "trap" if argv.len() > 2 => {
            let first = if argv[1].text == "--" { 2 } else { 1 };
            return argv
                .get(first)
                .map(|w| vec![script(name, w.clone())])
                .unwrap_or_default();
        }
        "alias" => {
            return argv[1..]
                .iter()
                .filter_map(|w| {
                    w.text.split_once('=').map(|(_, v)| {
                        script(
                            name,
                            Word {
                                text: v.to_string(),
                                dynamic: w.dynamic,
                            },
                        )
                    })
                })
                .collect();
        }
        "find" => return unwrap_find(argv),
        "ssh" => return unwrap_ssh(argv),
        "kubectl" | "oc" => {
            if argv.iter().any(|w| w.text == "exec")
                && let Some(p) = argv.iter().position(|w| w.text == "--")
                && p + 1 < argv.len()
            {
                return vec![cmd(name, &argv[p + 1..], false)];
            }
            return Vec::new();
        }
        "parallel" => {
            let end = argv
                .iter()
                .position(|w| w.text.starts_with(":::"))
                .unwrap_or(argv.len());
            let start = argv[1..end]
                .iter()
                .position(|w| !w.text.starts_with('-'))
                .map(|p| p + 1);
            // The command template runs once per input; the inputs after `:::` become its
            // arguments, so they are judged as arguments of the template.
            let inputs: Vec<Word> = argv[end..]
                .iter()
                .filter(|w| !w.text.starts_with(":::"))
                .cloned()
                .collect();
            return match start {
                Some(s) if s < end => {
                    let mut words = argv[s..end].to_vec();
                    words.extend(inputs);
                    vec![script(name, joined(&words))]
                }
                // No template: every input is a command line of its own; from stdin or a
                // `::::` file they cannot be seen.
                _ if !inputs.is_empty() && !argv.iter().any(|w| w.text == "::::") => {
                    inputs.into_iter().map(|w| script(name, w)).collect()
                }
                _ => vec![script(
                    name,
                    Word {
                        text: "<commands read from input>".to_string(),
                        dynamic: true,
                    },
                )],
            };
        }
        _ => {}
    }
    if let Some((at, key)) = subcommand_launcher(name, argv) {
        let sub = &argv[at..];
        let npm_like = !matches!(key, "docker exec" | "uv run" | "uvx");
        if npm_like && let Some(w) = call_option(sub) {
            // `npx -c 'cmd'`, `npm exec --call 'cmd'`: a script string.
            return vec![script(name, w)];
        }
        return match spec(key).and_then(|sp| command_start(key, sub, &sp)) {
            Some(start) => vec![cmd(name, &sub[start..], false)],
            None => Vec::new(),
        };
    }
    let Some(spec) = spec(name) else {
        return Vec::new();
    };
    if name == "env"
        && let Some(s) = argv.iter().position(|w| {
            // `-S`, a bundle ending in it (`-iS`), or `--split-string[=...]`.
            (w.text.starts_with('-') && !w.text.starts_with("--") && w.text.ends_with('S'))
                || w.text.starts_with("--split-string")
        })
    {
        let value = if let Some((_, v)) = argv[s].text.split_once('=') {
            Some(Word {
                text: v.to_string(),
                dynamic: argv[s].dynamic,
            })
        } else {
            argv.get(s + 1).cloned()
        };
        if let Some(v) = value {
            let mut text = v.text;
            for w in argv.iter().skip(s + 2) {
                text.push(' ');
                text.push_str(&w.text);
            }
            return vec![script(
                name,
                Word {
                    text,
                    dynamic: v.dynamic,
                },
            )];
        }
    }
    if matches!(name, "su" | "runuser" | "flock") {
        if let Some(w) = short_option_value(argv, 'c') {
            return vec![script(name, w.clone())];
        }
        if let Some(w) = argv.iter().find_map(|w| {
            w.text.strip_prefix("--command=").map(|t| Word {
                text: t.to_string(),
                dynamic: w.dynamic,
            })
        }) {
            return vec![script(name, w)];
        }
        if let Some(w) = argv
            .iter()
            .position(|w| w.text == "--command")
            .and_then(|i| argv.get(i + 1))
        {
            return vec![script(name, w.clone())];
        }
        if name == "su" {
            return Vec::new();
        }
    }
    let Some(start) = command_start(name, argv, &spec) else {
        return Vec::new();
    };
    let rest = &argv[start..];
    match name {
        "watch" if !argv.iter().any(|w| w.text == "-x" || w.text == "--exec") => {
            vec![script(name, joined(rest))]
        }
        "xargs" => {
            // `-I R`: R in the command is replaced by an input line, like find's `{}`.
            let inner = match xargs_replace_string(&argv[..start]) {
                Some(r) => rest
                    .iter()
                    .map(|w| computed_if(w, w.text.contains(&r)))
                    .collect(),
                None => rest.to_vec(),
            };
            vec![cmd(name, &inner, true)]
        }
        _ => vec![cmd(name, rest, false)],
    }
}

/// The replace string of xargs's options (`-I R`, `-IR`, `-i`, `--replace[=R]`), if any.
fn xargs_replace_string(options: &[Word]) -> Option<String> {
    let mut found = None;
    for (i, w) in options.iter().enumerate().skip(1) {
        let t = w.text.as_str();
        if t == "-I" {
            found = options.get(i + 1).map(|v| v.text.clone());
        } else if let Some(r) = t.strip_prefix("-I").filter(|r| !r.is_empty()) {
            found = Some(r.to_string());
        } else if let Some(r) = t.strip_prefix("-i").or_else(|| t.strip_prefix("--replace")) {
            let r = r.strip_prefix('=').unwrap_or(r);
            found = Some(if r.is_empty() { "{}" } else { r }.to_string());
        }
    }
    found.filter(|r| !r.is_empty())
}

/// `w`, marked as computed at run time when `computed`.
fn computed_if(w: &Word, computed: bool) -> Word {
    Word {
        text: w.text.clone(),
        dynamic: w.dynamic || computed,
    }
}

/// The value of `-c`/`--call` (npm's script option), before the command it would run.
fn call_option(argv: &[Word]) -> Option<Word> {
    let mut i = 1;
    while i < argv.len() {
        let t = argv[i].text.as_str();
        if t == "--" || !t.starts_with('-') {
            return None;
        }
        if t == "-c" || t == "--call" {
            return argv.get(i + 1).cloned();
        }
        if let Some(v) = t.strip_prefix("--call=") {
            return Some(Word {
                text: v.to_string(),
                dynamic: argv[i].dynamic,
            });
        }
        i += 1;
    }
    None
}

fn unwrap_find(argv: &[Word]) -> Vec<Unwrapped> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        if matches!(
            argv[i].text.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir"
        ) {
            let start = i + 1;
            let mut end = start;
            while end < argv.len() && argv[end].text != ";" && argv[end].text != "+" {
                end += 1;
            }
            if end > start {
                let inner: Vec<Word> = argv[start..end]
                    .iter()
                    .map(|w| computed_if(w, w.text.contains("{}")))
                    .collect();
                out.push(Unwrapped::Command {
                    wrapper: "find".to_string(),
                    argv: inner,
                    args_from_stdin: false,
                });
            }
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn unwrap_ssh(argv: &[Word]) -> Vec<Unwrapped> {
    const WITH_VALUE: &str = "BbcDEeFIiJLlmOoPpQRSWw";
    let mut i = 1;
    while i < argv.len() {
        let w = &argv[i].text;
        if w.starts_with('-') && w.len() > 1 {
            let last = w.chars().last().unwrap_or('-');
            i += if w.len() == 2 && WITH_VALUE.contains(last) {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    // argv[i] is the host; the rest (after an optional `--`) is the remote command line.
    let mut rest = argv.get(i + 1..).unwrap_or_default();
    if rest.first().is_some_and(|w| w.text == "--") {
        rest = &rest[1..];
    }
    if rest.is_empty() {
        return Vec::new();
    }
    vec![Unwrapped::Script {
        wrapper: "ssh".to_string(),
        script: Word {
            text: rest
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            dynamic: rest.iter().any(|w| w.dynamic),
        },
    }]
}

#[cfg(test)]
mod tests;
