//! Where a PostgreSQL statement's text really ends. The text wrapper (see [`super::pg_text`])
//! puts the statement inside parentheses, where a terminating `;` or a trailing comment after
//! it would break the subquery. This small lexer skips strings (`'…'`, `E'…'` with backslash
//! escapes), quoted identifiers, dollar-quoted bodies and comments (`--`, nested `/* */`), and
//! reports the end of the last token that is not `;`. It only ever sees statements PostgreSQL
//! has already parsed, and a wrong answer makes the wrapper fail to parse, never run something
//! else: the caller then reads the statement as it is.

/// The statement up to the end of its last significant token (no trailing `;`, comments or
/// whitespace).
pub fn without_terminator(sql: &str) -> &str {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut end = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        let start = i;
        i = match c {
            b'-' if next == Some(b'-') => line_end(b, i),
            b'/' if next == Some(b'*') => block_comment_end(b, i),
            _ if c.is_ascii_whitespace() || c == b';' => i + 1,
            b'\'' => {
                let escapes = start > 0
                    && matches!(b[start - 1], b'e' | b'E')
                    && (start < 2 || !is_ident(b[start - 2]));
                quote_end(b, i, b'\'', escapes)
            }
            b'"' => quote_end(b, i, b'"', false),
            b'$' if start == 0 || !is_ident(b[start - 1]) => dollar_end(b, i).unwrap_or(i + 1),
            _ => i + 1,
        };
        let significant = !(c.is_ascii_whitespace()
            || c == b';'
            || (c == b'-' && next == Some(b'-'))
            || (c == b'/' && next == Some(b'*')));
        if significant {
            end = i.min(b.len());
        }
    }
    // `end` always falls after a complete ASCII token or at the end of the text.
    sql.get(..end).unwrap_or(sql)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn line_end(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

fn block_comment_end(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// After the quote opened at `i` (doubled quotes stay inside; with `escapes`, so does `\x`).
fn quote_end(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// After a `$tag$ … $tag$` body opened at `i`, or `None` when `$` does not open one (`$1`).
fn dollar_end(b: &[u8], i: usize) -> Option<usize> {
    let close = b[i + 1..].iter().position(|&c| c == b'$')? + i + 1;
    let tag = &b[i..=close];
    let inner = &tag[1..tag.len() - 1];
    let valid =
        inner.first().is_none_or(|c| !c.is_ascii_digit()) && inner.iter().all(|&c| is_ident(c));
    if !valid {
        return None;
    }
    let body = close + 1;
    let found = b[body..].windows(tag.len()).position(|w| w == tag);
    Some(found.map_or(b.len(), |p| body + p + tag.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminators_and_trailing_comments_go() {
        let cases = [
            ("SELECT 1", "SELECT 1"),
            ("SELECT 1;", "SELECT 1"),
            ("SELECT 1 ; -- done;\n", "SELECT 1"),
            ("SELECT 1; /* a /* nested */ comment */ ;", "SELECT 1"),
            ("SELECT ';' ;", "SELECT ';'"),
            ("SELECT 'it''s;' -- x", "SELECT 'it''s;'"),
            ("SELECT E'a\\';' ;", "SELECT E'a\\';'"),
            ("SELECT $$ ; -- $$;", "SELECT $$ ; -- $$"),
            (
                "SELECT $t$ $$ ; $t$ AS \"a;\" ;",
                "SELECT $t$ $$ ; $t$ AS \"a;\"",
            ),
            ("SELECT 1 -- a\n, 2 ;", "SELECT 1 -- a\n, 2"),
            (
                "SELECT x FROM t WHERE a = $1;",
                "SELECT x FROM t WHERE a = $1",
            ),
            ("SELECT 'é' ;", "SELECT 'é'"),
            ("-- only a comment", ""),
        ];
        for (sql, want) in cases {
            assert_eq!(without_terminator(sql), want, "{sql}");
        }
    }
}
