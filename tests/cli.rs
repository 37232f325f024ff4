//! The `medgraph` binary as a user runs it: configuration errors, `serve` with no configuration,
//! `schema`, `migrate`, `user` and `seed`.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::Duration,
};

use medgraph::config::ENV_VARS;

/// A fresh working directory (no .env) for one test.
fn workdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("medgraph-cli-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The binary with none of the configuration variables inherited from the test's environment.
fn medgraph(dir: &PathBuf) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_medgraph"));
    cmd.current_dir(dir);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.env_remove("MEDGRAPH_PASSWORD");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run medgraph")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn an_invalid_setting_exits_non_zero_with_one_line_naming_the_variable() {
    let dir = workdir();
    for (var, value) in [
        ("BIND_ADDR", "nowhere"),
        ("ACCESS_TOKEN_TTL", "soonish"),
        ("MEDGRAPH_ENV", "staging"),
        ("RUST_LOG", "medgraph=loudest"),
    ] {
        let output = run(medgraph(&dir).env(var, value).arg("serve"));
        assert!(!output.status.success(), "{var}={value} should fail");
        let err = stderr(&output);
        assert_eq!(
            err.trim().lines().count(),
            1,
            "one line expected, got: {err}"
        );
        assert!(err.contains(var), "{err}");
    }
}

#[test]
fn a_dotenv_file_is_read_and_a_malformed_one_stops_the_start() {
    let dir = workdir();
    std::fs::write(dir.join(".env"), "BIND_ADDR=nowhere\n").expect("write .env");
    let output = run(medgraph(&dir).arg("serve"));
    assert!(!output.status.success(), "the .env value is used");
    assert!(stderr(&output).contains("BIND_ADDR"), "{}", stderr(&output));

    std::fs::write(dir.join(".env"), "GOOD=1\nthis line is not a setting\n").expect("write .env");
    let output = run(medgraph(&dir).arg("serve"));
    assert!(!output.status.success());
    let err = stderr(&output);
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one line expected, got: {err}"
    );
    assert!(err.contains(".env"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn production_refuses_to_start_without_a_long_enough_jwt_secret() {
    let dir = workdir();
    let output = run(medgraph(&dir)
        .env("MEDGRAPH_ENV", "production")
        .arg("serve"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("JWT_SECRET"));
    let output = run(medgraph(&dir)
        .env("MEDGRAPH_ENV", "production")
        .env("JWT_SECRET", "too-short")
        .arg("serve"));
    assert!(!output.status.success());
    assert!(stderr(&output).contains("at least 32 bytes"));
}

#[test]
fn schema_prints_the_sdl_without_a_database() {
    let dir = workdir();
    let output = run(medgraph(&dir)
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .arg("schema"));
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), medgraph::graphql::sdl());
}

#[test]
fn serve_with_no_configuration_uses_an_sqlite_file_and_stops_on_sigterm() {
    let dir = workdir();
    let mut child = medgraph(&dir)
        .env("BIND_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start medgraph");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read banner");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in banner: {line}"))
        .to_owned();
    assert!(url.ends_with("/graphql"), "{url}");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (health, data) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let health = client
            .get(url.replace("/graphql", "/healthz"))
            .send()
            .await
            .expect("healthz")
            .status();
        let data: serde_json::Value = client
            .post(&url)
            .json(&serde_json::json!({"query": "{ __typename }"}))
            .send()
            .await
            .expect("graphql")
            .json()
            .await
            .expect("json");
        (health, data)
    });
    assert!(health.is_success());
    assert_eq!(data["data"]["__typename"], "Query");
    assert!(
        dir.join("medgraph.db").exists(),
        "the default SQLite file is created"
    );

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "graceful shutdown exits 0, got {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn migrate_applies_reports_and_reverts_migrations() {
    use migration::MigratorTrait;
    let total = migration::Migrator::migrations().len();
    let dir = workdir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("m.db").display());
    let status = |dir: &PathBuf| {
        stdout(&run(medgraph(dir)
            .env("DATABASE_URL", &url)
            .args(["migrate", "status"])))
    };

    assert!(
        run(medgraph(&dir)
            .env("DATABASE_URL", &url)
            .args(["migrate", "up"]))
        .status
        .success()
    );
    let applied = status(&dir);
    assert_eq!(
        applied.lines().filter(|l| l.starts_with("Applied")).count(),
        total,
        "{applied}"
    );

    assert!(
        run(medgraph(&dir).env("DATABASE_URL", &url).args([
            "migrate",
            "down",
            "--steps",
            &total.to_string()
        ]))
        .status
        .success()
    );
    let reverted = status(&dir);
    assert_eq!(
        reverted
            .lines()
            .filter(|l| l.starts_with("Pending"))
            .count(),
        total,
        "{reverted}"
    );

    assert!(
        run(medgraph(&dir)
            .env("DATABASE_URL", &url)
            .args(["migrate", "fresh"]))
        .status
        .success()
    );
    assert_eq!(
        status(&dir)
            .lines()
            .filter(|l| l.starts_with("Applied"))
            .count(),
        total
    );
}

#[test]
fn user_create_and_promote_make_an_admin_who_can_log_in() {
    let dir = workdir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("u.db").display());
    let password = "a long enough admin passphrase";
    let created = run(medgraph(&dir)
        .env("DATABASE_URL", &url)
        .env("MEDGRAPH_PASSWORD", password)
        .args([
            "user",
            "create",
            "--name",
            "Root Admin",
            "--email",
            "Root@Example.com",
        ]));
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stdout(&created).contains("root@example.com"));

    let weak = run(medgraph(&dir)
        .env("DATABASE_URL", &url)
        .env("MEDGRAPH_PASSWORD", "short")
        .args([
            "user",
            "create",
            "--name",
            "Weak",
            "--email",
            "weak@example.com",
        ]));
    assert!(!weak.status.success());
    assert!(stderr(&weak).contains("password"), "{}", stderr(&weak));

    let promoted = run(medgraph(&dir).env("DATABASE_URL", &url).args([
        "user",
        "promote",
        "--email",
        "root@example.com",
    ]));
    assert!(promoted.status.success(), "{}", stderr(&promoted));
    let missing = run(medgraph(&dir).env("DATABASE_URL", &url).args([
        "user",
        "promote",
        "--email",
        "nobody@example.com",
    ]));
    assert!(!missing.status.success());

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = medgraph::config::Config::for_tests(&url);
        let state = medgraph::app::AppState::connect(&config)
            .await
            .expect("connect");
        let session = medgraph::services::accounts::login(
            &state.db,
            &state.auth,
            &Default::default(),
            "root@example.com",
            password,
        )
        .await
        .unwrap_or_else(|e| panic!("login failed: {}", e.public_message()));
        assert_eq!(session.user.role, "ADMIN");
    });
}

#[test]
fn seed_fills_the_database_once_per_run_id() {
    let dir = workdir();
    let url = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
    let args = [
        "seed",
        "--run-id",
        "t1",
        "--users",
        "2",
        "--patients",
        "5",
        "--doctors",
        "4",
        "--mappings",
        "6",
    ];
    let first = run(medgraph(&dir).env("DATABASE_URL", &url).args(args));
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("seeded 2 users, 10 patients, 4 doctors, 12 mappings"),
        "{}",
        stdout(&first)
    );
    let again = run(medgraph(&dir).env("DATABASE_URL", &url).args(args));
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("seeded before"),
        "{}",
        stdout(&again)
    );
    // Without a user there is nothing to mark the run with, so it could not be idempotent.
    let no_users = run(medgraph(&dir)
        .env("DATABASE_URL", &url)
        .args(["seed", "--run-id", "t2", "--users", "0"]));
    assert!(!no_users.status.success());
    assert!(
        stderr(&no_users).contains("--users"),
        "{}",
        stderr(&no_users)
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        use sea_orm::{EntityTrait, PaginatorTrait};
        let config = medgraph::config::Config::for_tests(&url);
        let state = medgraph::app::AppState::connect(&config)
            .await
            .expect("connect");
        assert_eq!(
            medgraph::entities::patient::Entity::find()
                .count(&state.db)
                .await
                .expect("count"),
            10
        );
        assert_eq!(
            medgraph::entities::patient_doctor::Entity::find()
                .count(&state.db)
                .await
                .expect("count"),
            12
        );
        let seeded = medgraph::services::accounts::login(
            &state.db,
            &state.auth,
            &Default::default(),
            &medgraph::services::seed::user_email("t1", 0),
            medgraph::services::seed::DEFAULT_PASSWORD,
        )
        .await;
        assert!(
            seeded.is_ok(),
            "seeded users can log in with the documented password"
        );
    });
}
