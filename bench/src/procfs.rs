//! CPU time and memory of processes, from Linux's /proc.

use std::{fs, sync::LazyLock};

/// Kernel clock ticks per second (the unit of CPU times in /proc/<pid>/stat); 100 on every common kernel.
static TICKS_PER_SECOND: LazyLock<f64> = LazyLock::new(|| {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
});

/// The fields of /proc/<pid>/stat after the command name (which may itself contain spaces and parentheses).
fn stat_fields(pid: &str) -> Option<(String, Vec<u64>)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_owned();
    // Field 3 (state) is a letter; numbers start at field 4. utime is field 14, so index 10 here.
    let numbers = text[close + 2..]
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<i64>().unwrap_or(0).max(0) as u64)
        .collect();
    Some((comm, numbers))
}

/// utime, stime, cutime, cstime in ticks.
fn times(numbers: &[u64]) -> [u64; 4] {
    [10, 11, 12, 13].map(|i| numbers.get(i).copied().unwrap_or(0))
}

/// CPU seconds a process has used (user + system).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let (_, numbers) = stat_fields(&pid.to_string())?;
    let [user, system, _, _] = times(&numbers);
    Some((user + system) as f64 / *TICKS_PER_SECOND)
}

/// CPU seconds used by every PostgreSQL process, including backends that have exited (their time moves
/// to the postmaster's children's times when it reaps them).
pub fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut ticks = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Some((comm, numbers)) = stat_fields(pid)
            && (comm == "postgres" || comm == "postmaster")
        {
            ticks += times(&numbers).iter().sum::<u64>();
        }
    }
    ticks as f64 / *TICKS_PER_SECOND
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The highest resident memory since the process started, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// The CPU seconds this (benchmark) process has used.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let burn: u64 = (0..5_000_000u64).fold(0, |a, b| a.wrapping_add(b * b));
        assert!(burn > 0);
        assert!(own_cpu_seconds() >= 0.0);
        let rss = rss_kib(std::process::id()).expect("VmRSS");
        let peak = peak_rss_kib(std::process::id()).expect("VmHWM");
        assert!(rss > 100 && peak >= rss, "rss {rss} peak {peak}");
    }
}
