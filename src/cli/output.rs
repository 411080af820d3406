//! What the command line prints: one JSON document or readable text on stdout, one-line
//! errors on stderr, progress bars on stderr only when someone is watching.

use std::fmt;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};
use tokio::sync::watch;
use vfs_layer::actions::ActionError;
use vfs_layer::core::{ErrorKind, VfsError};
use vfs_layer::snapshot::{Phase, Progress};

/// A failed command: an errno string, one line for humans, the path it is about.
#[derive(Debug)]
pub struct Failure {
    code: String,
    line: String,
    path: Option<String>,
}

/// The one-line form: nested sources can carry newlines (HTTP bodies from a store).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Failure {
    /// A failure of `kind` raised by the command line itself (before any store or
    /// filesystem said anything), worded like [`VfsError`]'s lines.
    pub fn new(kind: ErrorKind, operation: &'static str, path: &str, detail: &str) -> Failure {
        VfsError::new(kind, operation)
            .with_path(path)
            .with_detail(detail)
            .into()
    }

    /// The errno string.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// `{"error": {"code", "message", "path"}}`, for `--json`.
    pub fn to_json(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.line, "path": self.path } })
    }
}

impl From<VfsError> for Failure {
    fn from(err: VfsError) -> Failure {
        Failure {
            code: err.code().to_owned(),
            line: one_line(&err.to_string()),
            path: err.path().map(str::to_owned),
        }
    }
}

impl From<ActionError> for Failure {
    fn from(err: ActionError) -> Failure {
        let mut line = one_line(&err.to_string());
        // Errors raised by the actions themselves (not a filesystem's) leave the path
        // out of the message; a user needs to know which file was wrong.
        if let Some(path) = err.path.as_deref().filter(|path| !line.contains(*path)) {
            line.push_str(&format!(" ('{path}')"));
        }
        Failure {
            line,
            code: err.code,
            path: err.path,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

/// What a command produced: text for people and a document for scripts, built together so
/// the two never disagree.
pub struct Report {
    /// Lines for a terminal.
    pub text: String,
    /// The `--json` document.
    pub json: Value,
}

/// Sizes as people read them (`1.50 MiB`).
pub fn size(bytes: u64) -> String {
    HumanBytes(bytes).to_string()
}

/// `1 file`, `2 files`.
pub fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Durations with the precision that matters at their scale.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 0.001 {
        format!("{} µs", d.as_micros())
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.2} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// Nanoseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn timestamp(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm, proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Whether progress bars may be drawn: not for scripts, not into a file or pipe.
pub fn bars_visible(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

fn target(visible: bool) -> ProgressDrawTarget {
    if visible {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

/// A spinner for work whose size is unknown.
pub fn spinner(visible: bool, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, target(visible));
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// A bar over `total` bytes, for work fed through `wrap_read` / `wrap_write`.
pub fn byte_bar(visible: bool, what: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), target(visible));
    bar.set_style(byte_style());
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn byte_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{prefix} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ({eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

/// A bar following a snapshot's or restore's progress channel until the work is over.
pub struct ProgressFollower {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl ProgressFollower {
    /// Starts following `progress`; `what` names the work ("snapshot", "restore").
    pub fn start(
        mut progress: watch::Receiver<Progress>,
        visible: bool,
        what: &str,
    ) -> ProgressFollower {
        let bar = spinner(visible, what);
        let follower = bar.clone();
        let task = tokio::spawn(async move {
            // Ends when the sender (inside the operation's options) is dropped.
            while progress.changed().await.is_ok() {
                let now = progress.borrow_and_update().clone();
                show(&follower, &now);
            }
        });
        ProgressFollower { bar, task }
    }

    /// Stops following and erases the bar.
    pub fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

fn show(bar: &ProgressBar, now: &Progress) {
    match now.phase {
        Phase::Listing => bar.set_message(format!("listing, {} files", now.files_total)),
        Phase::Content | Phase::Finishing | Phase::Done => {
            if bar.length().is_none() && now.bytes_total > 0 {
                bar.set_style(byte_style());
                bar.set_length(now.bytes_total);
            }
            bar.set_position(now.bytes_done);
            let phase = if now.phase == Phase::Finishing {
                ", finishing"
            } else {
                ""
            };
            bar.set_message(format!(
                "{}/{} files{phase}",
                now.files_done, now.files_total
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(0), "1970-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC, a leap day.
        assert_eq!(
            timestamp(1_709_210_096 * 1_000_000_000),
            "2024-02-29 12:34:56"
        );
        assert_eq!(timestamp(-1_000_000_000), "1969-12-31 23:59:59");
    }

    #[test]
    fn durations_keep_their_scale() {
        assert_eq!(duration(Duration::from_micros(250)), "250 µs");
        assert_eq!(duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(2_500)), "2.50 s");
        assert_eq!(duration(Duration::from_secs(125)), "2m05s");
    }

    #[test]
    fn failures_stay_on_one_line() {
        let err = VfsError::new(ErrorKind::Io, "get")
            .with_path("config")
            .with_detail("line one\nline two");
        let failure = Failure::from(err);
        assert_eq!(failure.code(), "EIO");
        assert!(!failure.to_string().contains('\n'));
        assert_eq!(failure.to_json()["error"]["path"], "config");
    }
}
