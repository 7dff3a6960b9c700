//! Option specs of the wrappers that run a command given as their remaining words (`sudo`,
//! `env`, `timeout`, `taskset`, `systemd-run`, `docker exec`, `uv run`, ...): which options take
//! a value and how many positional words come before the command.

use super::Word;

/// Option spec of a wrapper: which options take a value (in the next word unless attached).
pub(super) struct Spec {
    /// Short options (letters) that take a value.
    short_with_value: &'static str,
    /// Long options that take a value (without `--`).
    long_with_value: &'static [&'static str],
    /// Skip leading `NAME=value` words (env, sudo).
    skip_assignments: bool,
    /// Positional words to skip before the command (timeout's duration, chroot's dir, flock's file).
    skip_positionals: usize,
}

pub(super) fn spec(name: &str) -> Option<Spec> {
    let s = |short: &'static str, long: &'static [&'static str], assign: bool, pos: usize| {
        Some(Spec {
            short_with_value: short,
            long_with_value: long,
            skip_assignments: assign,
            skip_positionals: pos,
        })
    };
    match name {
        "sudo" => s(
            "ugpChDrtUTR",
            &[
                "user",
                "group",
                "prompt",
                "close-from",
                "host",
                "chdir",
                "role",
                "type",
                "other-user",
                "command-timeout",
                "chroot",
            ],
            true,
            0,
        ),
        "doas" => s("uC", &[], false, 0),
        "env" => s(
            "uCS",
            &[
                // --block-signal and friends take an optional `=SIG` only.
                "unset",
                "chdir",
                "split-string",
            ],
            true,
            0,
        ),
        "command" | "builtin" | "nohup" | "busybox" | "setsid" | "caffeinate" => {
            s("", &[], false, 0)
        }
        "exec" => s("a", &[], false, 0),
        "time" => s("fo", &["format", "output"], false, 0),
        "nice" => s("n", &["adjustment"], false, 0),
        "ionice" => s("cnp", &["class", "classdata", "pid"], false, 0),
        "timeout" => s("sk", &["signal", "kill-after"], false, 1),
        "stdbuf" => s("ioe", &["input", "output", "error"], false, 0),
        "chroot" => s("", &["userspec", "groups"], false, 1),
        "flock" => s(
            "wEc",
            &["timeout", "conflict-exit-code", "command"],
            false,
            1,
        ),
        "runuser" | "su" => s(
            "ugGcsw",
            &[
                "user",
                "group",
                "supp-group",
                "command",
                "shell",
                "whitelist-environment",
            ],
            false,
            0,
        ),
        "xargs" => s(
            "ILnPsdEaM",
            &[
                "replace",
                "max-lines",
                "max-args",
                "max-procs",
                "max-chars",
                "delimiter",
                "eof",
                "arg-file",
                "process-slot-var",
            ],
            false,
            0,
        ),
        "watch" => s("nqd", &["interval", "differences", "equexit"], false, 0),
        "strace" | "ltrace" => s("eoOpPsSuIbXa", &[], false, 0),
        "toybox" | "eatmydata" | "fakeroot" | "nocache" | "pkexec" | "setpriv" | "prlimit" => {
            s("", &[], false, 0)
        }
        // `taskset [-c] MASK CMD`, `chrt [-f] PRIO CMD`: one positional before the command.
        "taskset" | "chrt" => s(
            "TPD",
            &["sched-runtime", "sched-period", "sched-deadline"],
            false,
            1,
        ),
        "cgexec" => s("g", &[], false, 0),
        // Sandboxes, init shims, display and bus launchers, resource limiters: the command
        // they start is the one to judge.
        "firejail" | "tini" | "dumb-init" | "dbus-run-session" | "unbuffer" | "linux32"
        | "linux64" | "i386" | "x86_64" | "catchsegv" | "valgrind" | "torsocks" | "proxychains"
        | "proxychains4" => s("", &[], false, 0),
        "dbus-launch" => s("", &["autolaunch", "config-file"], false, 0),
        "xvfb-run" => s(
            "nsefwp",
            &[
                "server-num",
                "server-args",
                "error-file",
                "auth-file",
                "wait",
                "xauth-protocol",
            ],
            false,
            0,
        ),
        "numactl" => s(
            "NmCPipl",
            &[
                "cpunodebind",
                "membind",
                "physcpubind",
                "preferred",
                "interleave",
                "localalloc",
            ],
            false,
            0,
        ),
        "cpulimit" => s("lpe", &["limit", "pid", "exe"], false, 0),
        "chpst" => s("uUenlLmdofpcr", &[], false, 0),
        // `setarch ARCH [opts] CMD`, `faketime [opts] TIMESTAMP CMD`: one positional first.
        "setarch" | "faketime" => s("", &[], false, 1),
        "nsenter" => s("tSG", &["target", "setuid", "setgid"], false, 0),
        "unshare" => s(
            "SGRw",
            &[
                "setuid",
                "setgid",
                "root",
                "wd",
                "propagation",
                "map-user",
                "map-group",
                "map-users",
                "map-groups",
            ],
            false,
            0,
        ),
        "systemd-run" => s(
            "upEMH",
            &[
                "unit",
                "property",
                "setenv",
                "machine",
                "host",
                "description",
                "slice",
                "uid",
                "gid",
                "nice",
                "working-directory",
                "on-active",
                "on-boot",
                "on-startup",
                "on-unit-active",
                "on-unit-inactive",
                "on-calendar",
                "timer-property",
                "path-property",
                "socket-property",
                "service-type",
                "capsule",
            ],
            false,
            0,
        ),
        // `docker exec [OPTS] CONTAINER CMD...` (argv starts at `exec`).
        "docker exec" => s(
            "euw",
            &["env", "env-file", "user", "workdir", "detach-keys"],
            false,
            1,
        ),
        // `uv run [OPTS] CMD...` (argv starts at `run`), `uvx [OPTS] TOOL ...`.
        "uv run" | "uvx" => s(
            "pwP",
            &[
                "with",
                "with-editable",
                "with-requirements",
                "python",
                "package",
                "extra",
                "group",
                "only-group",
                "no-group",
                "env-file",
                "directory",
                "project",
                "index",
                "default-index",
                "index-url",
                "extra-index-url",
                "find-links",
                "from",
                "upgrade-package",
                "reinstall-package",
                "config-file",
                "cache-dir",
                "python-platform",
                "index-strategy",
                "keyring-provider",
                "resolution",
                "prerelease",
                "exclude-newer",
                "link-mode",
                "color",
            ],
            false,
            0,
        ),
        // `npx [OPTS] PKG ARGS`, `npm exec [OPTS] -- PKG ARGS` (argv starts at `exec`).
        "npx" | "bunx" | "pnpx" | "npm exec" | "pnpm exec" | "pnpm dlx" | "yarn exec"
        | "yarn dlx" => s(
            "p",
            &["package", "workspace", "prefix", "userconfig"],
            false,
            0,
        ),
        _ => None,
    }
}

/// Splits a wrapper's argv at its command: returns the index of the first word of the command.
pub(super) fn command_start(name: &str, argv: &[Word], spec: &Spec) -> Option<usize> {
    let mut i = 1;
    let mut positionals = spec.skip_positionals;
    while i < argv.len() {
        let w = &argv[i].text;
        if w == "--" {
            i += 1;
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let key = long.split('=').next().unwrap_or(long);
            i += if !long.contains('=') && spec.long_with_value.contains(&key) {
                2
            } else {
                1
            };
            continue;
        }
        if w.starts_with('-') && w.len() > 1 && !(name == "nice" && w[1..].parse::<i64>().is_ok()) {
            // A bundle like `-u root` or `-uroot`: a value-taking letter eats the rest or the next.
            let letters: Vec<char> = w[1..].chars().collect();
            let mut step = 1;
            for (k, c) in letters.iter().enumerate() {
                if spec.short_with_value.contains(*c) {
                    if k + 1 == letters.len() {
                        step = 2;
                    }
                    break;
                }
            }
            i += step;
            continue;
        }
        if w.starts_with('-') {
            i += 1;
            continue;
        }
        if spec.skip_assignments && is_assignment(w) {
            i += 1;
            continue;
        }
        if positionals > 0 {
            positionals -= 1;
            i += 1;
            continue;
        }
        break;
    }
    (i < argv.len()).then_some(i)
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Options of `docker compose` / `docker-compose` that take a value, before its subcommand.
const COMPOSE_OPTIONS: &[&str] = &[
    "-f",
    "--file",
    "-p",
    "--project-name",
    "--env-file",
    "--profile",
];

/// A launcher reached through a subcommand (`docker exec`, `docker compose exec`, `uv run`,
/// `npm exec`, ...) or named directly (`npx`, `uvx`): where its own argv starts in `argv` and
/// the key of its [`spec`].
pub(super) fn subcommand_launcher(name: &str, argv: &[Word]) -> Option<(usize, &'static str)> {
    // Global options that take a value, before the subcommand.
    let globals: &[&str] = match name {
        "docker" | "podman" | "nerdctl" => &[
            "-H",
            "--host",
            "--context",
            "-c",
            "--config",
            "-l",
            "--log-level",
            "--url",
            "--connection",
            "--namespace",
            "-n",
        ],
        "docker-compose" => COMPOSE_OPTIONS,
        "uv" => &[
            "--directory",
            "--project",
            "--config-file",
            "--cache-dir",
            "--color",
        ],
        "npm" | "pnpm" | "yarn" => &["--prefix", "-C", "--dir", "--cwd", "--workspace", "-w"],
        "npx" => return Some((0, "npx")),
        "bunx" => return Some((0, "bunx")),
        "pnpx" => return Some((0, "pnpx")),
        "uvx" => return Some((0, "uvx")),
        _ => return None,
    };
    let positionals = positional_indices(argv, globals);
    let word = |k: usize| positionals.get(k).map(|&i| (i, argv[i].text.as_str()));
    let (i, first) = word(0)?;
    let found = match (name, first) {
        ("docker" | "podman" | "nerdctl" | "docker-compose", "exec") => (i, "docker exec"),
        ("docker" | "podman" | "nerdctl", "compose") => {
            // `docker compose -f x.yml exec SERVICE CMD`
            let rest = positional_indices(&argv[i..], COMPOSE_OPTIONS);
            let j = rest.first().map(|&j| j + i)?;
            (argv[j].text == "exec").then_some((j, "docker exec"))?
        }
        ("uv", "run") => (i, "uv run"),
        ("uv", "tool") => {
            let (j, second) = word(1)?;
            (second == "run").then_some((j, "uvx"))?
        }
        ("npm", "exec" | "x") => (i, "npm exec"),
        ("pnpm", "exec") => (i, "pnpm exec"),
        ("pnpm", "dlx") => (i, "pnpm dlx"),
        ("yarn", "exec") => (i, "yarn exec"),
        ("yarn", "dlx") => (i, "yarn dlx"),
        _ => return None,
    };
    Some(found)
}

/// Indices of the words after `argv[0]` that are not options nor the values of `with_value`.
fn positional_indices(argv: &[Word], with_value: &[&str]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let t = argv[i].text.as_str();
        if t.starts_with('-') && t.len() > 1 {
            i += if with_value.contains(&t) { 2 } else { 1 };
            continue;
        }
        out.push(i);
        i += 1;
    }
    out
}
