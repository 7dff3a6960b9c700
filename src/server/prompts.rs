//! MCP prompts kept as Markdown files (`prompts/*.md`) with their arguments declared in YAML
//! front matter, so users edit them without recompiling. Built-in copies serve when the
//! workspace has no `prompts/` directory.

use std::collections::BTreeMap;
use std::path::Path;

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde::Deserialize;

/// Prompts compiled into the binary, used when no prompts directory exists.
const BUILT_IN: &[(&str, &str)] = &[
    ("sre.md", include_str!("../../prompts/sre.md")),
    ("data_ghost.md", include_str!("../../prompts/data_ghost.md")),
];

/// Front matter of a prompt file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    name: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    arguments: Vec<ArgumentSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ArgumentSpec {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
}

/// A loaded prompt template.
#[derive(Debug, Clone)]
pub struct PromptFile {
    pub name: String,
    meta: FrontMatter,
    body: String,
}

/// Parses one prompt file (`---` YAML front matter, then the Markdown template).
pub fn parse(text: &str, file: &str) -> Result<PromptFile, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or_else(|| format!("{file}: a prompt file starts with `---` front matter"))?;
    let end = rest
        .find("\n---")
        .ok_or_else(|| format!("{file}: front matter is not closed with `---`"))?;
    let yaml = &rest[..end];
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']).to_string();
    let meta: FrontMatter = serde_yaml_ng::from_str(yaml).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line() + 1, l.column()))
            .unwrap_or_default();
        format!("{file}{at}: front matter: {e}")
    })?;
    Ok(PromptFile {
        name: meta.name.clone(),
        meta,
        body,
    })
}

/// Loads every `*.md` prompt from `dir`, or the built-ins when `dir` is `None`.
pub fn load_all(dir: Option<&Path>) -> Result<Vec<PromptFile>, String> {
    let mut out = Vec::new();
    match dir {
        None => {
            for (file, text) in BUILT_IN {
                out.push(parse(text, file)?);
            }
        }
        Some(dir) => {
            let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect();
            paths.sort();
            for p in paths {
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                match parse(&text, &p.display().to_string()) {
                    Ok(prompt) => out.push(prompt),
                    // One broken file does not hide the others; the error goes to the log.
                    Err(e) => tracing::error!("skipping prompt: {e}"),
                }
            }
        }
    }
    Ok(out)
}

/// The prompts' health for `pi-mcp doctor`: which templates the server will offer and from
/// where; a file that does not parse is a warning (the others are still offered).
pub fn health(dir: Option<&Path>) -> Vec<crate::health::Check> {
    use crate::health::Check;
    let Some(dir) = dir else {
        let names: Vec<String> = BUILT_IN
            .iter()
            .filter_map(|(file, text)| parse(text, file).ok().map(|p| p.name))
            .collect();
        return vec![Check::ok(
            "prompts",
            format!("{} built-in ({})", names.len(), names.join(", ")),
        )];
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            return vec![Check::fail(
                "prompts",
                format!("{}: {e}", dir.display()),
                "correct --prompts / PI_MCP_PROMPTS, or remove it to use the built-in prompts",
            )];
        }
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    paths.sort();
    let mut names = Vec::new();
    let mut out = Vec::new();
    for p in &paths {
        let parsed = std::fs::read_to_string(p)
            .map_err(|e| format!("{}: {e}", p.display()))
            .and_then(|text| parse(&text, &p.display().to_string()));
        match parsed {
            Ok(prompt) => names.push(prompt.name),
            Err(e) => out.push(Check::warn(
                "prompt",
                e,
                "fix the front matter (---, name, description, arguments, ---); the file is \
                 skipped until then",
            )),
        }
    }
    let summary = if names.is_empty() {
        Check::warn(
            "prompts",
            format!("no usable *.md prompt in {}", dir.display()),
            "add prompt files, or remove the directory to use the built-in prompts",
        )
    } else {
        Check::ok(
            "prompts",
            format!(
                "{} in {} ({})",
                names.len(),
                dir.display(),
                names.join(", ")
            ),
        )
    };
    out.insert(0, summary);
    out
}

impl PromptFile {
    /// The names of the arguments the prompt declares.
    pub fn argument_names(&self) -> impl Iterator<Item = &str> {
        self.meta.arguments.iter().map(|a| a.name.as_str())
    }

    pub fn to_mcp(&self) -> Prompt {
        let args = self
            .meta
            .arguments
            .iter()
            .map(|a| {
                let mut arg = PromptArgument::new(a.name.clone()).with_required(a.required);
                let mut desc = a.description.clone().unwrap_or_default();
                if let Some(d) = &a.default {
                    desc = format!("{desc} (default: {d})").trim().to_string();
                }
                if !desc.is_empty() {
                    arg = arg.with_description(desc);
                }
                arg
            })
            .collect();
        let mut p = Prompt::new(self.name.clone(), self.meta.description.clone(), Some(args));
        if let Some(t) = &self.meta.title {
            p = p.with_title(t.clone());
        }
        p
    }

    /// Fills `{{argument}}` placeholders. Missing required arguments and unknown ones are errors.
    pub fn render(
        &self,
        args: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<GetPromptResult, String> {
        let mut values: BTreeMap<&str, String> = BTreeMap::new();
        for (k, v) in args {
            if !self.meta.arguments.iter().any(|a| &a.name == k) {
                let known: Vec<&str> = self
                    .meta
                    .arguments
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect();
                return Err(format!(
                    "prompt `{}` has no argument `{k}`; its arguments: {}",
                    self.name,
                    known.join(", ")
                ));
            }
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            values.insert(k.as_str(), text);
        }
        let mut body = self.body.clone();
        for a in &self.meta.arguments {
            let value = match (values.get(a.name.as_str()), &a.default) {
                (Some(v), _) if !v.is_empty() => v.clone(),
                (_, Some(d)) => d.clone(),
                _ if a.required => {
                    return Err(format!(
                        "prompt `{}` needs the argument `{}`",
                        self.name, a.name
                    ));
                }
                _ => String::new(),
            };
            body = body.replace(&format!("{{{{{}}}}}", a.name), &value);
        }
        let mut result = GetPromptResult::new(vec![PromptMessage::new_text(Role::User, body)]);
        result.description = self.meta.description.clone();
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_prompts_parse_and_render() {
        let all = load_all(None).unwrap();
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["sre", "data_ghost"]);
        let sre = &all[0];
        let mut args = serde_json::Map::new();
        args.insert("incident".into(), "5xx spike on checkout".into());
        let r = sre.render(&args).unwrap();
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("5xx spike on checkout") && !text.contains("{{incident}}"));
        assert!(sre.render(&serde_json::Map::new()).is_err());
    }

    #[test]
    fn bad_front_matter_names_the_file() {
        let e = parse("---\nname: [\n---\nbody", "x.md").unwrap_err();
        assert!(e.starts_with("x.md"), "{e}");
        assert!(
            parse("no front matter", "y.md")
                .unwrap_err()
                .contains("y.md")
        );
    }
}
