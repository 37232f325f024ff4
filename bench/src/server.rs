//! Building, seeding and running the medgraph binary, and the databases it runs on.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail, ensure};

/// The workspace root (the benchmark lives in `bench/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/ sits inside the workspace")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Builds the server with cargo in `profile` (`release` or `dev`) and returns the binary's path.
pub fn build(profile: &str) -> anyhow::Result<PathBuf> {
    eprintln!("building the server (cargo build --profile {profile} -p medgraph)…");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace_root())
        .args(["build", "--profile", profile, "-p", "medgraph"])
        .status()
        .context("running cargo")?;
    ensure!(status.success(), "cargo build failed");
    let dir = if profile == "dev" { "debug" } else { profile };
    Ok(target_dir().join(dir).join("medgraph"))
}

/// Where the benchmark keeps its SQLite files, logs and results.
pub fn work_dir() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join("bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// `medgraph seed` with the benchmark's sizes; the first seeded user is the benchmark user.
pub struct SeedSizes {
    pub users: u32,
    pub first_user_patients: u32,
    pub doctors: u32,
    pub mappings: u32,
}

pub const SEED_RUN_ID: &str = "bench";
pub const SEED_PASSWORD: &str = "medgraph benchmark password";

/// The seeded user `index` (1-based); user 1 is the benchmark user.
pub fn seeded_user_email(index: u32) -> String {
    format!("seed-{SEED_RUN_ID}-user{index}@example.com")
}

pub fn seed(binary: &Path, database_url: &str, sizes: &SeedSizes) -> anyhow::Result<()> {
    let output = Command::new(binary)
        .env_clear()
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .args(["seed", "--run-id", SEED_RUN_ID, "--password", SEED_PASSWORD])
        .args(["--users", &sizes.users.to_string()])
        .args([
            "--first-user-patients",
            &sizes.first_user_patients.to_string(),
        ])
        .args(["--patients", "20"])
        .args(["--doctors", &sizes.doctors.to_string()])
        .args(["--mappings", &sizes.mappings.to_string()])
        .output()
        .context("running medgraph seed")?;
    ensure!(
        output.status.success(),
        "medgraph seed failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());
    Ok(())
}

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pid: u32,
}

impl Server {
    /// Starts `medgraph serve` in production mode with only the variables given here plus `extra`.
    pub fn start(
        binary: &Path,
        database_url: &str,
        log: &Path,
        jwt_secret: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Server> {
        let log_file =
            fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("MEDGRAPH_ENV", "production")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", jwt_secret)
            .env("LOG_FORMAT", "json")
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file));
        for (name, value) in extra {
            command.env(name, value);
        }
        // Experiments: `BENCH_SERVER_ENV_<NAME>=value` in the benchmark's environment sets <NAME> for
        // both servers (e.g. BENCH_SERVER_ENV_DATABASE_MAX_CONNECTIONS=20).
        for (name, value) in std::env::vars() {
            if let Some(name) = name.strip_prefix("BENCH_SERVER_ENV_") {
                command.env(name, value);
            }
        }
        let mut child = command.spawn().context("starting the server")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(addr) = line
            .find("http://")
            .map(|start| line[start + 7..].trim().trim_end_matches("/graphql"))
            .and_then(|a| a.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the server did not start (stdout {line:?}); log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        };
        let pid = child.id();
        Ok(Server { child, addr, pid })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh SQLite file for the run.
pub fn fresh_sqlite() -> anyhow::Result<String> {
    let path = work_dir()?.join("medgraph-bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(format!("sqlite://{}?mode=rwc", path.display()))
}
