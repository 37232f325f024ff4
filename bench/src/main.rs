//! `medgraph-bench`: builds the release server, seeds a database, starts the server and drives every
//! scenario over HTTP, with `pgbench -S` and `{ __typename }` beside it in the same run. Markdown on
//! stdout, JSON to a file. See the README's performance section.

mod driver;
mod pg;
mod procfs;
mod report;
mod scenarios;
mod server;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::{
    driver::{Connection, Group, Window},
    report::{BudgetInputs, Check, Row},
    scenarios::{Fixture, Scenario},
    server::{SeedSizes, Server},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Db {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmark medgraph over HTTP, with pgbench -S and { __typename } beside it")]
struct Args {
    /// Which database(s) to run on.
    #[arg(long, value_enum, default_value = "both")]
    db: Db,
    /// Connections per scenario (and PostgreSQL clients of pgbench -S).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Connections running logins in (h)'s storm (default: --connections).
    #[arg(long)]
    login_connections: Option<usize>,
    /// Measured time per scenario and round.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Rounds; every round runs every scenario (in a rotated order) and the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Smoke run: 1 round of 2 s, 0.5 s warm-up, a small seed. Checks that everything works (exit 1 on any
    /// failed answer), not speed.
    #[arg(long)]
    quick: bool,
    /// Cargo profile the server is built with.
    #[arg(long, default_value = "release")]
    profile: String,
    /// Use this server binary instead of building one.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// PostgreSQL base URL (a role that may create databases), without a database name.
    #[arg(
        long,
        env = "BENCH_DATABASE_URL",
        default_value = "postgres://medgraph:medgraph@127.0.0.1:5432"
    )]
    pg_url: String,
    /// Only these scenarios (comma-separated keys: typename,a,a1,a0,b,c,d,e,f,g,h).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Where the JSON results go (default: target/bench/results.json).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Instead of the scenarios: this many requests of (g) in ten rounds, with the server's memory after each.
    #[arg(long)]
    soak: Option<u64>,
    /// The scenario the soak runs (default g).
    #[arg(long, default_value = "g")]
    soak_scenario: String,
    /// Exit with status 1 when a budget line is missed.
    #[arg(long)]
    check_budget: bool,
}

/// The benchmark's settings, as recorded in the JSON.
#[derive(Serialize)]
struct Settings {
    connections: usize,
    login_connections: usize,
    warmup_s: f64,
    duration_s: f64,
    rounds: usize,
    profile: String,
    cores: usize,
    cpu: String,
    seed_users: u32,
    seed_first_user_patients: u32,
    seed_doctors: u32,
    seed_mappings: u32,
    password_hash_wait_ms: f64,
}

#[derive(Serialize)]
struct DbResult {
    database: &'static str,
    argon2id_hash_ms: f64,
    server_peak_rss_mib: f64,
    medians: Vec<Row>,
    budget: Vec<Check>,
    rounds: Vec<Row>,
}

#[derive(Serialize)]
struct Results {
    settings: Settings,
    runs: Vec<DbResult>,
}

/// The server's default wait for a free password hasher before refusing a login.
const PASSWORD_HASH_WAIT_MS: f64 = 2000.0;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(all_met) => std::process::exit(if all_met { 0 } else { 1 }),
        Err(e) => {
            eprintln!("medgraph-bench: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Returns false when `--check-budget` is given and a budget line is missed.
async fn run(mut args: Args) -> anyhow::Result<bool> {
    if args.quick {
        args.rounds = 1;
        args.duration = Duration::from_secs(2);
        args.warmup = Duration::from_millis(500);
    }
    if args.rounds == 0 || args.connections == 0 {
        bail!("--rounds and --connections must be at least 1");
    }
    let scenarios: Vec<Scenario> = if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
            .iter()
            .map(|key| Scenario::parse(key).with_context(|| format!("unknown scenario {key:?}")))
            .collect::<anyhow::Result<_>>()?
    };
    let sizes = if args.quick {
        SeedSizes {
            users: 5,
            first_user_patients: 200,
            doctors: 50,
            mappings: 600,
        }
    } else {
        SeedSizes {
            users: 5,
            first_user_patients: 1000,
            doctors: 200,
            mappings: 3000,
        }
    };
    let binary = match &args.server_bin {
        Some(path) => path.clone(),
        None => server::build(&args.profile)?,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let settings = Settings {
        connections: args.connections,
        login_connections: args.login_connections.unwrap_or(args.connections),
        warmup_s: args.warmup.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        rounds: args.rounds,
        profile: args.profile.clone(),
        cores,
        cpu: cpu_model(),
        seed_users: sizes.users,
        seed_first_user_patients: sizes.first_user_patients,
        seed_doctors: sizes.doctors,
        seed_mappings: sizes.mappings,
        password_hash_wait_ms: PASSWORD_HASH_WAIT_MS,
    };

    let pg_available = pg::reachable(&args.pg_url);
    let databases: Vec<&'static str> = match args.db {
        Db::Sqlite => vec!["sqlite"],
        Db::Postgres => vec!["postgres"],
        Db::Both => vec!["sqlite", "postgres"],
    };
    if databases.contains(&"postgres") && !pg_available {
        bail!(
            "PostgreSQL is not reachable at {} (set BENCH_DATABASE_URL or --pg-url)",
            redact(&args.pg_url)
        );
    }
    let pgbench_url = if pg_available {
        Some(pg::pgbench_init(&args.pg_url)?)
    } else {
        eprintln!("PostgreSQL not reachable: no pgbench -S baseline in this run");
        None
    };

    if let Some(requests) = args.soak {
        let database = databases[databases.len() - 1];
        return soak(&args, &binary, database, &sizes, requests).await;
    }

    let mut runs = Vec::new();
    let mut all_met = true;
    let mut failed_answers = false;
    for database in databases {
        let result = run_database(
            &args,
            &settings,
            &binary,
            database,
            &sizes,
            &scenarios,
            pgbench_url.as_deref(),
        )
        .await?;
        println!("\n## {database}\n");
        println!(
            "{} connections, {} s measured after {} s warm-up, median of {} round(s); one argon2id hash: {:.1} ms; \
             server peak RSS {:.1} MiB. Servers run with MEDGRAPH_ENV=production; the login scenarios use a second \
             server identical but for AUTH_RATE_LIMIT_* raised.\n",
            settings.connections,
            settings.duration_s,
            settings.warmup_s,
            settings.rounds,
            result.argon2id_hash_ms,
            result.server_peak_rss_mib
        );
        println!("{}", report::markdown_table(&result.medians));
        println!("{}", report::markdown_budget(&result.budget));
        if database == "postgres" && result.budget.iter().any(|c| !c.pass) {
            all_met = false;
        }
        if args.quick
            && result
                .budget
                .iter()
                .any(|c| c.what == report::NO_FAILED_ANSWERS && !c.pass)
        {
            failed_answers = true;
        }
        runs.push(result);
    }
    if pgbench_url.is_some() {
        pg::drop_database(&args.pg_url, pg::PGBENCH_DATABASE);
    }

    let json_path = match &args.json {
        Some(path) => path.clone(),
        None => server::work_dir()?.join("results.json"),
    };
    let results = Results { settings, runs };
    std::fs::write(&json_path, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!("results written to {}", json_path.display());
    if failed_answers {
        eprintln!("medgraph-bench: some answers failed (see the errors column)");
        return Ok(false);
    }
    Ok(all_met || !args.check_budget)
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}…{}", &url[..scheme + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The median time of one argon2id hash at the server's parameters (the crate defaults), on this machine now.
fn argon2_hash_ms() -> f64 {
    use argon2::{Argon2, PasswordHasher as _};
    let mut times: Vec<f64> = (0..6)
        .map(|_| {
            let started = Instant::now();
            let _ = Argon2::default().hash_password(b"medgraph benchmark password");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .skip(1)
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The two servers of a database run: `main` at production settings, `logins` with the auth rate limit raised.
struct Servers {
    main: Server,
    logins: Server,
    /// PostgreSQL's CPU time is charged to the scenarios only when they run on it.
    postgres: bool,
}

impl Servers {
    fn start(binary: &std::path::Path, database: &str, url: &str) -> anyhow::Result<Servers> {
        let dir = server::work_dir()?;
        let secret: String = (0..48)
            .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
            .collect();
        let main = Server::start(
            binary,
            url,
            &dir.join(format!("server-{database}.log")),
            &secret,
            &[],
        )?;
        let logins = Server::start(
            binary,
            url,
            &dir.join(format!("server-{database}-logins.log")),
            &secret,
            &[
                ("AUTH_RATE_LIMIT_PER_MINUTE", "1000000"),
                ("AUTH_RATE_LIMIT_BURST", "1000000"),
            ],
        )?;
        Ok(Servers {
            main,
            logins,
            postgres: database == "postgres",
        })
    }

    fn for_scenario(&self, scenario: Scenario) -> &Server {
        if scenario.needs_raised_auth_limit() {
            &self.logins
        } else {
            &self.main
        }
    }

    /// Waits (at most `SETTLE_MAX`) until the servers and PostgreSQL are idle, so the next measurement
    /// does not pay for the last one's leftovers: a login storm's last hashes, the checkpoint and
    /// autovacuum after a write scenario. Without it pgbench -S, which always followed (g) and (h),
    /// ranged from 33k to 47k TPS between runs.
    async fn settle(&self) {
        let busy = || {
            procfs::postgres_cpu_seconds()
                + [self.main.pid, self.logins.pid]
                    .into_iter()
                    .filter_map(procfs::cpu_seconds)
                    .sum::<f64>()
        };
        let started = std::time::Instant::now();
        let mut before = busy();
        while started.elapsed() < SETTLE_MAX {
            tokio::time::sleep(SETTLE_SAMPLE).await;
            let now = busy();
            if now - before < SETTLE_SAMPLE.as_secs_f64() * SETTLE_IDLE_SHARE {
                return;
            }
            before = now;
        }
        eprintln!("   (the machine did not settle within {SETTLE_MAX:?}; measuring anyway)");
    }

    fn peak_rss_mib(&self) -> f64 {
        [self.main.pid, self.logins.pid]
            .into_iter()
            .filter_map(procfs::peak_rss_kib)
            .map(|kib| kib as f64 / 1024.0)
            .fold(0.0, f64::max)
    }
}

async fn prepare_database(
    args: &Args,
    binary: &std::path::Path,
    database: &str,
    sizes: &SeedSizes,
) -> anyhow::Result<String> {
    let url = match database {
        "sqlite" => server::fresh_sqlite()?,
        _ => pg::fresh_database(&args.pg_url, "medgraph_bench")?,
    };
    server::seed(binary, &url, sizes)?;
    Ok(url)
}

/// Logs in and collects what the scenarios need; creates the benchmark's own doctors once.
async fn fixture(
    servers: &Servers,
    doctors: Option<Vec<String>>,
    doctor_count: usize,
) -> anyhow::Result<Fixture> {
    let email = server::seeded_user_email(1);
    let token = scenarios::login(servers.main.addr, &email, server::SEED_PASSWORD).await?;
    let creator_token = scenarios::login(
        servers.main.addr,
        &server::seeded_user_email(2),
        server::SEED_PASSWORD,
    )
    .await?;
    let mut conn = Connection::open(servers.main.addr).await?;
    let patient_ids = scenarios::patient_ids(&mut conn, &token).await?;
    let bench_doctor_ids = match doctors {
        Some(ids) => ids,
        None => scenarios::create_bench_doctors(&mut conn, &token, doctor_count).await?,
    };
    Ok(Fixture {
        token: token.into(),
        creator_token: creator_token.into(),
        email,
        password: server::SEED_PASSWORD.into(),
        patient_ids,
        bench_doctor_ids,
    })
}

/// A round's entries: the scenarios and the pgbench baseline.
#[derive(Clone, Copy, PartialEq)]
enum Entry {
    Scenario(Scenario),
    Pgbench,
}

async fn run_database(
    args: &Args,
    settings: &Settings,
    binary: &std::path::Path,
    database: &'static str,
    sizes: &SeedSizes,
    scenarios: &[Scenario],
    pgbench_url: Option<&str>,
) -> anyhow::Result<DbResult> {
    eprintln!("== {database}: seeding");
    let url = prepare_database(args, binary, database, sizes).await?;
    let servers = Servers::start(binary, database, &url)?;
    let doctor_count = settings.connections.max(settings.login_connections);
    let mut fixture = Arc::new(fixture(&servers, None, doctor_count).await?);
    let seeded = fixture.patient_ids.len();
    if seeded < sizes.first_user_patients as usize {
        bail!("the benchmark user has {seeded} patients after seeding");
    }
    for &scenario in scenarios {
        scenarios::verify(
            servers.for_scenario(scenario).addr,
            scenario,
            &fixture,
            seeded,
        )
        .await
        .with_context(|| format!("checking {} before the load", scenario.title()))?;
    }
    eprintln!("   every scenario answers correctly; measuring");

    let mut entries: Vec<Entry> = scenarios.iter().copied().map(Entry::Scenario).collect();
    if pgbench_url.is_some() {
        entries.push(Entry::Pgbench);
    }
    let mut hash_times = Vec::new();
    let mut rows = Vec::new();
    for round in 0..args.rounds {
        if round > 0 {
            // A fresh token each round: a full run outlasts the access token's lifetime.
            fixture = Arc::new(
                crate::fixture(&servers, Some(fixture.bench_doctor_ids.clone()), 0).await?,
            );
        }
        hash_times.push(argon2_hash_ms());
        // Alternate the order between rounds so no scenario always runs first or last.
        let mut order = entries.clone();
        let shift = round % order.len().max(1);
        order.rotate_left(shift);
        for entry in order {
            servers.settle().await;
            match entry {
                Entry::Pgbench => {
                    let url = pgbench_url.unwrap_or_default().to_owned();
                    rows.push(run_pgbench(args, &url, round + 1).await?);
                }
                Entry::Scenario(scenario) => {
                    let mut measured =
                        run_scenario(args, settings, &servers, scenario, &fixture, round + 1).await;
                    if matches!(scenario, Scenario::AssignUnassign | Scenario::Mixed) {
                        let leftovers =
                            scenarios::remove_leftover_mappings(servers.main.addr, &fixture)
                                .await?;
                        if leftovers > 0 {
                            measured[0]
                                .failures
                                .insert("leftover mappings".into(), leftovers);
                        }
                    }
                    for row in &measured {
                        eprintln!(
                            "   round {} {:<45} {:>8.0} req/s  p99 {:>7.2} ms  errors {}",
                            round + 1,
                            row.title,
                            row.req_per_s,
                            row.p99_ms.unwrap_or(0.0),
                            row.failed()
                        );
                    }
                    rows.append(&mut measured);
                }
            }
        }
    }
    let medians = report::medians(&rows);
    let argon2id_hash_ms = report_median(hash_times);
    let server_peak_rss_mib = servers.peak_rss_mib();
    let budget = report::budget(
        &medians,
        &BudgetInputs {
            cores: settings.cores,
            hash_ms: argon2id_hash_ms,
            hash_wait_ms: PASSWORD_HASH_WAIT_MS,
            server_peak_rss_mib,
        },
    );
    drop(servers);
    if database == "postgres" {
        pg::drop_database(&args.pg_url, "medgraph_bench");
    }
    Ok(DbResult {
        database,
        argon2id_hash_ms,
        server_peak_rss_mib,
        medians,
        budget,
        rounds: rows,
    })
}

/// How long `settle` waits at most, how often it samples, and what share of one core counts as idle.
const SETTLE_MAX: Duration = Duration::from_secs(20);
const SETTLE_SAMPLE: Duration = Duration::from_millis(250);
const SETTLE_IDLE_SHARE: f64 = 0.05;

fn report_median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// CPU seconds of the server, PostgreSQL and the benchmark itself.
#[derive(Clone, Copy)]
struct Cpu {
    server: f64,
    postgres: f64,
    client: f64,
}

impl Cpu {
    fn now(server_pid: u32) -> Cpu {
        Cpu {
            server: procfs::cpu_seconds(server_pid).unwrap_or(0.0),
            postgres: procfs::postgres_cpu_seconds(),
            client: procfs::own_cpu_seconds(),
        }
    }
}

async fn run_scenario(
    args: &Args,
    settings: &Settings,
    servers: &Servers,
    scenario: Scenario,
    fixture: &Arc<Fixture>,
    round: usize,
) -> Vec<Row> {
    let server = servers.for_scenario(scenario);
    let seed = round as u64 * 1_000_003;
    let connections = match scenario {
        Scenario::ListOneConnection | Scenario::ListPlainOneConnection => 1,
        _ => settings.connections,
    };
    let mut groups = vec![Group {
        connections,
        sessions: scenarios::sessions(scenario, fixture.clone(), seed),
    }];
    if scenario == Scenario::ReadsDuringLogins {
        groups.push(Group {
            connections: settings.login_connections,
            sessions: scenarios::sessions(Scenario::Login, fixture.clone(), seed + 1),
        });
    }
    let window = Window::starting_now(args.warmup, args.duration);
    let addr = server.addr;
    let pid = server.pid;
    let load = {
        let window = window.clone();
        tokio::spawn(async move { driver::run(addr, &groups, &window).await })
    };
    tokio::time::sleep_until(window.measure_from.into()).await;
    let before = Cpu::now(pid);
    let mut peak_kib = procfs::rss_kib(pid).unwrap_or(0);
    while Instant::now() < window.end {
        tokio::time::sleep(Duration::from_millis(50).min(window.end - Instant::now())).await;
        peak_kib = peak_kib.max(procfs::rss_kib(pid).unwrap_or(0));
    }
    let after = Cpu::now(pid);
    let stats = load.await.unwrap_or_default();
    let seconds = args.duration.as_secs_f64();
    let total: u64 = stats.iter().map(|s| s.ok + s.failed()).sum();
    let per_request = |cpu: f64| (total > 0).then(|| cpu * 1000.0 / total as f64);
    let uses_postgres = servers.postgres;
    let server_kind = if scenario.needs_raised_auth_limit() {
        "auth rate limit raised"
    } else {
        "production"
    };
    let row = |key: &str, title: &str, stats: &driver::Stats, connections: usize| Row {
        key: key.into(),
        title: title.into(),
        round,
        connections,
        server: server_kind,
        ok: stats.ok,
        failures: stats.failures.clone(),
        req_per_s: stats.ok as f64 / seconds,
        p50_ms: Some(stats.percentile_ms(0.5)),
        p99_ms: Some(stats.percentile_ms(0.99)),
        max_ms: Some(stats.max_ms()),
        avg_ms: None,
        server_cpu_ms_per_req: per_request(after.server - before.server),
        postgres_cpu_ms_per_req: uses_postgres
            .then(|| per_request(after.postgres - before.postgres))
            .flatten(),
        client_cpu_ms_per_req: per_request(after.client - before.client),
        peak_rss_mib: Some(peak_kib as f64 / 1024.0),
    };
    let empty = driver::Stats::new();
    let mut rows = vec![row(
        scenario.key(),
        scenario.title(),
        stats.first().unwrap_or(&empty),
        connections,
    )];
    if scenario == Scenario::ReadsDuringLogins {
        rows.push(row(
            "h-logins",
            "(h) the login storm beside it",
            stats.get(1).unwrap_or(&empty),
            settings.login_connections,
        ));
    }
    rows
}

async fn run_pgbench(args: &Args, url: &str, round: usize) -> anyhow::Result<Row> {
    let connections = args.connections;
    let duration = args.duration;
    let url = url.to_owned();
    let before = procfs::postgres_cpu_seconds();
    let result =
        tokio::task::spawn_blocking(move || pg::pgbench_select(&url, connections, duration))
            .await??;
    let after = procfs::postgres_cpu_seconds();
    let transactions = result.tps * duration.as_secs().max(1) as f64;
    eprintln!(
        "   round {round} {:<45} {:>8.0} tps    avg {:>7.3} ms",
        "pgbench -S -M prepared", result.tps, result.latency_avg_ms
    );
    let mut failures = BTreeMap::new();
    if result.failed > 0 {
        failures.insert("pgbench failed".to_owned(), result.failed);
    }
    Ok(Row {
        key: "pgbench".into(),
        title: "pgbench -S -M prepared (physical limit)".into(),
        round,
        connections,
        server: "PostgreSQL",
        ok: transactions as u64,
        failures,
        req_per_s: result.tps,
        p50_ms: None,
        p99_ms: None,
        max_ms: None,
        avg_ms: Some(result.latency_avg_ms),
        server_cpu_ms_per_req: None,
        postgres_cpu_ms_per_req: (transactions > 0.0)
            .then(|| (after - before) * 1000.0 / transactions),
        client_cpu_ms_per_req: None,
        peak_rss_mib: None,
    })
}

/// One scenario (default (g)) for `requests` requests in ten equal rounds, printing the server's memory after each.
async fn soak(
    args: &Args,
    binary: &std::path::Path,
    database: &'static str,
    sizes: &SeedSizes,
    requests: u64,
) -> anyhow::Result<bool> {
    let url = prepare_database(args, binary, database, sizes).await?;
    let servers = Servers::start(binary, database, &url)?;
    let scenario = Scenario::parse(&args.soak_scenario)
        .filter(|s| !s.needs_raised_auth_limit())
        .with_context(|| {
            format!(
                "--soak-scenario {:?}: not a scenario key, or a login one",
                args.soak_scenario
            )
        })?;
    let fixture = Arc::new(fixture(&servers, None, args.connections).await?);
    scenarios::verify(
        servers.main.addr,
        scenario,
        &fixture,
        fixture.patient_ids.len(),
    )
    .await?;
    println!(
        "soak of {} on {database}: {requests} requests in 10 rounds, {} connections\n",
        scenario.title(),
        args.connections
    );
    println!("| round | requests | req/s | p99 ms | errors | RSS after MiB | peak RSS MiB |");
    println!("|---:|---:|---:|---:|---|---:|---:|");
    let pid = servers.main.pid;
    let mut first_rss = None;
    let mut last_rss = 0.0;
    for round in 1..=10 {
        let share = requests / 10;
        let window = Window::counted(share);
        let started = Instant::now();
        let groups = [Group {
            connections: args.connections,
            sessions: scenarios::sessions(scenario, fixture.clone(), round),
        }];
        let stats = driver::run(servers.main.addr, &groups, &window).await;
        let elapsed = started.elapsed().as_secs_f64();
        let stats = &stats[0];
        let rss = procfs::rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
        let peak = procfs::peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
        first_rss.get_or_insert(rss);
        last_rss = rss;
        let errors = if stats.failures.is_empty() {
            "0".to_owned()
        } else {
            stats
                .failures
                .iter()
                .map(|(label, count)| format!("{count} {label}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {round} | {} | {:.0} | {:.2} | {errors} | {rss:.1} | {peak:.1} |",
            stats.ok + stats.failed(),
            (stats.ok + stats.failed()) as f64 / elapsed,
            stats.percentile_ms(0.99),
        );
    }
    let first = first_rss.unwrap_or(0.0);
    println!(
        "\nRSS after round 1: {first:.1} MiB; after round 10: {last_rss:.1} MiB; growth {:.1} MiB",
        last_rss - first
    );
    if database == "postgres" {
        drop(servers);
        pg::drop_database(&args.pg_url, "medgraph_bench");
    }
    Ok(true)
}
