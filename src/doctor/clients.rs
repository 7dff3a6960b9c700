//! The exact client configuration for this machine, printed by `pi-mcp doctor`: the
//! `mcpServers` entry for Claude Desktop and the `claude mcp add` line for Claude Code, with the
//! absolute path of this very binary and of the workspace, so that copying them works the first
//! time (a relative path or a `pi-mcp` not on the client's PATH is the usual first failure).

use std::path::Path;

use serde::Serialize;

/// What to paste into each client.
#[derive(Debug, Clone, Serialize)]
pub struct Clients {
    /// The whole `claude_desktop_config.json` object with one `mcpServers` entry.
    pub claude_desktop: serde_json::Value,
    /// The `claude mcp add` command line.
    pub claude_code: String,
}

/// The server's name in both clients.
pub const SERVER_NAME: &str = "pi-mcp";

/// Snippets that start `exe` with `args` (global options, then `serve --stdio`) and `env`.
pub fn snippets(exe: &Path, args: &[String], env: &[(String, String)]) -> Clients {
    let exe = exe.display().to_string();
    let env_map: serde_json::Map<String, serde_json::Value> = env
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    let claude_desktop = serde_json::json!({
        "mcpServers": {
            SERVER_NAME: {
                "command": exe,
                "args": args,
                "env": env_map,
            }
        }
    });
    let mut line = vec![
        "claude".to_string(),
        "mcp".into(),
        "add".into(),
        SERVER_NAME.into(),
    ];
    for (k, v) in env {
        line.push("-e".into());
        line.push(quote(&format!("{k}={v}")));
    }
    line.push("--".into());
    line.push(quote(&exe));
    line.extend(args.iter().map(|a| quote(a)));
    Clients {
        claude_desktop,
        claude_code: line.join(" "),
    }
}

/// `s` as one shell word: as is when it holds only safe characters, else single-quoted.
pub fn quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_use_absolute_paths_and_quote_for_the_shell() {
        let args = vec![
            "--workspace".to_string(),
            "/srv/my ops".to_string(),
            "serve".to_string(),
            "--stdio".to_string(),
        ];
        let env = vec![("RUST_LOG".to_string(), "pi_mcp=info".to_string())];
        let c = snippets(Path::new("/usr/local/bin/pi-mcp"), &args, &env);
        assert_eq!(
            c.claude_code,
            "claude mcp add pi-mcp -e RUST_LOG=pi_mcp=info -- /usr/local/bin/pi-mcp \
             --workspace '/srv/my ops' serve --stdio"
        );
        let entry = &c.claude_desktop["mcpServers"]["pi-mcp"];
        assert_eq!(entry["command"], "/usr/local/bin/pi-mcp");
        assert_eq!(entry["args"][1], "/srv/my ops");
        assert_eq!(entry["env"]["RUST_LOG"], "pi_mcp=info");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
