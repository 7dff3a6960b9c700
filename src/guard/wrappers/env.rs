//! Environment variables that change what a program runs: the loader's (`LD_PRELOAD`), the
//! shell's (`BASH_ENV`, `PATH`), and the pagers, editors, helpers and configuration files of
//! everyday tools (`GIT_SSH_COMMAND`, `LESSOPEN`, `TAR_OPTIONS`, `KUBECONFIG`). Setting one is
//! `ask` (`env-injection`): the guard cannot see what it makes run.

/// Environment variables that make programs run extra code, load libraries or change what
/// runs (`LD_PRELOAD=x ls`, `BASH_ENV=x bash`, `GIT_SSH_COMMAND=...`, `TF_CLI_ARGS=-destroy`).
pub const INJECTING_ENV: &[&str] = &[
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "PS4",
    "SHELLOPTS",
    "BASHOPTS",
    "IFS",
    "PATH",
    "CDPATH",
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EXEC_PATH",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_ASKPASS",
    "GIT_CONFIG_*",
    "PAGER",
    "EDITOR",
    "VISUAL",
    "TF_CLI_ARGS*",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONINSPECT",
    "NODE_OPTIONS",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    // Pagers, editors, helpers and config files of everyday tools, which run what they name.
    "GIT_PROXY_COMMAND",
    "GIT_SEQUENCE_EDITOR",
    "GIT_TEMPLATE_DIR",
    "GIT_CONFIG",
    "GIT_DIR",
    "GIT_TRACE*",
    "LESSOPEN",
    "LESSCLOSE",
    "MANPAGER",
    "MANOPT",
    "SYSTEMD_PAGER",
    "SYSTEMD_EDITOR",
    "PSQL_PAGER",
    "PSQL_EDITOR",
    "MYSQL_PAGER",
    "TAR_OPTIONS",
    "NPM_CONFIG_*",
    "npm_config_*",
    "YARN_*",
    "RSYNC_RSH",
    "RSYNC_CONNECT_PROG",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "BROWSER",
    "KUBECONFIG",
    "AWS_CONFIG_FILE",
    "TF_CLI_CONFIG_FILE",
    "GOFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_TARGET_*_RUNNER",
    "MAKEFLAGS",
    "GCONV_PATH",
    "HOME",
    "XDG_CONFIG_HOME",
    "CURL_HOME",
    "WGETRC",
    "PIP_CONFIG_FILE",
    "PYTHONHOME",
    "NODE_PATH",
    "HELM_PLUGINS",
];

/// True when setting `name` can make programs run extra code (see [`INJECTING_ENV`]; a `*`
/// stands for any text).
pub fn injects_code(name: &str) -> bool {
    INJECTING_ENV.iter().any(|v| match v.split_once('*') {
        None => name == *v,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    })
}
