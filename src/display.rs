//! Text that callers chose (a command, a directory, a client's name) made safe to show on
//! each surface a human reads it on. On a terminal, control and format characters are
//! escaped, so nothing moves the cursor, clears a line or reverses the text after it (a
//! command that paints itself as another). In Slack mrkdwn, `&`, `<` and `>` are escaped as
//! Slack requires, so no mention, link or formatting can be injected. The console needs
//! neither: its templates escape HTML. Hand-written because the rules are these few lines.

/// Unicode characters that change how text around them is shown or hide themselves: bidi
/// embeddings, overrides and isolates, zero-width characters, the byte order mark, invisible
/// operators, line and paragraph separators, tag characters.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Whether `c` would not show as itself on a terminal.
fn hidden(c: char) -> bool {
    c.is_control() || is_format(c)
}

/// `text` with each character `odd` picks written as its escape (`\n`, `\u{1b}`, `\u{202e}`);
/// `None` when there is none.
fn escaped(text: &str, odd: impl Fn(char) -> bool) -> Option<String> {
    if !text.chars().any(&odd) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if odd(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `text` for a terminal: every control or format character written as an escape (`\n`,
/// `\u{1b}`, `\u{202e}`), everything else as it is.
pub fn terminal(text: &str) -> String {
    escaped(text, hidden).unwrap_or_else(|| text.to_string())
}

/// JSON text for a terminal: every control or format character JSON leaves as it is (DEL,
/// the C1 controls a terminal reads as CSI or OSC, bidi and zero-width characters) written as
/// `\uXXXX` escapes, which JSON readers decode to the same text.
pub fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // JSON's own whitespace between values stays (inside strings JSON escapes it already).
        if hidden(c) && !matches!(c, '\n' | '\r' | '\t') {
            for unit in c.encode_utf16(&mut [0u16; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` for a page or a message a human judges it on (the console, Slack): control and
/// format characters written as escapes, except newlines and tabs, which show as themselves;
/// `true` when anything was escaped (the text would not look like what it is).
pub fn visible(text: &str) -> (String, bool) {
    match escaped(text, |c| hidden(c) && c != '\n' && c != '\t') {
        Some(shown) => (shown, true),
        None => (text.to_string(), false),
    }
}

/// A short label a caller chose (a client's name): control and format characters dropped,
/// at most `max` characters.
pub fn label(text: &str, max: usize) -> String {
    text.chars().filter(|c| !hidden(*c)).take(max).collect()
}

/// `text` inside Slack mrkdwn: `&`, `<`, `>` escaped (Slack's own rule), so `<!channel>`,
/// `<https://…|…>` and the like stay text.
pub fn slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminals_see_escapes_not_effects() {
        assert_eq!(terminal("ls -la"), "ls -la");
        assert_eq!(
            terminal("rm x # \r\x1b[2Kls\u{202e}txt"),
            "rm x # \\r\\u{1b}[2Kls\\u{202e}txt"
        );
        assert_eq!(terminal("a\nb"), "a\\nb");
        let pretty = json_for_terminal(&serde_json::to_string_pretty(&["a"]).unwrap());
        assert_eq!(serde_json::from_str::<Vec<String>>(&pretty).unwrap(), ["a"]);
        let raw = "x\u{202e}y\n\u{9b}2K\u{7f}\u{e0041}";
        let json = json_for_terminal(&serde_json::to_string(raw).unwrap());
        assert_eq!(json, "\"x\\u202ey\\n\\u009b2K\\u007f\\udb40\\udc41\"");
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), raw);
        assert_eq!(visible("a\n\tb"), ("a\n\tb".to_string(), false));
        assert_eq!(
            visible("rm -rf / #\u{202e}txt.sh"),
            ("rm -rf / #\\u{202e}txt.sh".to_string(), true)
        );
    }

    #[test]
    fn labels_lose_what_hides_and_slack_text_cannot_mention() {
        assert_eq!(label("evil\u{202e}client\u{7}", 80), "evilclient");
        assert_eq!(label("abcdef", 3), "abc");
        assert_eq!(
            slack("<!channel> & <https://x|y>"),
            "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"
        );
    }
}
