//! Markdown (Data Ghost reports, agent transcripts) rendered for the console: raw HTML in the
//! text is shown as text, never run; relative links and images point into the report's own
//! directory under the console (`base`); only http(s), mailto and in-page links are kept as
//! links, and images load only from this origin (the CSP would block any other anyway).
//! Headings move one level down, so the page's own title stays its only `h1`.

use pulldown_cmark::{Alignment, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd, html};

/// One heading level down (`h6` stays `h6`).
fn below(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H2,
        HeadingLevel::H2 => HeadingLevel::H3,
        HeadingLevel::H3 => HeadingLevel::H4,
        HeadingLevel::H4 => HeadingLevel::H5,
        HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
    }
}

/// Whether `url` is relative to the document (no scheme, not rooted, not in-page).
fn relative(url: &str) -> bool {
    !url.contains(':') && !url.starts_with('/') && !url.starts_with('#')
}

fn link_ok(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    relative(url)
        || url.starts_with('#')
        || lower.starts_with("https://")
        || lower.starts_with("http://")
        || lower.starts_with("mailto:")
}

/// `text` as HTML; relative URLs are put under `base` (which ends with `/`).
pub fn render(text: &str, base: &str) -> String {
    let rebase = |url: CowStr<'_>| -> CowStr<'static> {
        if relative(&url) {
            CowStr::from(format!("{base}{url}"))
        } else {
            CowStr::from(url.into_string())
        }
    };
    let events = Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(
        |event| match event {
            Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let dest_url = if link_ok(&dest_url) {
                    rebase(dest_url)
                } else {
                    CowStr::from("#")
                };
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                })
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                // Only the report's own files load; anything else stays a broken image.
                let dest_url = if relative(&dest_url) {
                    rebase(dest_url)
                } else {
                    CowStr::from("")
                };
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                })
            }
            Event::Start(Tag::Heading {
                level,
                id,
                classes,
                attrs,
            }) => Event::Start(Tag::Heading {
                level: below(level),
                id,
                classes,
                attrs,
            }),
            Event::End(TagEnd::Heading(level)) => Event::End(TagEnd::Heading(below(level))),
            // Column alignment would be an inline style, which the console's CSP refuses.
            Event::Start(Tag::Table(columns)) => {
                Event::Start(Tag::Table(vec![Alignment::None; columns.len()]))
            }
            other => other,
        },
    );
    let mut out = String::new();
    html::push_html(&mut out, events);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_text_and_links_are_rebased_or_dropped() {
        let out = render(
            "<script>alert(1)</script>\n\n![c](rows.png) [r](report.md) [x](javascript:alert(1)) ![e](https://cdn.example/x.png)",
            "/reports/db/1/",
        );
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(out.contains("src=\"/reports/db/1/rows.png\""), "{out}");
        assert!(out.contains("href=\"/reports/db/1/report.md\""), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(!out.contains("cdn.example"), "{out}");
        let table = render("| a | b |\n|--:|:-:|\n| 1 | 2 |\n", "/");
        assert!(
            table.contains("<table>") && !table.contains("style="),
            "{table}"
        );
    }

    #[test]
    fn headings_move_one_level_down() {
        let out = render(
            "# Report

## Tables

###### Deep
",
            "/",
        );
        assert!(out.contains("<h2>Report</h2>"), "{out}");
        assert!(out.contains("<h3>Tables</h3>"), "{out}");
        assert!(
            out.contains("<h6>Deep</h6>") && !out.contains("<h1"),
            "{out}"
        );
    }
}
