//! Calls hidden in string literals. Some functions run SQL handed to them as text (`ts_stat`,
//! `query_to_xml`, an extension's `eval`), and the statement's own tokens never look inside a
//! literal. The deny-list names the functions we know; this scan is the fail-closed layer for
//! the ones we do not: every literal is tokenized as SQL of the same dialect (recursively, for
//! literals in literals) and the names it calls are judged like the statement's own calls.

use sqlparser::tokenizer::{Token, Tokenizer};

use super::SqlDialect;
use super::functions::{called_names, denied_function, significant};

/// How deeply literals nested in literals are opened; deeper text is judged word by word.
const MAX_LITERAL_DEPTH: usize = 4;

/// The names that string literals in `tokens` call (`f(` inside the literal's text, at any
/// depth). A literal that does not tokenize as SQL yields every word of it that the deny-list
/// names, called or not, so text the tokenizer cannot read still cannot hide a denied call.
pub fn literal_calls(tokens: &[Token], dialect: SqlDialect) -> Vec<String> {
    let mut names = Vec::new();
    collect(tokens, dialect, 0, &mut names);
    names.sort();
    names.dedup();
    names
}

fn collect(tokens: &[Token], dialect: SqlDialect, depth: usize, names: &mut Vec<String>) {
    for text in tokens.iter().filter_map(literal_text) {
        let inner = (depth < MAX_LITERAL_DEPTH)
            .then(|| {
                Tokenizer::new(dialect.parser_dialect().as_ref(), &text)
                    .tokenize()
                    .ok()
            })
            .flatten();
        match inner {
            Some(inner) => {
                let inner = significant(inner);
                names.extend(called_names(&inner));
                collect(&inner, dialect, depth + 1, names);
            }
            None => names.extend(denied_words(&text, dialect)),
        }
    }
}

/// The words of `text` (identifier characters) that the deny-list names.
fn denied_words(text: &str, dialect: SqlDialect) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty() && denied_function(w, dialect).is_some())
        .map(str::to_string)
        .collect()
}

/// The text of a string literal in any quoting style (hex literals decoded), or `None`.
fn literal_text(token: &Token) -> Option<String> {
    let text = match token {
        Token::SingleQuotedString(s)
        | Token::DoubleQuotedString(s)
        | Token::TripleSingleQuotedString(s)
        | Token::TripleDoubleQuotedString(s)
        | Token::SingleQuotedByteStringLiteral(s)
        | Token::DoubleQuotedByteStringLiteral(s)
        | Token::TripleSingleQuotedByteStringLiteral(s)
        | Token::TripleDoubleQuotedByteStringLiteral(s)
        | Token::SingleQuotedRawStringLiteral(s)
        | Token::DoubleQuotedRawStringLiteral(s)
        | Token::TripleSingleQuotedRawStringLiteral(s)
        | Token::TripleDoubleQuotedRawStringLiteral(s)
        | Token::NationalStringLiteral(s)
        | Token::EscapedStringLiteral(s)
        | Token::UnicodeStringLiteral(s) => s.clone(),
        Token::DollarQuotedString(d) => d.value.clone(),
        Token::QuoteDelimitedStringLiteral(q) | Token::NationalQuoteDelimitedStringLiteral(q) => {
            q.value.clone()
        }
        Token::HexStringLiteral(hex) => hex_text(hex),
        _ => return None,
    };
    Some(text)
}

/// Hex digits decoded to text (invalid UTF-8 replaced); odd or bad digits keep the digits.
fn hex_text(hex: &str) -> String {
    let bytes: Option<Vec<u8>> = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.len() == 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect();
    bytes.map_or_else(
        || hex.to_string(),
        |b| String::from_utf8_lossy(&b).into_owned(),
    )
}
