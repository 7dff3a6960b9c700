//! The cost of redacting a small `read` result, which the README quotes (run:
//! `cargo bench --bench redact`, release profile). Three texts of about 2.5 KB: no trigger word
//! at all, everyday text whose words trip the prefilter (`token`, `password`), and one with
//! secrets to mask; six known secrets, as a configured server has. Not a test: it asserts
//! nothing.

use std::path::Path;
use std::time::Instant;

use pi_mcp::redact::Redactor;

const ROUNDS: u32 = 20_000;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "benchmarks run with `cargo bench --bench redact`; nothing to do under cargo test"
        );
        return;
    }
    let vars: Vec<(String, String)> = [
        ("PI_MCP_TOKEN", "tok-0123456789abcdef"),
        ("SLACK_SIGNING_SECRET", "8f2b6c1d9e0a4b7c3d2e"),
        (
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T000/B000/XXXXsecret42",
        ),
        (
            "SMTP_URL",
            "smtp://mailer:m%40ilPassw0rd@smtp.example.com:587",
        ),
        (
            "DATABASE_URL",
            "postgres://app:dbpassw0rd9@db.internal/orders",
        ),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-abcdefghijklmnopqrstuv"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let redactor = Redactor::from_vars(&vars, &|_| false, Path::new("/nonexistent-home"));
    let plain: String = (1..=40)
        .map(|i| format!("{i:>4}\tfn handler_{i}(req: Request) -> Response {{ respond(req) }}\n"))
        .collect();
    let wordy = plain.replace("respond(req)", "check(req.token, password_hash)");
    let secret = format!("{plain}password=hunter22 tok-0123456789abcdef\n");
    for (name, text) in [
        ("no trigger", &plain),
        ("triggers", &wordy),
        ("secrets", &secret),
    ] {
        let start = Instant::now();
        let mut masked = 0;
        for _ in 0..ROUNDS {
            masked += redactor.text(std::hint::black_box(text)).1;
        }
        let each = start.elapsed() / ROUNDS;
        println!(
            "redact {name}: {} bytes, {each:?} per result ({} masked)",
            text.len(),
            masked / ROUNDS as usize
        );
    }
}
