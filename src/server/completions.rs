//! `completion/complete`: argument values a client can offer while the user types, read from
//! the same places the server reads them when the prompt or resource is used, so a completed
//! value always works: the `sre` prompt's `rule` from the alert rules file, the `data_ghost`
//! prompt's `database` from the policy's `sql.databases` (and `default`), and the resource
//! templates' `{rule}` and `{database}` (reports that have a `latest.md`).

use rmcp::ErrorData;
use rmcp::model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference};

use super::PiServer;
use super::resources::{ALERT_TEMPLATE, REPORT_TEMPLATE, latest_report_databases};
use crate::tools::sql::DEFAULT_DATABASE;

/// Answers one `completion/complete` request.
pub fn complete(
    server: &PiServer,
    request: &CompleteRequestParams,
) -> Result<CompleteResult, ErrorData> {
    let argument = request.argument.name.as_str();
    let candidates = match &request.r#ref {
        Reference::Prompt(p) => prompt_candidates(server, &p.name, argument)?,
        Reference::Resource(r) => template_candidates(server, &r.uri, argument)?,
        // `Reference` is non-exhaustive: a kind rmcp learns later has nothing to offer yet.
        _ => Vec::new(),
    };
    Ok(CompleteResult::new(matching(
        candidates,
        &request.argument.value,
    )))
}

/// The values of `argument` of prompt `prompt`; empty for a free-text argument.
fn prompt_candidates(
    server: &PiServer,
    prompt: &str,
    argument: &str,
) -> Result<Vec<String>, ErrorData> {
    let prompts = super::prompts::load_all(server.prompts_dir.as_deref())
        .map_err(|e| ErrorData::internal_error(e, None))?;
    let Some(found) = prompts.iter().find(|p| p.name == prompt) else {
        let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
        return Err(ErrorData::invalid_params(
            format!(
                "unknown prompt `{prompt}`; prompts/list shows them: {}",
                names.join(", ")
            ),
            None,
        ));
    };
    if !found.argument_names().any(|a| a == argument) {
        return Err(ErrorData::invalid_params(
            format!(
                "prompt `{prompt}` has no argument `{argument}`; its arguments: {}",
                found.argument_names().collect::<Vec<_>>().join(", ")
            ),
            None,
        ));
    }
    Ok(match (prompt, argument) {
        ("sre", "rule") => rule_ids(server),
        ("data_ghost", "database") => database_names(server),
        _ => Vec::new(),
    })
}

/// The values of `argument` of the resource template `uri`.
fn template_candidates(
    server: &PiServer,
    uri: &str,
    argument: &str,
) -> Result<Vec<String>, ErrorData> {
    let (parameter, values) = match uri {
        ALERT_TEMPLATE => ("rule", rule_ids(server)),
        REPORT_TEMPLATE => ("database", latest_report_databases(&server.reports_dir)),
        other => {
            return Err(ErrorData::invalid_params(
                format!(
                    "no resource template `{other}`; resources/templates/list shows them: \
                     {ALERT_TEMPLATE}, {REPORT_TEMPLATE}"
                ),
                None,
            ));
        }
    };
    if argument != parameter {
        return Err(ErrorData::invalid_params(
            format!("the template `{uri}` has one parameter, `{parameter}`, not `{argument}`"),
            None,
        ));
    }
    Ok(values)
}

fn rule_ids(server: &PiServer) -> Vec<String> {
    crate::monitor::mcp::rule_names(server.tools.workspace.primary())
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The names the `sql` and `ghost` tools accept: the policy's databases, and `default`.
fn database_names(server: &PiServer) -> Vec<String> {
    let mut names: Vec<String> = server
        .tools
        .guard
        .file()
        .sql
        .databases
        .keys()
        .cloned()
        .collect();
    if !names.iter().any(|n| n == DEFAULT_DATABASE) {
        names.push(DEFAULT_DATABASE.to_string());
    }
    names
}

/// The candidates that start with `typed` (ignoring case), then those that contain it, at most
/// [`CompletionInfo::MAX_VALUES`], with the total and whether more were left out.
fn matching(candidates: Vec<String>, typed: &str) -> CompletionInfo {
    let typed = typed.to_lowercase();
    let (mut prefixed, mut inside): (Vec<String>, Vec<String>) = candidates
        .into_iter()
        .filter(|c| c.to_lowercase().contains(&typed))
        .partition(|c| c.to_lowercase().starts_with(&typed));
    prefixed.sort();
    prefixed.dedup();
    inside.sort();
    inside.dedup();
    prefixed.extend(inside);
    let total = prefixed.len();
    prefixed.truncate(CompletionInfo::MAX_VALUES);
    let has_more = total > prefixed.len();
    let total = Some(u32::try_from(total).unwrap_or(u32::MAX));
    // Cannot fail: the list was cut to the maximum above.
    CompletionInfo::with_pagination(prefixed, total, has_more).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_matches_come_first_and_the_list_is_capped() {
        let names = ["orders-db", "prod-orders", "Orders", "users"].map(String::from);
        let info = matching(names.to_vec(), "ord");
        assert_eq!(info.values, ["Orders", "orders-db", "prod-orders"]);
        assert_eq!((info.total, info.has_more), (Some(3), Some(false)));
        let many: Vec<String> = (0..150).map(|i| format!("rule-{i:03}")).collect();
        let info = matching(many, "");
        assert_eq!(info.values.len(), CompletionInfo::MAX_VALUES);
        assert_eq!((info.total, info.has_more), (Some(150), Some(true)));
    }
}
