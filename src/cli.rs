//! The command line: `serve`, `check-config`, `migrate`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use crate::{
    config::{Config, LogConfig, LogFormat},
    store::Store,
    Application,
};

#[derive(Parser)]
#[command(
    name = "ci-bridge",
    version,
    about = "GitLab webhooks in, Jenkins builds out, commit statuses back."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Configuration file.
    #[arg(long, env = "CI_BRIDGE_CONFIG", default_value = "ci-bridge.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve(ConfigArg),
    /// Load and validate the configuration, and print it with every secret masked.
    CheckConfig(ConfigArg),
    /// Apply database migrations and exit (`serve` applies them too).
    Migrate(ConfigArg),
    /// Run an event again: its dead letters come back to life (or, without any, it is
    /// planned anew). A running service picks the work up within a second.
    Replay {
        /// The `event_id` the webhook was answered with.
        event_id: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// The audit trail: `audit verify` checks the evidence hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print the compliance report: merges with their evidence, and every deviation.
    Report {
        /// The period to cover, back from now (`7d`, `24h`, `2w`).
        #[arg(long, default_value = "7d")]
        since: String,
        /// `markdown`, `json` or `csv`.
        #[arg(long, default_value = "markdown")]
        format: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Watch the whole flow locally: fakes of GitLab and Jenkins, the real service, a push.
    Demo {
        /// Address the demo service listens on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Database of the demo.
        #[arg(long, default_value = "sqlite://ci-bridge-demo.db")]
        database: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the evidence chain; exits non-zero naming the first broken record.
    Verify {
        /// A chain head kept from a compliance check or report, `SEQ:HASH`; the chain must
        /// still hold that record with that hash (repeatable).
        #[arg(long = "anchor", value_name = "SEQ:HASH")]
        anchors: Vec<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// Runs the command; the error, if any, is printed by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(arg) => {
            let config = load(&arg)?;
            init_logging(&config.log);
            serve(config).await
        }
        Command::Replay { event_id, config } => {
            let config = load(&config)?;
            let store = Store::connect(&config.database.url, 2).await?;
            match store.replay_event(&event_id).await? {
                Some(0) => println!("event {event_id}: no dead letters; planned again"),
                Some(revived) => {
                    println!("event {event_id}: {revived} dead letter(s) queued again")
                }
                None => anyhow::bail!("no event {event_id} in the database"),
            }
            Ok(())
        }
        Command::CheckConfig(arg) => {
            let config = load(&arg)?;
            println!("{}", config.to_masked_toml());
            eprintln!("{}: configuration is valid", arg.config.display());
            Ok(())
        }
        Command::Demo { listen, database } => {
            init_logging(&LogConfig {
                level: "warn".into(),
                ..LogConfig::default()
            });
            crate::demo::run(&listen, &database).await
        }
        Command::Audit {
            command: AuditCommand::Verify { anchors, config },
        } => {
            let config = load(&config)?;
            crate::audit::cli::verify(&config, &anchors).await
        }
        Command::Report {
            since,
            format,
            config,
        } => {
            let config = load(&config)?;
            crate::audit::cli::report(&config, &since, &format).await
        }
        Command::Migrate(arg) => {
            let config = load(&arg)?;
            init_logging(&config.log);
            Store::connect(&config.database.url, 2).await?;
            eprintln!("database is up to date");
            Ok(())
        }
    }
}

fn load(arg: &ConfigArg) -> anyhow::Result<Config> {
    Config::load(&arg.config).map_err(|e| anyhow::anyhow!("{}: {e}", arg.config.display()))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    let app = Application::build(config, listener).await?;
    tracing::info!(address = %app.local_addr()?, "ci-bridge is serving");
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    app.run().await
}

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

/// Logs to stderr, as text or one JSON object per line. `RUST_LOG` overrides the level.
pub fn init_logging(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
