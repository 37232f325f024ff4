//! PostgreSQL through its own client programs: `psql` for the databases, `pgbench -S` for the physical
//! limit of a point read on this machine.

use std::{process::Command, time::Duration};

use anyhow::{Context as _, ensure};

/// Runs one SQL command as the base URL's role, in its `postgres` database.
fn psql(base: &str, sql: &str) -> anyhow::Result<String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        .arg(format!("{base}/postgres"))
        .args(["-c", sql])
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    ensure!(
        output.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

pub fn reachable(base: &str) -> bool {
    psql(base, "SELECT 1").is_ok_and(|out| out == "1")
}

/// Drops and creates `name`; returns its URL.
pub fn fresh_database(base: &str, name: &str) -> anyhow::Result<String> {
    psql(
        base,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )?;
    psql(base, &format!("CREATE DATABASE {name}"))?;
    Ok(format!("{base}/{name}"))
}

pub fn drop_database(base: &str, name: &str) {
    let _ = psql(
        base,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}

pub const PGBENCH_DATABASE: &str = "medgraph_bench_pgbench";

/// Creates pgbench's tables (scale 1: 100,000 accounts, as cache-resident as medgraph's data).
pub fn pgbench_init(base: &str) -> anyhow::Result<String> {
    let url = fresh_database(base, PGBENCH_DATABASE)?;
    let output = Command::new("pgbench")
        .args(["-i", "-q", "-s", "1"])
        .arg(&url)
        .output()
        .context("running pgbench -i (is pgbench installed?)")?;
    ensure!(
        output.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(url)
}

pub struct PgbenchResult {
    pub tps: f64,
    pub latency_avg_ms: f64,
    pub failed: u64,
}

/// `pgbench -S -M prepared` (select-only, prepared statements) with `clients` connections.
pub fn pgbench_select(
    url: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<PgbenchResult> {
    let seconds = duration.as_secs().max(1);
    let output = Command::new("pgbench")
        .args(["-S", "-M", "prepared", "-n"])
        .args(["-c", &clients.to_string(), "-j", "2"])
        .args(["-T", &seconds.to_string()])
        .arg(url)
        .output()
        .context("running pgbench -S")?;
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "pgbench -S: {}{}",
        text,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    parse_pgbench(&text).with_context(|| format!("reading pgbench's report:\n{text}"))
}

fn parse_pgbench(text: &str) -> Option<PgbenchResult> {
    let number_after = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    Some(PgbenchResult {
        tps: number_after("tps = ")?,
        latency_avg_ms: number_after("latency average = ")?,
        failed: number_after("number of failed transactions: ").unwrap_or(0.0) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pgbench_15_output() {
        let text = "transaction type: <builtin: select only>\nscaling factor: 1\n\
            query mode: prepared\nnumber of clients: 32\nnumber of threads: 2\n\
            maximum number of tries: 1\nduration: 10 s\n\
            number of transactions actually processed: 280512\n\
            number of failed transactions: 0 (0.000%)\nlatency average = 1.139 ms\n\
            initial connection time = 31.503 ms\n\
            tps = 28093.118273 (without initial connection time)\n";
        let result = parse_pgbench(text).expect("parsed");
        assert!((result.tps - 28093.118273).abs() < 1e-6);
        assert!((result.latency_avg_ms - 1.139).abs() < 1e-9);
        assert_eq!(result.failed, 0);
        assert!(parse_pgbench("garbage").is_none());
    }
}
