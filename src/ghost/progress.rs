//! Progress of a run over many tables: a bar on stderr when stderr is a terminal, log lines
//! otherwise, and an optional callback (for MCP progress notifications or a daemon).

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Called with `(tables done, tables in all, table being profiled)`.
pub type ProgressFn = Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

/// Where progress goes.
#[derive(Clone, Default)]
pub struct ProgressSink {
    /// Draw a bar when stderr is a terminal (else log lines).
    pub terminal_bar: bool,
    pub callback: Option<ProgressFn>,
}

/// Progress of one run.
pub struct RunProgress {
    bar: Option<ProgressBar>,
    total: usize,
    database: String,
    callback: Option<ProgressFn>,
}

impl ProgressSink {
    pub fn start(&self, total: usize, database: &str) -> RunProgress {
        let bar = (self.terminal_bar && std::io::stderr().is_terminal()).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("ghost {prefix} [{bar:30}] {pos}/{len} {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(database.to_string());
            bar
        });
        RunProgress {
            bar,
            total,
            database: database.to_string(),
            callback: self.callback.clone(),
        }
    }
}

impl RunProgress {
    /// Table `done + 1` of the run, `table`, is being profiled.
    pub fn step(&self, done: usize, table: &str) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.set_message(table.to_string());
            }
            None => tracing::info!(
                "ghost {}: profiling table {}/{}: {table}",
                self.database,
                done + 1,
                self.total
            ),
        }
        if let Some(cb) = &self.callback {
            cb(done, self.total, table);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(cb) = &self.callback {
            cb(self.total, self.total, "");
        }
    }
}
