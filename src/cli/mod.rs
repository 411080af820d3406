//! The `vfs` command line: arguments, the runtime, and how results and errors are printed.

mod demo;
mod interrupt;
mod mount;
mod output;
mod serve;
mod source;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use interrupt::Policy;
use output::{Failure, Report};

/// The command succeeded.
const EXIT_OK: u8 = 0;
/// The command ran and failed (an errno on stderr).
const EXIT_FAILED: u8 = 1;
/// The command line itself was wrong; nothing ran.
const EXIT_USAGE: u8 = 2;

/// A virtual filesystem layer: snapshot, restore, diff, export and serve filesystems.
#[derive(Debug, Parser)]
#[command(name = "vfs", version, propagate_version = true)]
struct Cli {
    /// The snapshot store: a directory, file:///dir or s3://bucket/prefix (S3 settings
    /// from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...).
    #[arg(
        long,
        global = true,
        env = "VFS_STORE",
        default_value = "./.vfs-store",
        value_name = "URL"
    )]
    store: String,
    /// Print one JSON document on stdout (errors as {"error": {...}}); no progress bars.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the actions as JSON-RPC 2.0 (see PROTOCOL.md) until stdin closes or Ctrl-C.
    Serve {
        /// Over stdin/stdout (the default).
        #[arg(long, conflicts_with = "socket")]
        stdio: bool,
        /// Over a Unix socket at PATH, for any number of clients.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// The mounts to boot with (.toml or .json); default: an empty memory root.
        #[arg(long, value_name = "FILE")]
        mounts: Option<PathBuf>,
        /// Also serve the mount table through FUSE at this directory, so the mounts
        /// clients make and remove show to every process.
        #[arg(long, value_name = "DIR")]
        fuse_mount: Option<PathBuf>,
    },
    /// Serve a mount table through FUSE at a directory, in the foreground until Ctrl-C or
    /// SIGTERM unmounts it.
    Mount {
        /// An existing directory that is not already a mount point.
        mountpoint: PathBuf,
        /// The mounts to boot with (.toml or .json); default: an empty memory root.
        #[arg(long, visible_alias = "mounts", value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        fuse: mount::FuseArgs,
    },
    /// Snapshot a host directory, or the root of a mounts config (.toml/.json).
    Snapshot {
        /// A directory, or a mounts config file.
        source: PathBuf,
        /// Point this tag at the snapshot.
        #[arg(long)]
        tag: Option<String>,
        /// Record owners and times as 0 (the same content gives the same id anywhere).
        #[arg(long)]
        normalize: bool,
    },
    /// Restore a snapshot into a missing or empty host directory.
    Restore {
        /// A snapshot id (or a unique prefix of 6+ digits) or a tag.
        snapshot: String,
        /// The directory to fill.
        dir: PathBuf,
    },
    /// Differences between two snapshots, or a snapshot and a live directory or config.
    Diff {
        /// A snapshot (id, prefix, tag), or a live tree: a path containing `/` (./dir),
        /// `.`, or a .toml/.json mounts config.
        a: String,
        /// The other side.
        b: String,
        /// Compare a live side as `snapshot --normalize` captured it.
        #[arg(long)]
        normalize: bool,
    },
    /// Write a snapshot as a .tar, .tar.zst or agentOS .json archive.
    Export {
        /// A snapshot id, prefix or tag.
        snapshot: String,
        /// The archive to write; its name picks the format.
        out: PathBuf,
    },
    /// Store a .tar, .tar.zst or agentOS .json archive as a snapshot.
    Import {
        /// The archive.
        file: PathBuf,
        /// Point this tag at the snapshot.
        #[arg(long)]
        tag: Option<String>,
    },
    /// List the store's snapshots with their tags, oldest first.
    Snapshots,
    /// Read and check every blob a snapshot needs; fails if any is missing or corrupt.
    Verify {
        /// A snapshot id, prefix or tag.
        snapshot: String,
    },
    /// Remove snapshots that are neither tagged, kept nor recent, and the data only they used.
    Gc {
        /// Keep this snapshot too (id, prefix or tag); repeatable.
        #[arg(long, value_name = "SNAPSHOT")]
        keep: Vec<String>,
        /// Keep whatever is younger than this (90s, 15m, 2h, 7d).
        #[arg(long, value_name = "AGE", default_value = "1h", value_parser = store::parse_age)]
        keep_recent: Duration,
        /// How long to wait for running snapshots and imports to finish before giving up
        /// with EBUSY (a writer killed mid-way holds its lock until it is a day old).
        #[arg(long, value_name = "AGE", default_value = "10m", value_parser = store::parse_age)]
        wait: Duration,
    },
    /// Run the whole story on embedded defaults: mounts after boot, two snapshots, a
    /// diff, an export.
    Demo,
}

/// Parses the arguments, runs the command, prints, and picks the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let json = cli.json;
    let policy = interrupt_policy(&cli.command);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            return fail(
                json,
                vfs_layer::core::VfsError::from_io("start runtime", err).into(),
            )
        }
    };
    let result = runtime.block_on(async move {
        if let Some(policy) = policy {
            interrupt::install(policy);
        }
        run(cli).await
    });
    match result {
        Ok(Some(report)) => {
            if json {
                println!("{}", report.json);
            } else {
                println!("{}", report.text);
            }
            ExitCode::from(EXIT_OK)
        }
        Ok(None) => ExitCode::from(EXIT_OK),
        Err(failure) if policy == Some(Policy::Stop) && interrupt::requested() => {
            if json {
                println!("{}", failure.to_json());
            }
            eprintln!("vfs: interrupted by a signal; stopped before recording anything");
            ExitCode::from(interrupt::EXIT_INTERRUPTED)
        }
        Err(failure) => fail(json, failure),
    }
}

/// How a command meets Ctrl-C or SIGTERM (`serve` and `mount` handle them themselves).
fn interrupt_policy(command: &Command) -> Option<Policy> {
    Some(match command {
        Command::Serve { .. } | Command::Mount { .. } => return None,
        Command::Snapshot { .. } | Command::Import { .. } => Policy::Stop,
        Command::Gc { .. } => Policy::Finish("the garbage collection"),
        Command::Export { .. } => Policy::Finish("the export"),
        Command::Restore { .. }
        | Command::Diff { .. }
        | Command::Snapshots
        | Command::Verify { .. }
        | Command::Demo => Policy::Exit,
    })
}

fn fail(json: bool, failure: Failure) -> ExitCode {
    if json {
        println!("{}", failure.to_json());
    }
    eprintln!("vfs: {failure}");
    ExitCode::from(EXIT_FAILED)
}

/// Help and version go to stdout as usual; a wrong command line is one line on stderr.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_OK)
            }
        }
        _ => {
            // clap's first paragraph says what is wrong (its indented lines list the
            // missing arguments); the usage and tips after it are for --help.
            let rendered = err.render().to_string();
            let what: Vec<&str> = rendered
                .lines()
                .skip_while(|line| line.trim().is_empty())
                .take_while(|line| !line.trim().is_empty())
                .map(str::trim)
                .collect();
            let what = what.join(" ");
            let what = what.trim_start_matches("error: ");
            eprintln!("vfs: usage: {what} (see `vfs --help`)");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

async fn run(cli: Cli) -> Result<Option<Report>, Failure> {
    let cx = store::Context {
        store: cli.store,
        json: cli.json,
    };
    let report = match cli.command {
        Command::Serve {
            stdio: _,
            socket,
            mounts,
            fuse_mount,
        } => {
            let fuse_mount = fuse_mount.as_deref();
            serve::serve(&cx, socket.as_deref(), mounts.as_deref(), fuse_mount).await?;
            return Ok(None);
        }
        Command::Mount {
            mountpoint,
            config,
            fuse,
        } => {
            mount::mount(&cx, &mountpoint, config.as_deref(), &fuse).await?;
            return Ok(None);
        }
        Command::Snapshot {
            source,
            tag,
            normalize,
        } => store::snapshot(&cx, &source, tag.as_deref(), normalize).await?,
        Command::Restore { snapshot, dir } => store::restore(&cx, &snapshot, &dir).await?,
        Command::Diff { a, b, normalize } => store::diff(&cx, &a, &b, normalize).await?,
        Command::Export { snapshot, out } => store::export(&cx, &snapshot, &out).await?,
        Command::Import { file, tag } => store::import(&cx, &file, tag.as_deref()).await?,
        Command::Snapshots => store::list(&cx).await?,
        Command::Verify { snapshot } => store::verify(&cx, &snapshot).await?,
        Command::Gc {
            keep,
            keep_recent,
            wait,
        } => store::gc(&cx, &keep, keep_recent, wait).await?,
        Command::Demo => demo::run(&cx).await?,
    };
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stdio_and_socket_exclude_each_other() {
        let err =
            Cli::try_parse_from(["vfs", "serve", "--stdio", "--socket", "/tmp/s"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
