//! What the server benchmark prints: the machine, every subject's numbers, and the issue-14
//! table of pi-mcp against the peer users would otherwise pick, with ratios and targets.

use std::time::Duration;

use crate::wire::Sequential;

/// One subject's numbers.
pub struct Measured {
    pub name: &'static str,
    /// Median spawn → `initialize` answer.
    pub start: Duration,
    /// Median idle RSS after `initialize`, KiB.
    pub rss_kib: u64,
    pub read: Option<Sequential>,
    /// Pipelined small calls: calls/s and server CPU per call.
    pub pipelined: Option<(f64, Duration)>,
    pub sql: Option<Sequential>,
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The CPU, the cores and the load, since every number below depends on them.
pub fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "machine: {cpu}, {cores} cores, Linux {}, load average {}",
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Every subject, every row it has.
pub fn table(all: &[Measured]) {
    println!(
        "\n| server | spawn → initialize | idle RSS | small read: median (server CPU) | pipelined: calls/s (CPU/call) | 100-row SELECT: queries/s (CPU/query) |"
    );
    println!("|---|---|---|---|---|---|");
    for m in all {
        let read = m.read.map_or("—".into(), |r| {
            format!("{:.0} µs ({:.0} µs)", us(r.median), us(r.cpu_per_call))
        });
        let piped = m.pipelined.map_or("—".into(), |(rate, cpu)| {
            format!("{rate:.0} ({:.0} µs)", us(cpu))
        });
        let sql = m.sql.map_or("—".into(), |q| {
            format!("{:.0} ({:.0} µs)", q.per_sec, us(q.cpu_per_call))
        });
        println!(
            "| {} | {:.1} ms | {:.1} MiB | {read} | {piped} | {sql} |",
            m.name,
            m.start.as_secs_f64() * 1e3,
            mib(m.rss_kib)
        );
    }
}

/// The table: each row against its peer, the ratio (how many times better pi-mcp is)
/// and the target.
pub fn ratios(all: &[Measured]) {
    let pi = &all[0];
    let peer = |name: &str| all.iter().find(|m| m.name == name);
    println!("\n| measure | pi-mcp | peer | ratio | target |");
    println!("|---|---|---|---|---|");
    let row = |what: &str, ours: String, name: &str, theirs: Option<(String, f64)>, goal: &str| {
        let (theirs, ratio) = match theirs {
            Some((t, r)) => (format!("{name} {t}"), format!("{r:.1}x")),
            None => (format!("{name} not installed"), "—".into()),
        };
        println!("| {what} | {ours} | {theirs} | {ratio} | {goal} |");
    };
    let fs = peer("server-filesystem");
    row(
        "spawn → `initialize` answer",
        format!("{:.1} ms", pi.start.as_secs_f64() * 1e3),
        "server-filesystem",
        fs.map(|p| {
            (
                format!("{:.0} ms", p.start.as_secs_f64() * 1e3),
                p.start.as_secs_f64() / pi.start.as_secs_f64(),
            )
        }),
        "≥ 15x",
    );
    if let Some(r) = pi.read {
        row(
            "small `read`, sequential latency",
            format!(
                "{:.0} µs ({:.0} µs server CPU)",
                us(r.median),
                us(r.cpu_per_call)
            ),
            "server-filesystem",
            fs.and_then(|p| p.read).map(|p| {
                (
                    format!("{:.0} µs ({:.0} µs CPU)", us(p.median), us(p.cpu_per_call)),
                    p.median.as_secs_f64() / r.median.as_secs_f64(),
                )
            }),
            "≥ 5x, ≤ 60 µs server CPU",
        );
    }
    if let Some((rate, cpu)) = pi.pipelined {
        row(
            "small calls pipelined, calls/s (pi-mcp: `read`)",
            format!("{rate:.0} ({:.0} µs CPU/call)", us(cpu)),
            "server-everything `echo`",
            peer("server-everything")
                .and_then(|p| p.pipelined)
                .map(|(theirs, _)| (format!("{theirs:.0}"), rate / theirs)),
            "≥ 2x",
        );
    }
    if let Some(q) = pi.sql {
        row(
            "100-row `sql` SELECT on SQLite, queries/s",
            format!(
                "{:.0} ({:.0} µs server CPU/query)",
                q.per_sec,
                us(q.cpu_per_call)
            ),
            "mcp-server-sqlite",
            peer("mcp-server-sqlite")
                .and_then(|p| p.sql)
                .map(|p| (format!("{:.0}", p.per_sec), q.per_sec / p.per_sec)),
            "≥ 5x",
        );
    }
    row(
        "idle RSS after `initialize`",
        format!("{:.1} MiB", mib(pi.rss_kib)),
        "server-filesystem",
        fs.map(|p| {
            (
                format!("{:.1} MiB", mib(p.rss_kib)),
                p.rss_kib as f64 / pi.rss_kib as f64,
            )
        }),
        "≥ 5x (≤ 14 MiB)",
    );
}
