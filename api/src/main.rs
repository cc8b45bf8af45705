//! `api`: the social API's one binary. With no arguments it serves; `api --help` lists what
//! else it does. Configuration comes from defaults, `config.toml`, the environment and
//! `.env` (see the README).

use std::{io::IsTerminal, process::ExitCode};

use api::{AdminAction, Application, MigrateAction, Settings};
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use service::seed::{SeedCounts, SeedTable};
use tracing_subscriber::EnvFilter;

// glibc's malloc contends on its locks under load; mimalloc keeps per-thread heaps. Its
// `no_thp` build keeps transparent huge pages off, which cost memory at idle.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The social API: serve it, migrate its database, give roles, print its spec, seed demo
/// data.
#[derive(Parser)]
#[command(name = "api", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (what `api` with no command does).
    Serve,
    /// Apply, roll back or list the database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Give an account a role, or take it back, on a running service or a stopped one.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Print the OpenAPI document: `api openapi > openapi.yaml` regenerates the committed one.
    Openapi {
        /// JSON instead of YAML.
        #[arg(long)]
        json: bool,
    },
    /// Add demo or benchmark data: users `seedN@example.org` (password `password123`),
    /// their posts and votes.
    Seed {
        #[arg(long, default_value_t = 100)]
        users: u64,
        #[arg(long, default_value_t = 1_000)]
        posts: u64,
        #[arg(long, default_value_t = 10_000)]
        votes: u64,
    },
}

/// The password every seeded user shares (as in `shared/peers/seed.sql`).
const SEED_PASSWORD: &str = "password123";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let message = err.to_string();
            let first = message.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see `api --help`)");
            return ExitCode::from(2);
        }
    };
    match run(cli.command.unwrap_or(Command::Serve)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    if let Command::Openapi { json } = command {
        let spec = if json {
            api::openapi_json()
        } else {
            api::openapi_yaml()
        };
        print!("{spec}");
        return Ok(());
    }
    let settings = Settings::load()?;
    init_tracing(&settings);
    match command {
        Command::Serve => serve(settings).await,
        Command::Migrate { action } => {
            for line in api::migrate(&settings, action).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Admin { action } => {
            println!("{}", api::admin(&settings, action).await?);
            Ok(())
        }
        Command::Seed {
            users,
            posts,
            votes,
        } => {
            seed(
                &settings,
                SeedCounts {
                    users,
                    posts,
                    votes,
                },
            )
            .await
        }
        Command::Openapi { .. } => unreachable!("handled above"),
    }
}

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if settings.log_json() {
        builder.json().flatten_event(true).init();
    } else {
        builder.with_ansi(std::io::stdout().is_terminal()).init();
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}

async fn seed(settings: &Settings, counts: SeedCounts) -> anyhow::Result<()> {
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>5} [{bar:40}] {pos}/{len} {per_sec}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = |name: &'static str, len: u64| {
        let bar = bars.add(
            ProgressBar::new(len)
                .with_style(style.clone())
                .with_prefix(name),
        );
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar
    };
    let (users, posts, votes) = (
        bar("users", counts.users),
        bar("posts", counts.posts),
        bar("votes", counts.votes),
    );
    let started = std::time::Instant::now();
    api::seed(
        settings,
        counts,
        SEED_PASSWORD,
        |table, done, _| match table {
            SeedTable::Users => users.set_position(done),
            SeedTable::Posts => posts.set_position(done),
            SeedTable::Votes => votes.set_position(done),
        },
    )
    .await?;
    for bar in [&users, &posts, &votes] {
        bar.finish();
    }
    println!(
        "seeded {} users, {} posts, {} votes in {:.1}s; users log in as seedN@example.org with password {SEED_PASSWORD}",
        counts.users,
        counts.posts,
        counts.votes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
