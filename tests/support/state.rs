//! Where a spawned `pi-mcp` keeps its state in the tests: beside the workspace, never in the
//! real home. Shared by `tests/support` and the fake model's runner (which benches include too).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The state directory a spawned `pi-mcp` uses for workspace `ws`: `<ws>.state`, next to the
/// workspace (outside it, as in production) and removed with `support::Workspace`. Pass it with
/// [`state_env`]; read the store with [`state_db`].
pub fn state_dir(ws: &Path) -> PathBuf {
    let mut name = ws.file_name().unwrap_or_default().to_os_string();
    name.push(".state");
    ws.with_file_name(name)
}

/// The SQLite state store of workspace `ws` (see [`state_dir`]).
pub fn state_db(ws: &Path) -> PathBuf {
    state_dir(ws).join("state.db")
}

/// The default OSV database directory of workspace `ws` (see [`state_dir`]).
pub fn osv_dir(ws: &Path) -> PathBuf {
    state_dir(ws).join("osv")
}

/// The environment that gives a spawned `pi-mcp` the test's [`state_dir`]; use with
/// `Command::envs`.
pub fn state_env(ws: &Path) -> [(&'static str, PathBuf); 1] {
    [("PI_MCP_STATE_DIR", state_dir(ws))]
}
