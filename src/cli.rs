//! The command line: `serve` (default), `migrate`, `schema`, `seed`, `user`.

use std::io::Read;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::{
    app::{self, AppState},
    auth::Auth,
    config::Config,
    domain::Role,
    services::{
        accounts::{self, Registration},
        seed::{self, SeedOptions},
    },
};

#[derive(Parser, Debug)]
#[command(
    name = "medgraph",
    version,
    about = "A healthcare backend served as a single GraphQL API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run pending migrations and serve the API (the default).
    Serve,
    /// Manage the database schema.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL schema (SDL); needs no database.
    Schema,
    /// Fill the database with realistic demo data (idempotent per run id).
    Seed(SeedArgs),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Revert migrations (the last one by default).
    Down {
        /// How many to revert.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table and apply all migrations again (destroys all data).
    Fresh,
}

#[derive(Args, Debug)]
pub struct SeedArgs {
    /// Distinguishes seed runs: seeding the same run id twice changes nothing.
    #[arg(long, default_value = "demo")]
    pub run_id: String,
    /// Number of users (at least 1: the first user's account marks the run as seeded).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub users: u32,
    /// Patients of each user (the first user gets `--first-user-patients` if given).
    #[arg(long, default_value_t = 20)]
    pub patients: u32,
    /// Patients of the first user, e.g. a benchmark user with many records.
    #[arg(long)]
    pub first_user_patients: Option<u32>,
    /// Number of doctors.
    #[arg(long, default_value_t = 20)]
    pub doctors: u32,
    /// Doctor assignments on each user's patients (capped by what is possible).
    #[arg(long, default_value_t = 30)]
    pub mappings: u32,
    /// Password of every seeded user.
    #[arg(long, default_value = seed::DEFAULT_PASSWORD)]
    pub password: String,
}

#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Create an account. The password is read from MEDGRAPH_PASSWORD or, if unset, from stdin.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: String,
        /// Make the account an ADMIN.
        #[arg(long)]
        admin: bool,
    },
    /// Make an existing account an ADMIN.
    Promote {
        #[arg(long)]
        email: String,
    },
    /// Make an ADMIN a regular USER again.
    Demote {
        #[arg(long)]
        email: String,
    },
    /// Unlock an account locked after too many failed logins, and reset its failure count.
    Unlock {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Command::Migrate { action } => migrate(&config, action).await,
        Command::Seed(args) => {
            let state = AppState::connect(&config).await?;
            let options = SeedOptions {
                run_id: args.run_id,
                users: args.users,
                patients_per_user: args.patients,
                first_user_patients: args.first_user_patients,
                doctors: args.doctors,
                mappings_per_user: args.mappings,
                password: args.password,
            };
            let report = seed::run(&state.db, &state.auth, &options)
                .await
                .map_err(|e| e.into_anyhow())?;
            println!("{report}");
            Ok(())
        }
        Command::User { action } => user(&config, action).await,
    }
}

/// Longest a shutdown waits to write buffered audit rows.
const SHUTDOWN_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

async fn serve(config: Config) -> anyhow::Result<()> {
    if config.jwt_secret.generated {
        tracing::warn!(
            "JWT_SECRET is not set: using a random secret for this process; tokens end with it"
        );
    }
    let state = AppState::connect(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind_addr)
        .await
        .with_context(|| format!("binding {}", config.bind_addr))?;
    let addr = listener.local_addr()?;
    tracing::info!(database = %app::redact_url(&config.database_url), "medgraph listening on http://{addr}");
    println!("medgraph is running: GraphiQL at http://{addr}/graphql");
    app::serve(listener, app::router(state.clone())).await?;
    // Bounded: with the database gone for good, buffered audit rows cannot be written, and the process
    // must still end within an orchestrator's grace period.
    if tokio::time::timeout(SHUTDOWN_FLUSH_LIMIT, state.shutdown())
        .await
        .is_err()
    {
        tracing::error!("buffered audit rows could not be written before shutdown; they are lost");
    }
    if let Err(e) = state.db.close_by_ref().await {
        tracing::warn!(error = %e, "closing the database pool");
    }
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: &Config, action: MigrateAction) -> anyhow::Result<()> {
    let (db, _) = app::connect_database(config).await?;
    match action {
        MigrateAction::Up => Migrator::up(&db, None).await?,
        MigrateAction::Down { steps } => Migrator::down(&db, Some(steps)).await?,
        MigrateAction::Fresh => Migrator::fresh(&db).await?,
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!("{:?}\t{}", migration.status(), migration.name());
            }
        }
    }
    Ok(())
}

async fn user(config: &Config, action: UserAction) -> anyhow::Result<()> {
    let state = AppState::connect(config).await?;
    match action {
        UserAction::Create { name, email, admin } => {
            let password = match std::env::var("MEDGRAPH_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut p = String::new();
                    std::io::stdin()
                        .read_to_string(&mut p)
                        .context("reading the password from stdin")?;
                    p.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let role = if admin { Role::Admin } else { Role::User };
            let auth = Auth::new(config);
            let user = accounts::create_user(
                &state.db,
                &auth,
                Registration {
                    name,
                    email,
                    password,
                },
                role,
            )
            .await
            .map_err(|e| e.into_anyhow())?;
            println!("created {} ({}) as {}", user.email, user.id, role.as_str());
        }
        UserAction::Promote { email } => {
            accounts::set_role(&state.db, &email, Role::Admin)
                .await
                .map_err(|e| e.into_anyhow())?;
            println!("{email} is now ADMIN (effective with their next access token)");
        }
        UserAction::Unlock { email } => {
            accounts::unlock(&state.db, &email)
                .await
                .map_err(|e| e.into_anyhow())?;
            println!("{email} is unlocked");
        }
        UserAction::Demote { email } => {
            accounts::set_role(&state.db, &email, Role::User)
                .await
                .map_err(|e| e.into_anyhow())?;
            println!("{email} is now USER (effective with their next access token)");
        }
    }
    Ok(())
}
