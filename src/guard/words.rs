//! Static evaluation of shell words: what a word becomes after quote removal, when that can be
//! known without running anything, and which nested commands (`$(...)`, backticks) it would run.

use brush_parser::ParserOptions;
use brush_parser::word::{self, TildeExpr, WordPiece, WordPieceWithSource};

/// A word as the guard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The value after quote removal; for a dynamic word, the raw text as written.
    pub text: String,
    /// True when the value depends on the environment (variables, substitutions, globs,
    /// brace expansion): the guard cannot know what bash will pass.
    pub dynamic: bool,
}

impl Word {
    pub fn literal(text: impl Into<String>) -> Self {
        Word {
            text: text.into(),
            dynamic: false,
        }
    }
}

/// The result of evaluating one word.
#[derive(Debug, Default)]
pub struct Evaluated {
    pub word: Option<Word>,
    /// Command strings the word would execute (command substitutions), to be judged too.
    pub substitutions: Vec<String>,
    /// Constructs the guard could not account for.
    pub problems: Vec<String>,
    /// True when the word has an unquoted glob or brace expansion (may become several words).
    pub expands: bool,
}

/// Evaluates a raw word as written in the source.
pub fn evaluate(raw: &str, options: &ParserOptions) -> Evaluated {
    let mut out = Evaluated::default();
    let pieces = match word::parse(raw, options) {
        Ok(p) => p,
        Err(e) => {
            out.problems
                .push(format!("cannot parse the word `{raw}`: {e}"));
            out.word = Some(Word {
                text: raw.to_string(),
                dynamic: true,
            });
            return out;
        }
    };
    let mut text = String::new();
    let mut dynamic = false;
    walk_pieces(&pieces, raw, false, &mut text, &mut dynamic, &mut out);
    if has_unquoted_expansion(&pieces, options) {
        out.expands = true;
        dynamic = true;
    }
    // A dynamic word keeps its expansions as written (`$HOME`, `$(cmd)`), quotes removed.
    out.word = Some(Word { text, dynamic });
    out
}

fn walk_pieces(
    pieces: &[WordPieceWithSource],
    raw: &str,
    quoted: bool,
    text: &mut String,
    dynamic: &mut bool,
    out: &mut Evaluated,
) {
    for p in pieces {
        match &p.piece {
            WordPiece::Text(t) => text.push_str(t),
            WordPiece::SingleQuotedText(t) => text.push_str(t),
            WordPiece::AnsiCQuotedText(t) => text.push_str(&decode_ansi_c(t)),
            WordPiece::EscapeSequence(s) => {
                // Outside double quotes a backslash quotes the next character; inside, it only
                // escapes `$`, `` ` ``, `"`, `\` and newline.
                let rest = s.strip_prefix('\\').unwrap_or(s);
                if quoted && !matches!(rest, "$" | "`" | "\"" | "\\" | "\n") {
                    text.push_str(s);
                } else if rest != "\n" {
                    text.push_str(rest);
                }
            }
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => {
                walk_pieces(inner, raw, true, text, dynamic, out)
            }
            WordPiece::TildeExpansion(t) => text.push_str(&tilde_text(t)),
            WordPiece::ParameterExpansion(_) => {
                *dynamic = true;
                let src = raw.get(p.start_index..p.end_index).unwrap_or(raw);
                text.push_str(src);
                if src.contains("$(") || src.contains('`') || src.contains("<(") {
                    out.problems.push(format!(
                        "a command substitution inside the parameter expansion `{src}`"
                    ));
                }
                if evaluates_value_as_code(src) {
                    out.problems.push(format!(
                        "`{src}` evaluates a variable's value as a prompt or a variable name, which runs any command substitution in it"
                    ));
                }
            }
            WordPiece::CommandSubstitution(cmd) | WordPiece::BackquotedCommandSubstitution(cmd) => {
                *dynamic = true;
                text.push_str(raw.get(p.start_index..p.end_index).unwrap_or(cmd));
                out.substitutions.push(cmd.clone());
            }
            WordPiece::ArithmeticExpression(expr) => {
                *dynamic = true;
                text.push_str(raw.get(p.start_index..p.end_index).unwrap_or(&expr.value));
                collect_arithmetic(&expr.value, out);
            }
        }
    }
}

/// `${x@P}` (prompt expansion) and `${!x}` (indirection): the value is expanded again, and a
/// `$(cmd)` or an array subscript in it runs. `${!prefix*}` and `${!arr[@]}` only list names.
fn evaluates_value_as_code(src: &str) -> bool {
    let Some(body) = src.strip_prefix("${").and_then(|b| b.strip_suffix('}')) else {
        return false;
    };
    body.ends_with("@P")
        || (body.starts_with('!')
            && !body.ends_with(['*', '@'])
            && !body.ends_with("[@]")
            && !body.ends_with("[*]"))
}

/// Finds command substitutions inside an arithmetic expression such as `$(( $(cmd) + 1 ))`.
pub fn collect_arithmetic(expr: &str, out: &mut Evaluated) {
    if expr.contains("$(") || expr.contains('`') {
        let nested = evaluate(
            &format!("\"{}\"", expr.replace('"', "\\\"")),
            &ParserOptions::default(),
        );
        out.substitutions.extend(nested.substitutions);
        out.problems.extend(nested.problems);
    }
}

fn tilde_text(t: &TildeExpr) -> String {
    match t {
        TildeExpr::Home => "~".to_string(),
        TildeExpr::UserHome(u) => format!("~{u}"),
        TildeExpr::WorkingDir => "~+".to_string(),
        TildeExpr::OldWorkingDir => "~-".to_string(),
        _ => "~".to_string(),
    }
}

/// True when an unquoted part of the word holds glob characters or a brace expansion.
fn has_unquoted_expansion(pieces: &[WordPieceWithSource], options: &ParserOptions) -> bool {
    pieces.iter().any(|p| match &p.piece {
        WordPiece::Text(t) => {
            t.contains(['*', '?'])
                || t.find('[').is_some_and(|i| t[i + 1..].contains(']'))
                || (t.contains('{')
                    && matches!(word::parse_brace_expansions(t, options), Ok(Some(parts))
                        if parts.iter().any(|x| matches!(x, word::BraceExpressionOrText::Expr(_)))))
        }
        _ => false,
    })
}

/// Decodes the body of an ANSI-C quoted string (`$'...'`).
pub fn decode_ansi_c(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push('\\');
            break;
        };
        let mut radix_digits = |radix: u32, max: usize, first: Option<char>| {
            let mut v: u32 = 0;
            let mut n = 0;
            if let Some(f) = first {
                v = f.to_digit(radix).unwrap_or(0);
                n = 1;
            }
            while n < max {
                match chars.peek().and_then(|c| c.to_digit(radix)) {
                    Some(d) => {
                        v = v * radix + d;
                        n += 1;
                        chars.next();
                    }
                    None => break,
                }
            }
            char::from_u32(v).unwrap_or('\u{FFFD}')
        };
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'e' | 'E' => out.push('\u{1b}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            'x' => out.push(radix_digits(16, 2, None)),
            'u' => out.push(radix_digits(16, 4, None)),
            'U' => out.push(radix_digits(16, 8, None)),
            '0'..='7' => out.push(radix_digits(8, 3, Some(e))),
            'c' => {
                if let Some(n) = chars.next() {
                    out.push(char::from_u32((n as u32) & 0x1f).unwrap_or('\u{FFFD}'));
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(raw: &str) -> Evaluated {
        evaluate(raw, &ParserOptions::default())
    }

    #[test]
    fn quote_removal_reveals_the_real_word() {
        for raw in [
            r"r\m",
            r#""r""m""#,
            r"$'\x72\x6d'",
            r"\rm",
            "'rm'",
            r"$'\162m'",
        ] {
            let w = eval(raw).word.unwrap();
            assert_eq!(w.text, "rm", "{raw}");
            assert!(!w.dynamic, "{raw}");
        }
    }

    #[test]
    fn variables_substitutions_globs_and_braces_are_dynamic() {
        for raw in [
            "$X",
            "${X}",
            "/usr/bin/r?",
            "{rm,-rf}",
            "$(echo rm)",
            "`echo rm`",
            "r*",
        ] {
            assert!(eval(raw).word.unwrap().dynamic, "{raw}");
        }
        assert_eq!(
            eval("a$(rm -rf /)").substitutions,
            vec!["rm -rf /".to_string()]
        );
        assert_eq!(eval("`ls`").substitutions, vec!["ls".to_string()]);
        assert!(!eval("'*.log'").word.unwrap().dynamic);
    }

    #[test]
    fn substitutions_in_arithmetic_and_defaults_are_found() {
        let e = eval("$(( $(rm -rf /) + 1 ))");
        assert!(e.substitutions.iter().any(|s| s.contains("rm -rf /")));
        assert!(!eval("${X:-$(rm -rf /)}").problems.is_empty());
    }
}
