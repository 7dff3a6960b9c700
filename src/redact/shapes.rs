//! Well-known secret *shapes*: what a secret looks like when pi-mcp does not know its value
//! (private-key blocks, JWTs, vendor key formats, bearer tokens, credentials in URLs and
//! `password=` / `token:` assignments). One table serves two masters: the audit log and error
//! messages ([`Mode::Strict`]: whatever matches is masked, a false positive costs nothing) and tool
//! output the model reads ([`Mode::Output`]: a matched value is masked only when it looks like a
//! secret, so that `token: Option<String>` in source code or `PWD=/home/me` in `env` survive and
//! the model can still quote the file back in an `edit`).
//!
//! Cost: in output mode, one Aho-Corasick pass over the text finds the literal triggers (the
//! prefilter); only the patterns whose trigger occurs run their regex, and none of the regexes
//! uses a Unicode word boundary (which would push the regex engine off its fast DFA).

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
    /// The password of a URL, unless it is a placeholder (see [`url_password`]).
    UrlPassword,
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
    // A private key, from BEGIN to END (or to the end of the text when it was cut). Never
    // across a `"`, which a key does not contain: in a JSON line the string's end stays.
    (
        r#"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:[^"]*?-----END [A-Z0-9 ]*PRIVATE KEY-----|[^"]*)"#,
        &["PRIVATE KEY-----"],
        "-----BEGIN ${1}PRIVATE KEY-----[REDACTED]-----END ${1}PRIVATE KEY-----",
        0,
        Check::Always,
    ),
    // The tail of a key block whose BEGIN line was cut off (bash keeps the end of the output).
    (
        r"(?m)(?:^[A-Za-z0-9+/=]{16,}\r?\n)+-----END ([A-Z0-9 ]*)PRIVATE KEY-----",
        &["PRIVATE KEY-----"],
        "[REDACTED]-----END ${1}PRIVATE KEY-----",
        0,
        Check::Always,
    ),
    // JSON Web Tokens: header.payload.signature, both first parts base64url JSON (`eyJ`).
    (
        r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        &["eyJ"],
        "[REDACTED-JWT]",
        0,
        Check::Always,
    ),
    (
        r"(?-u:\b)(AKIA|ASIA)[0-9A-Z]{16}(?-u:\b)",
        &["AKIA", "ASIA"],
        "[REDACTED-AWS-KEY]",
        0,
        Check::Always,
    ),
    (
        r"(?-u:\b)(?:xox[abprs]|xapp)-[A-Za-z0-9-]{10,}",
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
        r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        "[REDACTED-GITHUB-TOKEN]",
        0,
        Check::Always,
    ),
    // OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-`), Stripe live keys, Google API keys.
    (
        r"(?-u:\b)(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_live_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35})",
        &["sk-", "sk_live_", "rk_live_", "AIza"],
        "[REDACTED-API-KEY]",
        0,
        Check::Always,
    ),
    (
        r"(?i)(?-u:\b)(bearer|basic)[ \t]+([A-Za-z0-9._~+/=-]{8,})",
        &["bearer", "basic"],
        "${1} [REDACTED]",
        2,
        Check::Random,
    ),
    // user:password@ in any URL.
    (
        r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*):([^@/\s]+)@",
        &["://"],
        "${1}:[REDACTED]@",
        2,
        Check::UrlPassword,
    ),
    // key=value, key: value, "key": "value" where the key names a secret. The key is matched
    // from its secret word on (`DB_PASSWORD` from `PASSWORD`): a leading `\b` and a lazy
    // prefix made this pattern forty times slower; [`full_key`] looks back for the rest.
    (
        r#"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[A-Z0-9_.-]*)(\\?"?[ \t]*[=:][ \t]*)(\\"[^"\\\n]*\\"|"[^"\n]*"|'[^'\n]*'|[^\s'"\\]+)"#,
        &["passw", "pwd", "secret", "token", "api", "access"],
        "${1}${2}[REDACTED]", // built by `assignment_mask`, which keeps quotes
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

/// Every trigger of every shape, and the shape each belongs to. The search is case-sensitive,
/// which keeps it on Aho-Corasick's SIMD path (a case-insensitive search of these literals is
/// about twenty times slower); the triggers of case-insensitive patterns are listed in their
/// lower-case, upper-case and capitalised spellings (`token`, `TOKEN`, `Token`), which covers
/// how keys are written (`DB_PASSWORD`, `apiKey`, `Authorization: Bearer`). A key spelled in
/// another mix (`PassWord=`) is not seen in tool output; the audit log's strict mode runs every
/// pattern and does not depend on this.
static PREFILTER: LazyLock<(AhoCorasick, Vec<Vec<usize>>)> = LazyLock::new(|| {
    let mut literals: Vec<String> = Vec::new();
    // The shapes each literal triggers (a key block's BEGIN and END patterns share theirs).
    let mut owner: Vec<Vec<usize>> = Vec::new();
    for (i, (re, triggers, ..)) in TABLE.iter().enumerate() {
        for t in *triggers {
            for spelling in spellings(t, re.starts_with("(?i)")) {
                match literals.iter().position(|l| *l == spelling) {
                    Some(at) => owner[at].push(i),
                    None => {
                        literals.push(spelling);
                        owner.push(vec![i]);
                    }
                }
            }
        }
    }
    let ac = AhoCorasickBuilder::new()
        .match_kind(MatchKind::LeftmostFirst)
        .build(&literals)
        .expect("static literals");
    (ac, owner)
});

/// `t` as written, and for a case-insensitive pattern also lower, upper and capitalised.
fn spellings(t: &str, any_case: bool) -> Vec<String> {
    if !any_case {
        return vec![t.to_string()];
    }
    let lower = t.to_ascii_lowercase();
    let mut capital = lower.clone();
    capital[..1].make_ascii_uppercase();
    vec![lower, t.to_ascii_uppercase(), capital]
}

/// How many literals the prefilter searches for (kept small enough for the SIMD searcher).
pub fn prefilter_size() -> usize {
    PREFILTER.1.len()
}

/// Masks every shape in `text`; returns the text (borrowed when nothing matched) and how many
/// secrets were masked. [`Mode::Output`] runs only the shapes whose trigger occurs;
/// [`Mode::Strict`] runs them all (its texts are short arguments and messages).
pub fn mask(text: &str, mode: Mode) -> (Cow<'_, str>, usize) {
    let mut wanted = [mode == Mode::Strict; TABLE.len()];
    if mode == Mode::Output {
        let (ac, owner) = &*PREFILTER;
        let mut any = false;
        for m in ac.find_iter(text) {
            for &shape in &owner[m.pattern().as_usize()] {
                wanted[shape] = true;
            }
            any = true;
        }
        if !any {
            return (Cow::Borrowed(text), 0);
        }
    }
    let mut out = Cow::Borrowed(text);
    let mut count = 0;
    for (shape, _) in SHAPES.iter().zip(wanted).filter(|(_, w)| *w) {
        let hay: &str = &out;
        // A plain search first: `replace_all` sets up capture slots even when nothing matches,
        // and in strict mode every shape is tried on every string (issue 14).
        if !shape.re.is_match(hay) {
            continue;
        }
        let mut hits = 0;
        let replaced = shape.re.replace_all(hay, |caps: &Captures<'_>| {
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let skip = match mode {
                Mode::Output => !passes(shape, caps, hay),
                Mode::Strict => shape.check == Check::Assignment && json_literal(caps),
            };
            if skip {
                return whole.to_string();
            }
            hits += 1;
            let mut dst = String::new();
            if shape.check == Check::Assignment {
                assignment_mask(caps, mode, &mut dst);
            } else {
                caps.expand(shape.replace, &mut dst);
            }
            dst
        });
        if hits > 0 {
            count += hits;
            let replaced = replaced.into_owned();
            out = Cow::Owned(replaced);
        }
    }
    (out, count)
}

/// A `"key":` separator: the value is JSON, and a comma ends it.
fn json_separator(sep: &str) -> bool {
    sep.contains('"')
}

/// `"input_tokens":123` or `"token":null` in a JSON text: a number or literal, not a secret,
/// and masking it would break the JSON (the agent's transcript is redacted line by line).
fn json_literal(caps: &Captures<'_>) -> bool {
    let sep = caps.get(2).map_or("", |m| m.as_str());
    let value = caps.get(3).map_or("", |m| m.as_str());
    let value = &value[..unquoted_end(value)];
    json_separator(sep)
        && (matches!(value, "true" | "false" | "null")
            || (!value.is_empty()
                && value
                    .chars()
                    .all(|c| c.is_ascii_digit() || ".-+eE".contains(c))))
}

/// `key=[REDACTED]`, keeping the value's quotes (`"token": "[REDACTED]"` stays JSON) and, in
/// output, what follows an unquoted value in the same word (`,user=x`), which is not the secret.
fn assignment_mask(caps: &Captures<'_>, mode: Mode, dst: &mut String) {
    let group = |i| caps.get(i).map_or("", |m| m.as_str());
    let value = group(3);
    dst.push_str(group(1));
    dst.push_str(group(2));
    match quote_of(value) {
        Some(q) => {
            dst.push_str(q);
            dst.push_str(MASK);
            dst.push_str(q);
        }
        None => {
            dst.push_str(MASK);
            if mode == Mode::Output || json_separator(group(2)) {
                dst.push_str(&value[unquoted_end(value)..]);
            }
        }
    }
}

const MASK: &str = "[REDACTED]";

/// The quote around a quoted value: `"`, `'`, or `\"` inside a JSON string.
fn quote_of(value: &str) -> Option<&'static str> {
    ["\\\"", "\"", "'"]
        .into_iter()
        .find(|q| value.len() >= 2 * q.len() && value.starts_with(q) && value.ends_with(q))
}

fn passes(shape: &Shape, caps: &Captures<'_>, hay: &str) -> bool {
    let value = caps.get(shape.value_group).map_or("", |m| m.as_str());
    match shape.check {
        Check::Always => true,
        Check::Random => looks_random(value),
        Check::UrlPassword => url_password(value),
        Check::Assignment => {
            let key = caps
                .get(1)
                .map_or("", |m| full_key(hay, m.start(), m.end()));
            !pagination_key(key) && assigned_secret(value)
        }
    }
}

/// The whole key around a matched secret word: `nextToken` for the `Token` at `start..end`.
fn full_key(hay: &str, start: usize, end: usize) -> &str {
    let from = hay[..start]
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c)))
        .map_or(0, |i| i + 1);
    &hay[from..end]
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

/// Whether the password of a URL is one, rather than documentation's `user:pass@`,
/// `USER:PASSWORD@`, `u:p@` or `pi_reader:…@`.
pub fn url_password(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.chars().count() >= 3
        && !NOT_SECRETS.contains(&lower.as_str())
        && !matches!(lower.as_str(), "pass" | "passwd" | "pw" | "pwd" | "secret")
        && !v.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        && !is_placeholder(v)
}

/// `${VAR}`, `$(cmd)`, `<your token>`, `{{ secret }}`, `sk-...`, `***`, `xxxx`.
fn is_placeholder(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    v.starts_with(['$', '{', '<'])
        || v.ends_with("...")
        || v.ends_with('…')
        || v.starts_with("***")
        || lower.starts_with("xxx")
        || v.chars().all(|c| ".*…".contains(c))
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
/// item (`password=hunter2,user=x`, `(token=abc)`, `token = None;`); a quoted value is taken
/// whole.
fn unquoted_end(raw: &str) -> usize {
    if quote_of(raw).is_some() {
        return raw.len();
    }
    raw.find([',', ';', ')', '}', ']', '`'])
        .unwrap_or(raw.len())
}

/// Whether the value of a secret-named key is a secret rather than code, a type, a
/// placeholder, a path, a URL or a count. Ordinary output is full of such keys
/// (`max_tokens: 4096`, `token: Option<String>`, `PWD=/home/me`, `password = input()`); what
/// stays masked are literal values such as `hunter2`, `"s3cr3t"` or a 40-character key.
pub fn assigned_secret(raw: &str) -> bool {
    let quote = quote_of(raw);
    let quoted = quote.is_some();
    let q = quote.map_or(0, str::len);
    let v = &raw[q..raw.len() - q];
    let v = if quoted { v } else { &v[..unquoted_end(v)] };
    let lower = v.to_ascii_lowercase();
    if v.len() < 4
        || NOT_SECRETS.contains(&lower.as_str())
        || is_placeholder(v)
        // Code and paths: `&str`, `Token::Eof`, `token == x`, `=> x`, `/home/me`, `@param`.
        || v.starts_with(['%', '[', '(', '/', '~', '@', '#', '&', ':', '=', '>', '|'])
        || v.starts_with("./")
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
