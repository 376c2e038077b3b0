//! `quotecast-with-server [--bin B] [--log F] [--arg A]... -- COMMAND...`:
//! starts `quotecast serve` on a loopback port, waits for its ready line
//! like every harness here, runs COMMAND with the address in
//! `QUOTECAST_ADDR`, then stops the server. For shell scripts
//! (tools/scripts/autobahn), so that none parses the ready line itself.
//!
//! Exits with COMMAND's status, or 125 when the server did not start or
//! was no longer running when COMMAND ended.

use clap::Parser;
use quotecast_testkit::server::{Spawn, Stderr};
use quotecast_testkit::token;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The wrapper's own failure, apart from any status of COMMAND.
const FAILED: u8 = 125;

#[derive(Parser, Debug)]
#[command(about = "Run a command against a quotecast started on a loopback port")]
struct Args {
    /// The quotecast binary.
    #[arg(long, default_value = "target/debug/quotecast")]
    bin: String,
    /// File the server's stderr goes to (default: discarded).
    #[arg(long)]
    log: Option<PathBuf>,
    /// One more argument of `quotecast serve` (repeatable).
    #[arg(long = "arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The command and its arguments.
    #[arg(required = true, last = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stderr = args.log.map_or(Stderr::Discard, Stderr::File);
    let mut server = match Spawn::quotecast(&args.bin, &token::new_secret())
        .args(&args.server_args)
        .stderr(stderr)
        .start()
    {
        Ok(server) => server,
        Err(e) => {
            eprintln!("quotecast-with-server: {e}");
            return ExitCode::from(FAILED);
        }
    };
    let status = Command::new(&args.command[0])
        .args(&args.command[1..])
        .env("QUOTECAST_ADDR", server.addr.to_string())
        .status();
    if let Some(exit) = server.wait_exit(Instant::now()) {
        eprintln!("quotecast-with-server: the server exited during the command ({exit})");
        return ExitCode::from(FAILED);
    }
    server.stop();
    match status {
        Ok(status) => ExitCode::from(status.code().map_or(FAILED, |c| c as u8)),
        Err(e) => {
            eprintln!("quotecast-with-server: running {}: {e}", args.command[0]);
            ExitCode::from(FAILED)
        }
    }
}
