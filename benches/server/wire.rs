//! A bare JSON-RPC-over-stdio client for the server benchmark: one line per message, written
//! and read on plain pipes, so that pi-mcp and the peer servers (Node, Python) are measured by
//! the same client, with the client's own cost kept small and outside the server's process.
//! It also reads what the server process spent: CPU time and resident memory from `/proc`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The protocol version every server in the benchmark speaks.
const PROTOCOL: &str = "2025-06-18";

/// A running MCP server on the other end of two pipes.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    /// Time from spawn to the `initialize` answer.
    pub started_in: Duration,
}

impl Server {
    /// Spawns `cmd` (stdin, stdout piped; stderr discarded) and completes the MCP handshake.
    pub fn start(mut cmd: Command) -> Server {
        let started = Instant::now();
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var_os("PI_MCP_BENCH_STDERR").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut s = Server {
            child,
            stdin,
            stdout,
            next_id: 1,
            started_in: Duration::ZERO,
        };
        s.request(
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "pi-mcp-bench", "version": "1"}}),
        );
        s.started_in = started.elapsed();
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    /// The server's process id (the process whose CPU and memory are read).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, msg: &Value) {
        let mut line = serde_json::to_vec(msg).expect("JSON");
        line.push(b'\n');
        self.stdin.write_all(&line).expect("write to the server");
        self.stdin.flush().expect("flush to the server");
    }

    /// Reads lines until the response to `id`; notifications and server requests are skipped.
    fn answer(&mut self, id: u64) -> Value {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read from the server");
            assert!(
                n > 0,
                "the server closed stdout while request {id} was open"
            );
            let v: Value = serde_json::from_str(&line).expect("a JSON line");
            if v.get("id").and_then(Value::as_u64) == Some(id) && v.get("method").is_none() {
                assert!(v.get("error").is_none(), "request {id} failed: {v}");
                return v;
            }
        }
    }

    /// Sends one request and waits for its answer (the `result` member).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.answer(id)["result"].take()
    }

    /// One `tools/call`; panics when the tool reports an error (a benchmark of failures would
    /// measure the wrong thing).
    pub fn call(&mut self, tool: &str, args: &Value) -> Value {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        assert!(
            r.get("isError") != Some(&Value::Bool(true)),
            "{tool} failed: {r}"
        );
        r
    }

    /// `n` calls one after another: each call's round trip, and the server's CPU per call.
    pub fn sequential(&mut self, tool: &str, args: &Value, n: usize) -> Sequential {
        let cpu = self.cpu();
        let mut times = Vec::with_capacity(n);
        let all = Instant::now();
        for _ in 0..n {
            let t = Instant::now();
            self.call(tool, args);
            times.push(t.elapsed());
        }
        Sequential {
            per_sec: n as f64 / all.elapsed().as_secs_f64(),
            median: median(times),
            cpu_per_call: (self.cpu() - cpu) / n as u32,
        }
    }

    /// `n` calls written as fast as the server takes them while the answers are read on this
    /// thread: calls per second, and the server's CPU per call.
    pub fn pipelined(&mut self, tool: &str, args: &Value, n: usize) -> (f64, Duration) {
        let first = self.next_id;
        self.next_id += n as u64;
        let mut lines = Vec::with_capacity(n * 96);
        for id in first..first + n as u64 {
            let msg = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                             "params": {"name": tool, "arguments": args}});
            serde_json::to_writer(&mut lines, &msg).expect("JSON");
            lines.push(b'\n');
        }
        let cpu = self.cpu();
        let t = Instant::now();
        let mut stdin = self.stdin.try_clone_pipe();
        let writer = std::thread::spawn(move || {
            stdin.write_all(&lines).expect("write to the server");
            stdin.flush().expect("flush to the server");
        });
        let mut line = String::new();
        let mut seen = 0;
        while seen < n {
            line.clear();
            let read = self
                .stdout
                .read_line(&mut line)
                .expect("read from the server");
            assert!(
                read > 0,
                "the server closed stdout after {seen} of {n} answers"
            );
            // A cheap test instead of a parse: answers carry `"id":`, notifications do not.
            if line.contains("\"id\"") && !line.contains("\"method\"") {
                assert!(
                    !line.contains("\"error\""),
                    "a pipelined call failed: {line}"
                );
                seen += 1;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        writer.join().expect("writer thread");
        (n as f64 / secs, (self.cpu() - cpu) / n as u32)
    }

    /// User + system CPU time the server process has used so far (`/proc/<pid>/stat`).
    pub fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `(comm)`.
        let ticks: u64 =
            f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as u64;
        Duration::from_nanos(ticks * 1_000_000_000 / hz)
    }

    /// Resident memory of the server process now, in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// Closes stdin and waits for the server to end.
    pub fn stop(mut self) {
        drop(self.stdin);
        if self.child.wait_timeout_or_kill() {
            eprintln!("bench: a server did not end when its stdin closed; killed it");
        }
    }
}

/// What a run of sequential calls measured.
#[derive(Clone, Copy, Debug)]
pub struct Sequential {
    /// Calls per second over the whole run.
    pub per_sec: f64,
    pub median: Duration,
    pub cpu_per_call: Duration,
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

trait PipeClone {
    fn try_clone_pipe(&self) -> std::fs::File;
}

impl PipeClone for ChildStdin {
    /// A second handle on the same pipe, for the writer thread.
    fn try_clone_pipe(&self) -> std::fs::File {
        use std::os::fd::AsFd;
        std::fs::File::from(self.as_fd().try_clone_to_owned().expect("dup stdin"))
    }
}

trait WaitOrKill {
    fn wait_timeout_or_kill(&mut self) -> bool;
}

impl WaitOrKill for Child {
    /// Waits up to 5 s for the process to exit; kills it after that. True when it was killed.
    fn wait_timeout_or_kill(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.try_wait() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.kill();
        let _ = self.wait();
        true
    }
}
