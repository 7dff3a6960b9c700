//! The servers the benchmark measures pi-mcp against, found where `scripts/bench-server`
//! installs them (npm and pip into `~/.cache/pi-mcp-bench`, or `PI_MCP_BENCH_PEERS`), and how
//! each is started and called. A peer that is not installed is left out of the run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// A server under measurement: how to start it and which call stands for each row.
pub struct Subject {
    pub name: &'static str,
    pub command: Command,
    /// The small-file read: tool and arguments.
    pub read: Option<(&'static str, Value)>,
    /// The cheapest call it has (pipelined): tool and arguments.
    pub small: Option<(&'static str, Value)>,
    /// The 100-row SELECT on the benchmark's SQLite file.
    pub sql: Option<(&'static str, Value)>,
}

/// The query of the SQL row: 100 rows by primary-key range.
pub const SQL: &str = "SELECT id, name, qty, price FROM items WHERE id BETWEEN 1001 AND 1100";

/// The workspace, state directory and database every subject is pointed at.
pub struct Fixture<'a> {
    pub ws: &'a Path,
    pub state: &'a Path,
    pub db: &'a Path,
}

pub fn pi_mcp(bin: &str, f: &Fixture) -> Subject {
    let mut command = Command::new(bin);
    command
        .arg("--workspace")
        .arg(f.ws)
        .args(["serve", "--stdio"])
        .env("RUST_LOG", "error")
        .env("PI_MCP_STATE_DIR", f.state)
        .env("DATABASE_URL", format!("sqlite://{}", f.db.display()));
    Subject {
        name: "pi-mcp",
        command,
        read: Some(("read", json!({"path": "small.txt"}))),
        small: Some(("read", json!({"path": "small.txt"}))),
        sql: Some(("sql", json!({"query": SQL}))),
    }
}

/// Where the peers are installed.
fn cache() -> PathBuf {
    match std::env::var_os("PI_MCP_BENCH_PEERS") {
        Some(dir) => dir.into(),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/pi-mcp-bench")
        }
    }
}

/// Node 22 as the tests find it, else `node` on PATH.
fn node() -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    [
        std::env::var_os("PI_MCP_BENCH_NODE").map(PathBuf::from),
        std::env::var_os("PI_MCP_TEST_NODE").map(PathBuf::from),
        Some(home.join(".cache/pi-mcp-test/node22/node_modules/.bin/node")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.exists())
    .unwrap_or_else(|| "node".into())
}

/// The peers that are installed, each pointed at the fixture.
pub fn installed(f: &Fixture) -> Vec<Subject> {
    let root = cache();
    let modules = root.join("node/node_modules/@modelcontextprotocol");
    let mut out = Vec::new();
    let fs = modules.join("server-filesystem/dist/index.js");
    if fs.exists() {
        let mut command = Command::new(node());
        command.arg(&fs).arg(f.ws);
        let small = json!({"path": f.ws.join("small.txt")});
        out.push(Subject {
            name: "server-filesystem",
            command,
            read: Some(("read_text_file", small.clone())),
            small: Some(("read_text_file", small)),
            sql: None,
        });
    }
    let everything = modules.join("server-everything/dist/index.js");
    if everything.exists() {
        let mut command = Command::new(node());
        command.arg(&everything).arg("stdio");
        out.push(Subject {
            name: "server-everything",
            command,
            read: None,
            small: Some(("echo", json!({"message": "ok"}))),
            sql: None,
        });
    }
    let sqlite = root.join("venv/bin/mcp-server-sqlite");
    if sqlite.exists() {
        let mut command = Command::new(&sqlite);
        command.arg("--db-path").arg(f.db);
        out.push(Subject {
            name: "mcp-server-sqlite",
            command,
            read: None,
            small: None,
            sql: Some(("read_query", json!({"query": SQL}))),
        });
    }
    if out.is_empty() {
        println!(
            "(no peer servers under {}: run scripts/bench-server to install them and compare)",
            root.display()
        );
    }
    out
}

/// Rebuilds `cmd` (a `Command` cannot be cloned) so a subject can be started many times.
pub fn again(cmd: &Command) -> Command {
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    c
}
