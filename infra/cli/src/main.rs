//! `twilio-events`: run the pipeline on a laptop, and troubleshoot Twilio signatures.

mod commands;
mod secrets;

use clap::{Parser, Subcommand};
use commands::{CliError, Outcome};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "twilio-events", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success; 1 failure: a rejected signature or delivery, lost or duplicated events, or a step that failed (the network, Twilio, a store); 2 usage error: bad flags or unreadable input, nothing done."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check an X-Twilio-Signature, and say why it does not validate.
    Verify(commands::verify::VerifyArgs),
    /// Sign a body as Twilio would: prints the URL and headers it sends.
    Sign(commands::sign::SignArgs),
    /// Print each event of a delivery as one JSON line (id, type, time, resource, account, kind, status).
    Parse(commands::parse::ParseArgs),
    /// Run the pipeline locally: the webhook, the store, the stream and its consumers.
    Serve(Box<commands::serve::ServeArgs>),
    /// Read the local stream.
    #[command(subcommand)]
    Stream(commands::stream::StreamCommand),
    /// Connect a Twilio account to the deployed stack: webhook sink, validation, subscription.
    Setup(commands::setup::SetupArgs),
    /// Send realistic Twilio traffic, delivered as Twilio delivers; report lost and duplicated.
    Simulate(commands::simulate::SimulateArgs),
    /// Re-drive a consumer function (crm-sync, quota-alert, any ARN) with what a Kinesis stream
    /// holds from a point in time, in Kinesis-shaped batches.
    Replay(commands::replay::ReplayArgs),
    /// Look up a window's messages and calls in Twilio's REST API and store the statuses the
    /// stream never received.
    Reconcile(commands::reconcile::ReconcileArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<Outcome, CliError> = match cli.command {
        Command::Verify(args) => commands::verify::run(args),
        Command::Sign(args) => commands::sign::run(args),
        Command::Parse(args) => commands::parse::run(args),
        Command::Serve(args) => commands::serve::run(*args),
        Command::Stream(command) => commands::stream::run(command),
        Command::Setup(args) => commands::setup::run(args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Reconcile(args) => commands::reconcile::run(args),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(1),
        Err(error) => {
            print_error(&error);
            ExitCode::from(error.exit_code())
        }
    }
}

/// The error, then each of its causes on its own line.
fn print_error(error: &CliError) {
    let error = error.cause();
    eprintln!("error: {error}");
    let mut cause = error.source();
    while let Some(current) = cause {
        eprintln!("  cause: {current}");
        cause = current.source();
    }
}
