//! Well-known secret *shapes*: what a secret looks like when pi-mcp does not know its value
//! (private-key blocks, JWTs, vendor key formats, bearer tokens, credentials in URLs and
//! `password=` / `token:` assignments). One table serves two masters: the audit log and error
//! messages ([`Mode::Strict`]: whatever matches is masked, a false positive costs nothing) and tool
//! output the model reads ([`Mode::Output`]: a matched value is masked only when it looks like a
//! secret, so that `token: Option<String>` in source code or `PWD=/home/me` in `env` survive and
//! the model can still quote the file back in an `edit`).
//!
//! Cost: one case-insensitive Aho-Corasick pass over the text finds the literal triggers (the
//! prefilter); only the patterns whose trigger occurs run their regex.

use std::borrow::Cow;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::{Captures, Regex};

/// How hard to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Audit log arguments and messages: every match is masked.
    Strict,
    /// Tool output: a matched value is masked only when it looks like a secret.
    Output,
}

/// What a pattern's value must look like to be masked in [`Mode::Output`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The shape itself is specific enough (a private-key block, `AKIA...`, `ghp_...`).
    Always,
    /// The value of a `key=value` / `key: value` assignment (see [`assigned_secret`]).
    Assignment,
    /// A random-looking credential (see [`looks_random`]).
    Random,
}

struct Shape {
    re: Regex,
    /// Replacement template (`$1`-style groups).
    replace: &'static str,
    /// The capture group [`Check`] looks at.
    value_group: usize,
    check: Check,
}

/// The table (regex, lower-case trigger literals one of which occurs in every match, replacement,
/// value group, check), in the order the patterns run: whole blocks first, so that a later pattern does
/// not chew into a key block, and the generic assignment last, so that a value a specific
/// pattern already masked is not counted twice.
const TABLE: &[(&str, &[&str], &str, usize, Check)] = &[
    // A private key, from BEGIN to END (or to the end of the text when it was cut).
    (
        r"(?s)-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        &["private key-----"],
        "-----BEGIN ${1}PRIVATE KEY-----[REDACTED]-----END ${1}PRIVATE KEY-----",
        0,
        Check::Always,
    ),
    // The tail of a key block whose BEGIN line was cut off (bash keeps the end of the output).
    (
        r"(?m)(?:^[A-Za-z0-9+/=]{16,}\r?\n)+-----END ([A-Z0-9 ]*)PRIVATE KEY-----",
        &["private key-----"],
        "[REDACTED]-----END ${1}PRIVATE KEY-----",
        0,
        Check::Always,
    ),
    // JSON Web Tokens: header.payload.signature, both first parts base64url JSON (`eyJ`).
    (
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        &["eyj"],
        "[REDACTED-JWT]",
        0,
        Check::Always,
    ),
    (
        r"\b(AKIA|ASIA)[0-9A-Z]{16}\b",
        &["akia", "asia"],
        "[REDACTED-AWS-KEY]",
        0,
        Check::Always,
    ),
    (
        r"\b(?:xox[abprs]|xapp)-[A-Za-z0-9-]{10,}",
        &["xox", "xapp-"],
        "[REDACTED-SLACK-TOKEN]",
        0,
        Check::Always,
    ),
    // The token in a Slack incoming-webhook URL is the path itself.
    (
        r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_-]{8,}",
        &["hooks.slack.com"],
        "${1}[REDACTED]",
        0,
        Check::Always,
    ),
    (
        r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        "[REDACTED-GITHUB-TOKEN]",
        0,
        Check::Always,
    ),
    // OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-`), Stripe live keys, Google API keys.
    (
        r"\b(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_live_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35})",
        &["sk-", "sk_live_", "rk_live_", "aiza"],
        "[REDACTED-API-KEY]",
        0,
        Check::Always,
    ),
    (
        r"(?i)\b(bearer|basic)[ \t]+([A-Za-z0-9._~+/=-]{8,})",
        &["bearer", "basic"],
        "${1} [REDACTED]",
        2,
        Check::Random,
    ),
    // user:password@ in any URL.
    (
        r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):[^@/\s]+@",
        &["://"],
        "${1}:[REDACTED]@",
        0,
        Check::Always,
    ),
    // key=value, key: value, "key": "value" where the key names a secret.
    (
        r#"(?i)\b([A-Z0-9_.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[A-Z0-9_.-]*)("?[ \t]*[=:][ \t]*)("[^"\n]*"|'[^'\n]*'|[^\s'"]+)"#,
        &[
            "passw",
            "pwd",
            "secret",
            "token",
            "apikey",
            "api_key",
            "api-key",
            "accesskey",
            "access_key",
            "access-key",
        ],
        "${1}${2}[REDACTED]",
        3,
        Check::Assignment,
    ),
];

static SHAPES: LazyLock<Vec<Shape>> = LazyLock::new(|| {
    TABLE
        .iter()
        .map(|&(re, _, replace, value_group, check)| Shape {
            re: Regex::new(re).expect("static regex"),
            replace,
            value_group,
            check,
        })
        .collect()
});

/// Every trigger of every shape, and the shape each belongs to.
static PREFILTER: LazyLock<(AhoCorasick, Vec<usize>)> = LazyLock::new(|| {
    let mut literals = Vec::new();
    let mut owner = Vec::new();
    for (i, (_, triggers, ..)) in TABLE.iter().enumerate() {
        for t in *triggers {
            literals.push(*t);
            owner.push(i);
        }
    }
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(literals)
        .expect("static literals");
    (ac, owner)
});

/// Masks every shape in `text`; returns the text (borrowed when nothing matched) and how many
/// secrets were masked.
pub fn mask(text: &str, mode: Mode) -> (Cow<'_, str>, usize) {
    let (ac, owner) = &*PREFILTER;
    let mut wanted = [false; TABLE.len()];
    let mut any = false;
    for m in ac.find_overlapping_iter(text) {
        wanted[owner[m.pattern().as_usize()]] = true;
        any = true;
    }
    if !any {
        return (Cow::Borrowed(text), 0);
    }
    let mut out = Cow::Borrowed(text);
    let mut count = 0;
    for (shape, _) in SHAPES.iter().zip(wanted).filter(|(_, w)| *w) {
        let mut hits = 0;
        let replaced = shape.re.replace_all(&out, |caps: &Captures<'_>| {
            let whole = caps.get(0).map_or("", |m| m.as_str());
            if mode == Mode::Output && !passes(shape, caps) {
                return whole.to_string();
            }
            hits += 1;
            let mut dst = String::new();
            caps.expand(shape.replace, &mut dst);
            if mode == Mode::Output && shape.check == Check::Assignment {
                // What follows the value in the same word (`,user=x`) is not the secret.
                let value = caps.get(shape.value_group).map_or("", |m| m.as_str());
                dst.push_str(&value[unquoted_end(value)..]);
            }
            dst
        });
        if hits > 0 {
            count += hits;
            out = Cow::Owned(replaced.into_owned());
        }
    }
    (out, count)
}

fn passes(shape: &Shape, caps: &Captures<'_>) -> bool {
    let value = caps.get(shape.value_group).map_or("", |m| m.as_str());
    match shape.check {
        Check::Always => true,
        Check::Random => looks_random(value),
        Check::Assignment => {
            let key = caps.get(1).map_or("", |m| m.as_str());
            !pagination_key(key) && assigned_secret(value)
        }
    }
}

/// Keys whose "token" is a pagination cursor (`nextToken`, `page_token`), which the model needs
/// to ask for the next page and which grants nothing.
pub fn pagination_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["next", "page", "continuation", "cursor", "starting"]
        .iter()
        .any(|w| key.contains(w))
}

/// A credential-like string: long enough, and mixing letters with digits or symbols (words
/// such as `Bearer authentication` are not credentials).
pub fn looks_random(v: &str) -> bool {
    if v.len() < 8 {
        return false;
    }
    let letters = v.chars().any(|c| c.is_ascii_alphabetic());
    let digits = v.chars().any(|c| c.is_ascii_digit());
    let symbols = v.chars().any(|c| "+/=._~-".contains(c));
    let upper = v.chars().any(|c| c.is_ascii_uppercase());
    let lower = v.chars().any(|c| c.is_ascii_lowercase());
    (letters && digits)
        || (letters && symbols && v.len() >= 12)
        || (upper && lower && v.len() >= 20)
}

/// Values a key named like a secret often has without being one: types, literals, empties.
const NOT_SECRETS: &[&str] = &[
    "string",
    "str",
    "&str",
    "number",
    "int",
    "integer",
    "bool",
    "boolean",
    "null",
    "nil",
    "none",
    "true",
    "false",
    "yes",
    "no",
    "required",
    "optional",
    "empty",
    "secret",
    "password",
    "token",
    "redacted",
    "hidden",
    "undefined",
    "unset",
    "default",
    "object",
];

/// Where an unquoted value ends: at the first separator that, in output, starts the next
/// item (`password=hunter2,user=x`, `(token=abc)`); a quoted value is taken whole.
fn unquoted_end(raw: &str) -> usize {
    if raw.starts_with(['"', '\'']) {
        return raw.len();
    }
    raw.find([',', ')', '}', ']', '`']).unwrap_or(raw.len())
}

/// Whether the value of a secret-named key is a secret rather than code, a type, a
/// placeholder, a path, a URL or a count. Ordinary output is full of such keys
/// (`max_tokens: 4096`, `token: Option<String>`, `PWD=/home/me`, `password = input()`); what
/// stays masked are literal values such as `hunter2`, `"s3cr3t"` or a 40-character key.
pub fn assigned_secret(raw: &str) -> bool {
    let quoted = raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')));
    let v = if quoted { &raw[1..raw.len() - 1] } else { raw };
    let v = if quoted { v } else { &v[..unquoted_end(v)] };
    let lower = v.to_ascii_lowercase();
    if v.len() < 4
        || NOT_SECRETS.contains(&lower.as_str())
        || v.starts_with(['$', '{', '<', '%', '[', '(', '/', '~', '@', '#'])
        || v.starts_with("./")
        || v.starts_with("***")
        || lower.starts_with("xxx")
        || v.contains("://")
        || v.chars().all(|c| c.is_ascii_digit() || ".-_".contains(c))
    {
        return false;
    }
    if quoted {
        return !v.contains(['(', '{', '<']);
    }
    if v.contains(['(', '<', '{', '[', '`']) || v.ends_with(':') {
        return false; // code
    }
    // `self.token`, `config.password`, `api.example.com`: dotted identifiers and host names.
    let dotted = v.contains('.')
        && v.split('.').all(|p| {
            p.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if dotted {
        return false;
    }
    if !v.chars().any(|c| c.is_ascii_digit()) {
        // A word or identifier (`Option`, `get_password`, `my-token`) unless long and
        // mixed-case like a generated key.
        let wordish = v
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-');
        if wordish {
            let upper = v.chars().any(|c| c.is_ascii_uppercase());
            let lower_c = v.chars().any(|c| c.is_ascii_lowercase());
            return v.len() >= 20 && upper && lower_c && !v.contains(['_', '-']);
        }
    }
    true
}
