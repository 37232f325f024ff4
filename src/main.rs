//! Entry point: load `.env`, read configuration, start logging, run the command.

use clap::Parser;
use medgraph::{
    cli::{self, Cli, Command},
    config::Config,
    telemetry,
};

/// glibc's allocator spent a sixth of a point read's CPU in malloc/free and their free-list upkeep,
/// and kept growing under a long soak; jemalloc does neither (README, performance section).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A missing .env is normal; real environment variables take precedence over it. A malformed one
    // stops the start: the lines after the bad one would otherwise be silently ignored.
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        eprintln!("medgraph: invalid configuration: .env: {e}");
        return std::process::ExitCode::from(2);
    }
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Schema)) {
        print!("{}", medgraph::graphql::sdl());
        return std::process::ExitCode::SUCCESS;
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("medgraph: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let log_writer = telemetry::init(config.log_format, &config.log_filter);
    let result = cli::run(cli, config).await;
    telemetry::shutdown();
    let code = match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "medgraph failed");
            eprintln!("medgraph: {e:#}");
            std::process::ExitCode::FAILURE
        }
    };
    // Writes what is still buffered.
    drop(log_writer);
    code
}
