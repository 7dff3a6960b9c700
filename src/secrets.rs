//! pi-mcp's own secrets: the environment variables that hold its channel URLs, tokens and
//! keys. One list, so that every place that must keep them from the agent (the environment of
//! `bash` children, tool output redaction, the audit log) agrees on what they are. These are the
//! operator's configuration: the server uses them, and nothing it runs may see them.

/// Variables whose values are pi-mcp's own secrets. They never reach a `bash` child's
/// environment, whatever the policy's `env_deny` says, and their values are redacted from
/// every tool result.
pub const SERVER_SECRET_VARS: &[&str] = &[
    "PI_MCP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_WEBHOOK_URL",
    "ALERT_WEBHOOK_URL",
    "SMTP_URL",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "PI_MCP_STATE_URL",
    "DATABASE_URL",
];

/// True when `name` is one of [`SERVER_SECRET_VARS`], or a per-database URL of the sql tool
/// (`DATABASE_URL_<NAME>`).
pub fn is_server_secret(name: &str) -> bool {
    SERVER_SECRET_VARS.contains(&name) || name.starts_with("DATABASE_URL_")
}

/// Well-known credential variables that are not pi-mcp's own but that it may hold for the
/// CLIs it runs (cloud, GitHub, PostgreSQL). Their values are redacted from tool results like
/// the server's own secrets and the policy's `env_deny` variables.
pub const CREDENTIAL_VARS: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "PGPASSWORD",
];

/// True when the value of variable `name` is redacted from every tool result (whatever the
/// policy says): pi-mcp's own secrets and [`CREDENTIAL_VARS`].
pub fn is_redacted_var(name: &str) -> bool {
    is_server_secret(name) || CREDENTIAL_VARS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_secrets_are_known() {
        assert!(is_server_secret("SLACK_SIGNING_SECRET"));
        assert!(is_server_secret("DATABASE_URL_ORDERS"));
        assert!(!is_server_secret("HOME"));
        assert!(is_redacted_var("PI_MCP_TOKEN") && is_redacted_var("GH_TOKEN"));
        assert!(!is_redacted_var("PATH"));
    }
}
