//! The redactor against each secret shape, known values, counting and overlaps, and against
//! everyday output that must come through untouched.

use std::path::Path;

use serde_json::json;

use super::*;

/// A redactor over `vars` only (no credential files: the home does not exist).
fn redactor(vars: &[(&str, &str)]) -> Redactor {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Redactor::from_vars(
        &vars,
        &|n| n.ends_with("_DENIED"),
        Path::new("/nonexistent-home"),
    )
}

fn out(text: &str) -> (String, usize) {
    let (s, n) = redactor(&[]).text(text);
    (s.into_owned(), n)
}

#[test]
fn strict_text_masks_every_match() {
    let t =
        text("PGPASSWORD=hunter2 psql postgres://u:pw@db/x -H 'Authorization: Bearer abcdefghijk'");
    assert!(
        !t.contains("hunter2") && !t.contains(":pw@") && !t.contains("abcdefghijk"),
        "{t}"
    );
    assert!(text("aws AKIAIOSFODNN7EXAMPLE").contains("REDACTED"));
    // Strict: even a value that does not look like a secret.
    assert_eq!(text("token=abc"), "token=[REDACTED]");
    let v = json(json!({"command": "ls", "api_key": "k", "nested": {"token": "t"}}));
    assert_eq!(v["api_key"], "[REDACTED]");
    assert_eq!(v["nested"]["token"], "[REDACTED]");
    assert_eq!(v["command"], "ls");
}

#[test]
fn each_shape_is_masked_and_counted() {
    let cases: &[(&str, &str)] = &[
        ("key AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI",
        ),
        (
            "curl -H 'Authorization: Bearer abc123def456ghi'",
            "abc123def456ghi",
        ),
        (
            "Authorization: Basic dXNlcjpwYXNzd29yZA==",
            "dXNlcjpwYXNzd29yZA",
        ),
        (
            "postgres://app:s3cretpw@db.internal:5432/orders",
            "s3cretpw",
        ),
        ("SLACK_BOT=xoxb-123456789012-abcdefghijkl", "xoxb-1234"),
        (
            "posting to https://hooks.slack.com/services/T0123/B0456/abcdefXYZ123",
            "abcdefXYZ123",
        ),
        ("GH ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdef"),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
            "github_pat_11",
        ),
        ("OPENAI sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abc"),
        (
            "ANTHROPIC sk-ant-api03-abcdefghijklmnopqrstuv",
            "sk-ant-api03-abc",
        ),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "dozjgNryP4J3jVmNHl0w5N",
        ),
        ("DB_PASSWORD=hunter2", "hunter2"),
        ("password: 'correct horse'", "correct horse"),
        ("client_secret=AbCdEf123456", "AbCdEf123456"),
        (r#"{"api_key": "k3y-v4lue-123"}"#, "k3y-v4lue-123"),
        ("export API_TOKEN=tok_9f8e7d6c5b4a", "tok_9f8e7d6c5b4a"),
    ];
    for (input, secret) in cases {
        let (masked, n) = out(input);
        assert!(!masked.contains(secret), "{input:?} -> {masked:?}");
        assert_eq!(n, 1, "{input:?} -> {masked:?}");
        assert!(masked.contains("REDACTED"), "{masked}");
    }
}

#[test]
fn private_key_blocks_go_whole() {
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n";
    let (masked, n) = out(&format!("$ cat id_ed25519\n{key}done\n"));
    assert_eq!(n, 1);
    assert!(
        !masked.contains("b3BlbnNz") && !masked.contains("AAAAAAAB"),
        "{masked}"
    );
    assert!(masked.starts_with("$ cat id_ed25519\n-----BEGIN OPENSSH PRIVATE KEY-----[REDACTED]"));
    assert!(masked.ends_with("done\n"));
    // Cut at the end (no END line) or at the start (bash keeps the tail: no BEGIN line).
    let (head, n) = out("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx7\n");
    assert!(n == 1 && !head.contains("MIIEpAIBAAKCAQEAx7"), "{head}");
    let (tail, n) =
        out("MIIEpAIBAAKCAQEAx7abcdefgh\nQWERTYUIOPasdfghjkl123\n-----END RSA PRIVATE KEY-----\n");
    assert!(n == 1 && !tail.contains("QWERTYUIOP"), "{tail}");
}

#[test]
fn known_values_and_their_url_parts_are_masked() {
    let r = redactor(&[
        ("SLACK_SIGNING_SECRET", "8f2b6c1d9e0a4b7c"),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.example.com/services/T000/B000/XXXXsecretpath42",
        ),
        (
            "SMTP_URL",
            "smtp://mailer:m%40ilPassw0rd@smtp.example.com:587?tls=none",
        ),
        (
            "DATABASE_URL",
            "postgres://app:dbpassw0rd9@db.internal/orders_production",
        ),
        ("SOMETHING_DENIED", "policy-denied-value-42"),
        ("PI_MCP_TOKEN", "short"),
        ("HOME", "/home/operator-not-a-secret"),
    ]);
    let text = "sig 8f2b6c1d9e0a4b7c; hook T000/B000/XXXXsecretpath42; token XXXXsecretpath42; \
                smtp m@ilPassw0rd; db dbpassw0rd9; denied policy-denied-value-42; \
                short; db name orders_production; home /home/operator-not-a-secret";
    let (masked, n) = r.text(text);
    for secret in [
        "8f2b6c1d9e0a4b7c",
        "XXXXsecretpath42",
        "m@ilPassw0rd",
        "dbpassw0rd9",
        "policy-denied-value-42",
    ] {
        assert!(!masked.contains(secret), "{secret} in {masked}");
    }
    assert_eq!(n, 6, "{masked}");
    assert!(
        masked.contains("[REDACTED:SLACK_SIGNING_SECRET]"),
        "{masked}"
    );
    // Values under 8 characters, database names and variables that are not secrets stay.
    assert!(masked.contains("short; db name orders_production; home /home/operator-not-a-secret"));
}

#[test]
fn overlapping_values_merge_into_one_mask() {
    let r = redactor(&[("GH_TOKEN", "abcdefgh12"), ("GITHUB_TOKEN", "gh12xyzabc99")]);
    let (masked, n) = r.text("x abcdefgh12xyzabc99 y");
    assert_eq!(masked, "x [REDACTED] y");
    assert_eq!(n, 1);
    // A whole webhook URL is one secret, not the URL plus its path.
    let r = redactor(&[(
        "ALERT_WEBHOOK_URL",
        "https://hooks.example.com/hook/abcdef123456",
    )]);
    let (masked, n) = r.text("url=https://hooks.example.com/hook/abcdef123456 end");
    assert_eq!(
        (masked.as_ref(), n),
        ("url=[REDACTED:ALERT_WEBHOOK_URL] end", 1)
    );
}

#[test]
fn counting_adds_up_and_redacting_twice_finds_nothing() {
    let r = redactor(&[("PI_MCP_TOKEN", "tok-0123456789")]);
    let (masked, n) =
        r.text("a tok-0123456789 b tok-0123456789\npassword=hunter2\nAKIAIOSFODNN7EXAMPLE\n");
    assert_eq!(n, 4, "{masked}");
    assert_eq!(r.text(&masked).1, 0, "{masked}");
    assert_eq!(count_line(1), "[1 secret redacted]");
    assert_eq!(count_line(4), "[4 secrets redacted]");
}

#[test]
fn structured_content_is_masked_in_place() {
    let r = redactor(&[("PI_MCP_TOKEN", "tok-0123456789")]);
    let mut v = json!({
        "rows": [["alice", "tok-0123456789"], ["bob", "password=hunter22"]],
        "password": "s3cr3t-value",
        "token_type": "Bearer",
        "max_tokens": 4096,
        "nextToken": "f/38471234567890",
        "note": "the token is checked"
    });
    assert_eq!(r.json(&mut v), 3, "{v}");
    assert_eq!(v["rows"][0][1], "[REDACTED:PI_MCP_TOKEN]");
    assert_eq!(v["rows"][1][1], "password=[REDACTED]");
    assert_eq!(v["password"], "[REDACTED]");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["nextToken"], "f/38471234567890");
    assert_eq!(v["note"], "the token is checked");
}

#[test]
fn everyday_output_is_untouched() {
    let samples = [
        // ps aux
        "USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND\n\
         root           1  0.0  0.1 167800 11520 ?        Ss   09:12   0:03 /sbin/init splash\n\
         postgres     812  0.0  0.3 215432 28764 ?        Ss   09:12   0:00 postgres: checkpointer\n\
         me          4242  1.2  2.0 1234567 163840 pts/0  Sl+  10:01   0:42 cargo test --lib redact -- --test-threads=2\n",
        // env without secrets
        "HOME=/home/me\nPWD=/home/me/src/pi-mcp\nOLDPWD=/home/me\nSHELL=/bin/bash\n\
         PATH=/usr/local/bin:/usr/bin:/bin\nLANG=en_US.UTF-8\nTERM=xterm-256color\n\
         SSH_AUTH_SOCK=/run/user/1000/keyring/ssh\nKUBECONFIG=/home/me/.kube/config\n\
         HISTCONTROL=ignoredups\nLS_COLORS=rs=0:di=01;34:ln=01;36\n",
        // a README and grep output
        "README.md:12:the token is checked on every request\n\
         README.md:40:Set a password for the database role (see below).\n\
         README.md:41:Password: see the operator's vault\n\
         README.md:88:Bearer authentication and basic configuration are described later.\n\
         README.md:90:`password=` and `token:` values are redacted.\n",
        // source code
        "    pub token: Option<String>,\n    let password = read_password()?;\n\
         \x20   if secret.is_empty() { return; }\n    api_key: &str,\n    max_tokens: 4096,\n\
         \x20   token = self.token.clone();\n    password: String,\n    secret = true\n\
         \x20   \"nextToken\": \"AQICAHh0bG9uZyBwYWdlIHRva2Vu\",\n    let token_url = \"https://auth.example.com/oauth/token\";\n\
         \x20   password=${DB_PASSWORD}\n    token: <your token here>\n    api_key = config.api_key\n\
         \x20   fn take(&self, token: &ProgressToken) {}\n    matches!(t, Token::EOF)\n    o.token = None;\n\
         \x20   use sqlparser::tokenizer::Tokenizer;\n    if token == other {}\n",
        // documentation placeholders
        "SMTP_URL=smtp://user:pass@host:587 or postgres://USER:PASSWORD@HOST/DB or \
         postgres://pi_reader:…@host/app or smtps://u:p@mail\nANTHROPIC_API_KEY=sk-ant-...\n",
        // git log / ls -l / df
        "commit 3f9a1c2b7d4e5f60718293a4b5c6d7e8f9012345\nAuthor: Jane Doe <jane@example.com>\n\
         -rw-r--r-- 1 me me 4096 Jan  1 10:00 tokens.rs\n/dev/vda 252G 15G 77G 17% /\n",
    ];
    let r = redactor(&[]);
    for s in samples {
        let (masked, n) = r.text(s);
        assert_eq!(n, 0, "mangled:\n{masked}");
        assert!(matches!(masked, Cow::Borrowed(_)));
    }
}

#[test]
fn the_prefilter_stays_small_and_sees_common_spellings() {
    // Aho-Corasick's SIMD searcher handles up to 64 literals.
    assert!(
        shapes::prefilter_size() <= 64,
        "{}",
        shapes::prefilter_size()
    );
    for input in [
        "password=hunter22",
        "PASSWORD=hunter22",
        "Password: hunter22",
        "dbPassword=hunter22",
        "AUTHORIZATION: BEARER abc123def456",
        "apiKey: \"k3y-v4lue-123\"",
        "X-Api-Key: k3y-v4lue-123",
    ] {
        assert_eq!(out(input).1, 1, "{input}");
    }
}

#[test]
fn a_json_line_stays_json() {
    // The agent's transcript redacts whole JSON lines with the strict form.
    let line = json!({
        "event": "tool_result",
        "text": "password=hunter22\" done",
        "config": {"token": "abc123def456"},
        "nested": "{\"api_key\": \"k3y-v4lue-123\"}",
        "key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEAx7\n",
        "usage": {"input_tokens": 123, "output_tokens": 45, "token": null}
    })
    .to_string();
    let masked = text(&line);
    let back: serde_json::Value = serde_json::from_str(&masked).expect(&masked);
    for secret in [
        "hunter22",
        "abc123def456",
        "k3y-v4lue-123",
        "MIIEpAIBAAKCAQEAx7",
    ] {
        assert!(!masked.contains(secret), "{masked}");
    }
    assert_eq!(back["event"], "tool_result");
    assert_eq!(back["usage"]["input_tokens"], 123);
}
