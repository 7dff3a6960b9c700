//! pi-mcp: a guarded MCP server and autonomous operations daemon. See ARCHITECTURE in the
//! README: faces (server) call tools, tools ask the guard, state lives in the store.

pub mod agent;
pub mod app;
pub mod chart;
pub mod console;
pub mod display;
pub mod doctor;
pub mod ghost;
pub mod guard;
pub mod health;
pub mod heartbeat;
pub mod monitor;
pub mod redact;
pub mod sandbox;
pub mod secrets;
pub mod server;
pub mod severity;
pub mod store;
pub mod tools;

/// Stack of a thread that judges commands: the async runtime's, and the one that compiles the
/// policy (a policy file's examples are judged). The shell parser recurses; deeply nested but
/// accepted commands need room, whatever `ulimit -s` says.
pub const JUDGING_STACK_BYTES: usize = 16 * 1024 * 1024;
