//! Progress of a snapshot or restore, published through a `tokio::sync::watch` channel
//! given in the options: no callbacks, the latest state is always there to read, and a
//! slow or absent reader never slows the work or grows memory.

use std::sync::Arc;

use tokio::sync::watch;

/// Where an operation is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Listing the source tree (snapshot) or starting (restore).
    #[default]
    Listing,
    /// Reading and storing file content (snapshot) or writing it (restore).
    Content,
    /// Encoding and uploading trees, the last packs and the record (snapshot) or setting
    /// directory attributes (restore).
    Finishing,
    /// Finished successfully.
    Done,
}

/// One progress report. Totals are known once listing is over (snapshot) or from the
/// snapshot record (restore; 0 when the record is missing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The current phase.
    pub phase: Phase,
    /// Files to process (hard links counted once).
    pub files_total: u64,
    /// Files processed so far.
    pub files_done: u64,
    /// Content bytes to process.
    pub bytes_total: u64,
    /// Content bytes processed so far.
    pub bytes_done: u64,
}

/// The sending side, as the options take it.
///
/// ```
/// use std::sync::Arc;
/// use vfs_snapshot::{progress_channel, Phase, SnapshotOptions};
///
/// let (tx, rx) = progress_channel();
/// let options = SnapshotOptions { progress: Some(tx), ..SnapshotOptions::default() };
/// // Hand `options` to `Repository::snapshot`; elsewhere, `rx.changed().await` and
/// // `rx.borrow()` follow it.
/// assert_eq!(rx.borrow().phase, Phase::Listing);
/// # let _ = options;
/// ```
pub type ProgressSender = Arc<watch::Sender<Progress>>;

/// A new progress channel: the sender for the options and a receiver to watch.
pub fn progress_channel() -> (ProgressSender, watch::Receiver<Progress>) {
    let (tx, rx) = watch::channel(Progress::default());
    (Arc::new(tx), rx)
}

/// Applies `change` to the published state, if anyone asked for progress. `send_modify`
/// updates even with no receiver left, and never blocks.
pub(crate) fn report(sender: Option<&ProgressSender>, change: impl FnOnce(&mut Progress)) {
    if let Some(sender) = sender {
        sender.send_modify(change);
    }
}
