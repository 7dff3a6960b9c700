//! Removes secrets from what is written to the audit log and to messages: values of
//! secret-looking JSON keys, `password=...` style assignments, bearer tokens, credentials in
//! URLs and well-known key formats (AWS access keys, Slack, GitHub, OpenAI/Anthropic style
//! keys). A shared utility: the store, the server and the CLI all use it.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

const MASK: &str = "[REDACTED]";

static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(password|passwd|secret|token|api[_-]?key|authorization|credential|private[_-]?key|access[_-]?key)")
        .expect("static regex")
});

static PATTERNS: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (r#"(?i)\b((?:[A-Z0-9_]*?)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[A-Z0-9_]*)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s'"]+)"#, "${1}${2}[REDACTED]"),
        (r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}", "${1} [REDACTED]"),
        (r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@/\s]+@", "${1}:[REDACTED]@"),
        (r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", "[REDACTED-AWS-KEY]"),
        (r"\bxox[abprs]-[A-Za-z0-9-]{10,}", "[REDACTED-SLACK-TOKEN]"),
        (r"\bgh[pousr]_[A-Za-z0-9]{20,}", "[REDACTED-GITHUB-TOKEN]"),
        (r"\bsk-[A-Za-z0-9_-]{20,}", "[REDACTED-API-KEY]"),
    ]
    .into_iter()
    .map(|(p, r)| (Regex::new(p).expect("static regex"), r))
    .collect()
});

/// Redacts secrets inside free text (a command line, an error message).
pub fn text(s: &str) -> String {
    let mut out = s.to_string();
    for (re, rep) in PATTERNS.iter() {
        if re.is_match(&out) {
            out = re.replace_all(&out, *rep).into_owned();
        }
    }
    out
}

/// Redacts secrets inside tool arguments: secret-named keys lose their values, strings are
/// scanned for secrets.
pub fn json(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_KEY.is_match(k) && !v.is_null() {
                        Value::String(MASK.into())
                    } else {
                        json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::String(s) => Value::String(text(s)),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked() {
        let t = text(
            "PGPASSWORD=hunter2 psql postgres://u:pw@db/x -H 'Authorization: Bearer abcdefghijk'",
        );
        assert!(
            !t.contains("hunter2") && !t.contains(":pw@") && !t.contains("abcdefghijk"),
            "{t}"
        );
        assert!(text("aws AKIAIOSFODNN7EXAMPLE").contains("REDACTED"));
        let v = json(&json!({"command": "ls", "api_key": "k", "nested": {"token": "t"}}));
        assert_eq!(v["api_key"], "[REDACTED]");
        assert_eq!(v["nested"]["token"], "[REDACTED]");
        assert_eq!(v["command"], "ls");
    }
}
