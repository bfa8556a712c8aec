//! The `ci-bridge` binary: parse the command line and hand over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ci_bridge::cli::Cli::parse();
    match ci_bridge::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ci-bridge: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
