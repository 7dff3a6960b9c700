//! CloudWatch Logs: FilterLogEvents followed across pages, up to a limit (for the tool and
//! for showing matches) or to the end (for counting matches in a window, as `log_keyword`
//! alert rules do).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CloudWatch, CloudWatchError, sdk};

/// Largest page FilterLogEvents returns (the AWS limit).
pub const MAX_EVENTS_PER_PAGE: usize = 10_000;
/// Most pages followed for one call: FilterLogEvents may hand out empty pages with a token
/// while it scans, so this bounds the requests one call can make.
pub const MAX_LOG_PAGES: usize = 200;

/// One log event.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LogEvent {
    pub timestamp: DateTime<Utc>,
    pub log_stream: String,
    pub message: String,
}

/// What one page scan saw.
struct PageScan {
    events: Vec<LogEvent>,
    counted: u64,
}

impl CloudWatch {
    /// Events of `log_group` in `[start, end)` matching the CloudWatch Logs filter `pattern`
    /// (all events when `None`), oldest first, at most `limit`.
    pub async fn filter_log_events(
        &self,
        log_group: &str,
        pattern: Option<&str>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<LogEvent>, CloudWatchError> {
        let scan = self
            .scan(log_group, pattern, None, start, end, Some(limit))
            .await?;
        Ok(scan.events)
    }

    /// How many events of `log_group` in `[start, end)` match the filter `pattern` and, when
    /// given, the regex `matching` (applied here to each message, since CloudWatch filter
    /// patterns are not regexes). Every page is read; at most [`MAX_LOG_PAGES`] requests.
    pub async fn count_log_events(
        &self,
        log_group: &str,
        pattern: Option<&str>,
        matching: Option<&regex::Regex>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<u64, CloudWatchError> {
        let scan = self
            .scan(log_group, pattern, matching, start, end, None)
            .await?;
        Ok(scan.counted)
    }

    /// Follows FilterLogEvents pages. With `keep = Some(n)` it keeps events and stops at `n`;
    /// with `None` it only counts (the events `matching` matches, or all), to the last page.
    async fn scan(
        &self,
        log_group: &str,
        pattern: Option<&str>,
        matching: Option<&regex::Regex>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        keep: Option<usize>,
    ) -> Result<PageScan, CloudWatchError> {
        const OP: &str = "FilterLogEvents";
        if start >= end {
            return Err(CloudWatchError::Invalid {
                operation: OP,
                detail: format!("start ({start}) must be before end ({end})"),
            });
        }
        let mut scan = PageScan {
            events: Vec::new(),
            counted: 0,
        };
        if keep == Some(0) {
            return Ok(scan);
        }
        let pattern = pattern.map(str::trim).filter(|p| !p.is_empty());
        let mut token: Option<String> = None;
        for _ in 0..MAX_LOG_PAGES {
            let page_size = match keep {
                Some(n) => (n - scan.events.len()).min(MAX_EVENTS_PER_PAGE),
                None => MAX_EVENTS_PER_PAGE,
            };
            let page = self
                .send(OP, || {
                    sdk(
                        OP,
                        Some(log_group),
                        self.logs
                            .filter_log_events()
                            .log_group_name(log_group)
                            .set_filter_pattern(pattern.map(str::to_string))
                            .start_time(start.timestamp_millis())
                            .end_time(end.timestamp_millis() - 1)
                            .limit(i32::try_from(page_size).unwrap_or(i32::MAX))
                            .set_next_token(token.clone())
                            .send(),
                    )
                })
                .await?;
            scan.counted += match matching {
                Some(re) => page
                    .events()
                    .iter()
                    .filter(|e| re.is_match(e.message().unwrap_or_default()))
                    .count() as u64,
                None => page.events().len() as u64,
            };
            if let Some(n) = keep {
                for e in page.events() {
                    if scan.events.len() == n {
                        break;
                    }
                    let timestamp = e
                        .timestamp()
                        .and_then(DateTime::from_timestamp_millis)
                        .unwrap_or(start);
                    scan.events.push(LogEvent {
                        timestamp,
                        log_stream: e.log_stream_name().unwrap_or_default().to_string(),
                        message: e.message().unwrap_or_default().to_string(),
                    });
                }
                if scan.events.len() >= n {
                    break;
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        scan.events.sort_by_key(|e| e.timestamp);
        Ok(scan)
    }
}
