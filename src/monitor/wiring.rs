//! Connects the monitor's narrow traits to the real tools (`tools::cloudwatch`, `tools::sql`,
//! `tools::notify`), so the monitor owns no second copy of AWS, database or channel code.

use crate::app::App;

use super::evaluate::{DEFAULT_CONCURRENCY, Monitor};
use super::sources::Sources;

/// A monitor over `app`'s store, audit log and tools; `client` names it in the audit log.
pub async fn monitor(app: &App, client: &str) -> Monitor {
    Monitor {
        store: app.store.clone(),
        audit: app.audit.clone(),
        sources: Sources::default(),
        sender: None,
        root: app.tools.workspace.primary().to_path_buf(),
        client: client.to_string(),
        concurrency: DEFAULT_CONCURRENCY,
    }
}
