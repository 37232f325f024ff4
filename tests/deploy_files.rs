//! Checks the deploy files (docker-compose.yml, .env.example, Dockerfile) against the configuration the
//! server actually reads, so they cannot drift from `medgraph::config::ENV_VARS` unnoticed.

use std::path::PathBuf;

use medgraph::config::ENV_VARS;
use serde_yaml::Value;

/// Variables documented in `.env.example` that the server itself does not read.
const DOCUMENTED_ELSEWHERE: &[&str] = &[
    // read by the integration tests
    "TEST_DATABASE_URL",
    // read by docker compose
    "POSTGRES_PASSWORD",
    // read by `medgraph user create` (src/cli.rs), not part of the server's configuration
    "MEDGRAPH_PASSWORD",
    // read by the OpenTelemetry SDK in `--features otel` builds (src/telemetry.rs)
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

fn read(relative: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn compose() -> Value {
    serde_yaml::from_str(&read("docker-compose.yml"))
        .unwrap_or_else(|err| panic!("docker-compose.yml is not valid YAML: {err}"))
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(
        service.is_mapping(),
        "docker-compose.yml has no service `{name}`"
    );
    service
}

/// Names set by a service's `environment`, in either compose form: a mapping (`NAME: value`) or a list
/// (`- NAME=value` / `- NAME`).
fn environment_names(service: &Value) -> Vec<String> {
    match &service["environment"] {
        Value::Mapping(map) => map
            .iter()
            .map(|(key, _value)| match key.as_str() {
                Some(name) => name.to_owned(),
                None => panic!("environment key is not a string: {key:?}"),
            })
            .collect(),
        Value::Sequence(items) => items
            .iter()
            .map(|item| match item.as_str() {
                Some(entry) => entry.split('=').next().unwrap_or(entry).to_owned(),
                None => panic!("environment entry is not a string: {item:?}"),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => panic!("unexpected form of environment: {other:?}"),
    }
}

/// The variable assigned on a `.env.example` line, if any: `NAME=…` or `# NAME=…` at the start of the line.
fn assigned_name(line: &str) -> Option<&str> {
    let line = match line.strip_prefix('#') {
        Some(rest) => rest.trim_start(),
        None => line,
    };
    let (name, _value) = line.split_once('=')?;
    let is_name = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    is_name.then_some(name)
}

#[test]
fn compose_environment_names_are_config_variables() {
    let compose = compose();
    let medgraph = service(&compose, "medgraph");

    let names = environment_names(medgraph);
    for name in &names {
        assert!(
            ENV_VARS.contains(&name.as_str()),
            "docker-compose.yml sets `{name}` for medgraph, but the server does not read it \
             (not in medgraph::config::ENV_VARS: {ENV_VARS:?})"
        );
    }
    for required in ["DATABASE_URL", "JWT_SECRET"] {
        assert!(
            names.iter().any(|name| name == required),
            "docker-compose.yml must set `{required}` for medgraph; it sets {names:?}"
        );
    }

    assert_eq!(
        medgraph["depends_on"]["db"]["condition"].as_str(),
        Some("service_healthy"),
        "medgraph must depend on db with `condition: service_healthy`"
    );

    let db = service(&compose, "db");
    let healthcheck = &db["healthcheck"];
    assert!(
        healthcheck.is_mapping() && !healthcheck["test"].is_null(),
        "service db needs a healthcheck with a test"
    );

    let image = db["image"].as_str().unwrap_or_default();
    assert!(
        image.starts_with("postgres:16"),
        "service db must run PostgreSQL 16, found image `{image}`"
    );
}

#[test]
fn env_example_documents_every_config_variable() {
    let text = read(".env.example");
    let documented: Vec<&str> = text.lines().filter_map(assigned_name).collect();

    let missing: Vec<&str> = ENV_VARS
        .iter()
        .copied()
        .filter(|name| !documented.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        ".env.example must document every config variable as `NAME=` or `# NAME=` at the start of a line; \
         missing: {missing:?}"
    );

    let unknown: Vec<&str> = documented
        .iter()
        .copied()
        .filter(|name| !ENV_VARS.contains(name) && !DOCUMENTED_ELSEWHERE.contains(name))
        .collect();
    assert!(
        unknown.is_empty(),
        ".env.example documents variables nothing reads: {unknown:?}"
    );
}

#[test]
fn dockerfile_runs_as_non_root_from_a_multi_stage_build() {
    let text = read("Dockerfile");
    // Instructions only: no comments (including the `# syntax=` directive) and no blank lines.
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();

    let instruction = |line: &str, keyword: &str| -> bool {
        line.split_whitespace()
            .next()
            .is_some_and(|first| first.eq_ignore_ascii_case(keyword))
    };

    let from_lines: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| instruction(line, "FROM"))
        .map(|(index, _)| index)
        .collect();
    assert!(
        from_lines.len() >= 2,
        "the Dockerfile must be a multi-stage build (at least two FROM lines), found {}",
        from_lines.len()
    );

    // The user that counts is the last USER of the final stage.
    let final_stage_start = from_lines.last().copied().unwrap_or_default();
    let user = lines[final_stage_start..]
        .iter()
        .rev()
        .find(|line| instruction(line, "USER"))
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("the final stage of the Dockerfile has no USER instruction"));
    let user_name = user.split(':').next().unwrap_or(user);
    assert!(
        !user_name.is_empty() && user_name != "root" && user_name != "0",
        "the final stage must run as a non-root user, found `USER {user}`"
    );

    assert!(
        lines.iter().any(|line| line.contains("--bin medgraph")),
        "the Dockerfile must build the binary with `--bin medgraph`"
    );
}

#[test]
fn dockerfile_copies_every_workspace_member() {
    // Cargo refuses to build when a listed member is missing, so each must be in the build context.
    let manifest = read("Cargo.toml");
    let members_line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("a [workspace] members line");
    let members: Vec<&str> = members_line
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|m| *m != ".")
        .collect();
    assert!(members.contains(&"migration"), "{members:?}");
    let dockerfile = read("Dockerfile");
    for member in members {
        assert!(
            dockerfile
                .lines()
                .any(|l| l.trim() == format!("COPY {member} ./{member}")),
            "the Dockerfile does not copy workspace member {member}"
        );
    }
    // The build script and the link order it hands the linker (src/build.rs) must be in the context.
    assert!(
        manifest
            .lines()
            .any(|l| l.trim() == r#"build = "src/build.rs""#),
        "Cargo.toml names src/build.rs as the build script"
    );
    assert!(
        dockerfile.lines().any(|l| l.trim() == "COPY src ./src"),
        "the Dockerfile must copy src/ (sources and the build script)"
    );
    // The build settings there (jemalloc's options) belong in the image's binary too.
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == "COPY .cargo ./.cargo"),
        "the Dockerfile must copy .cargo/ (build-time settings)"
    );
}
