//! The real `medgraph` binary as a subprocess, and a SQLite database file for it. Not every test file uses
//! every helper.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `medgraph` process on an ephemeral loopback port. Killed when dropped; its stderr (the JSON
/// logs) is collected and printed if the test fails.
pub struct Server {
    child: Child,
    base: String,
    logs: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the binary with only the variables given here (plus `extra`, which may override them, e.g.
    /// `RUST_LOG`), so neither the caller's environment nor a `.env` file changes its configuration.
    pub async fn start(database_url: &str, jwt_secret: &str, extra: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_medgraph"));
        command
            .env_clear()
            .current_dir(std::env::temp_dir())
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", jwt_secret)
            .env("RUST_LOG", "medgraph=info,tower_http=warn")
            .env("LOG_FORMAT", "json")
            .env("AUTH_RATE_LIMIT_PER_MINUTE", "100000")
            .env("AUTH_RATE_LIMIT_BURST", "100000")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the medgraph binary");
        let stdout = child.stdout.take().expect("the binary's stdout");
        let mut stderr = child.stderr.take().expect("the binary's stderr");

        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        let stderr_reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .expect("log buffer")
                    .extend_from_slice(&chunk[..n]);
            }
        });
        let (first_line_tx, first_line) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = first_line_tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });

        let mut server = Server {
            child,
            base: String::new(),
            logs,
            stderr_reader: Some(stderr_reader),
        };
        let line = tokio::time::timeout(Duration::from_secs(20), first_line)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        match line
            .find("http://")
            .map(|start| line[start..].trim().trim_end_matches("/graphql").to_owned())
        {
            Some(base) => server.base = base,
            None => {
                let _ = server.child.kill();
                let _ = server.child.wait();
                panic!(
                    "the binary did not announce its address (first stdout line {line:?}); logs:\n{}",
                    server.finished_logs()
                );
            }
        }
        server
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The loopback address the process listens on.
    pub fn addr(&self) -> SocketAddr {
        self.base
            .trim_start_matches("http://")
            .parse()
            .unwrap_or_else(|error| panic!("address of {}: {error}", self.base))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends SIGTERM, as an orchestrator stopping the container would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// The exit status, or None if the process is still running after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the binary") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM; the process must exit with status 0 within 15 s. Returns everything it wrote to stderr.
    pub async fn stop(mut self) -> String {
        self.terminate();
        let exit = self
            .wait_exit(Duration::from_secs(15))
            .await
            .expect("the binary did not exit within 15 s of SIGTERM");
        assert_eq!(exit.code(), Some(0), "exit status after SIGTERM: {exit}");
        self.finished_logs()
    }

    /// Everything the process wrote to stderr so far (all of it, once the process has exited).
    pub fn finished_logs(&mut self) -> String {
        if let Ok(Some(_)) = self.child.try_wait()
            && let Some(reader) = self.stderr_reader.take()
        {
            let _ = reader.join();
        }
        String::from_utf8_lossy(&self.logs.lock().expect("log buffer")).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let logs = self.finished_logs();
            let tail: String = logs
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!(
                "--- last log lines of the medgraph binary at {} ---\n{tail}",
                self.base
            );
        }
    }
}

/// A SQLite database file in a directory of its own, removed when dropped.
pub struct SqliteFile {
    dir: std::path::PathBuf,
}

impl SqliteFile {
    pub fn new() -> SqliteFile {
        let dir =
            std::env::temp_dir().join(format!("medgraph-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        SqliteFile { dir }
    }

    pub fn url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.dir.join("medgraph.db").display()
        )
    }
}

impl Drop for SqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
