//! Running many borrowed jobs at once, even over drivers whose calls block their task.
//!
//! `buffer_unordered` on one task only overlaps jobs that yield. A driver that makes
//! blocking syscalls through `block_in_place` (host_dir on a multi-threaded runtime)
//! holds the whole task for each call, so a thousand small-file reads run one after
//! another however many are "in flight". The jobs borrow the caller's filesystem and
//! state, so they cannot be `tokio::spawn`ed; scoped threads can run them instead. Each
//! thread enters the caller's runtime and drives its share with a plain executor: tokio
//! resources (timers, sockets, spawned tasks) still work, and `block_in_place` outside a
//! worker runs the call on that thread, which is what it is there for.

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::runtime::{Handle, RuntimeFlavor};

/// As [`for_each_job`] for jobs that can fail: each success goes to `on_ok`; the first
/// failure stops the run (no further job starts) and is returned.
pub(crate) async fn try_for_each_job<T, Fut>(
    count: usize,
    concurrency: usize,
    job: impl Fn(usize) -> Fut + Sync,
    mut on_ok: impl FnMut(T) + Send,
) -> vfs_core::Result<()>
where
    T: Send,
    Fut: Future<Output = vfs_core::Result<T>> + Send,
{
    let mut first_error = None;
    for_each_job(count, concurrency, job, |result| match result {
        Ok(value) => {
            on_ok(value);
            ControlFlow::Continue(())
        }
        Err(err) => {
            // Jobs still running may fail too: the first failure is the one to report.
            first_error.get_or_insert(err);
            ControlFlow::Break(())
        }
    })
    .await;
    first_error.map_or(Ok(()), Err)
}

/// Runs `job(0..count)` with up to `concurrency` jobs at once and hands each output to
/// `on_done` as it finishes, in no particular order. Once `on_done` says
/// [`ControlFlow::Break`] (a failure that dooms the whole run), no further job starts;
/// those already running finish.
///
/// On a multi-threaded tokio runtime the jobs are spread over one thread per core (each
/// overlapping its share), so jobs that block their thread still run in parallel; on a
/// current-thread runtime or outside tokio they are interleaved on the calling task.
pub(crate) async fn for_each_job<T, Fut>(
    count: usize,
    concurrency: usize,
    job: impl Fn(usize) -> Fut + Sync,
    on_done: impl FnMut(T) -> ControlFlow<()> + Send,
) where
    T: Send,
    Fut: Future<Output = T> + Send,
{
    let concurrency = concurrency.max(1);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(concurrency)
        .min(count);
    let handle = Handle::try_current()
        .ok()
        .filter(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread);
    let Some(handle) = handle.filter(|_| threads > 1) else {
        let mut on_done = on_done;
        let stop = AtomicBool::new(false);
        let claimed = (0..count).take_while(|_| !stop.load(Ordering::Relaxed));
        let mut results = futures::stream::iter(claimed)
            .map(&job)
            .buffer_unordered(concurrency);
        while let Some(output) = results.next().await {
            if on_done(output).is_break() {
                stop.store(true, Ordering::Relaxed);
            }
        }
        return;
    };
    let per_thread = concurrency.div_ceil(threads);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let on_done = Mutex::new(on_done);
    let (job, next, stop, on_done) = (&job, &next, &stop, &on_done);
    // The calling task waits for its threads; block_in_place hands its worker's other
    // tasks to another thread meanwhile, which the jobs' own spawned work may need.
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let handle = handle.clone();
                scope.spawn(move || {
                    let _runtime = handle.enter();
                    let claimed = std::iter::from_fn(|| {
                        if stop.load(Ordering::Relaxed) {
                            return None;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        (i < count).then_some(i)
                    });
                    futures::executor::block_on(
                        futures::stream::iter(claimed)
                            .map(job)
                            .buffer_unordered(per_thread)
                            .for_each(|output| {
                                if (on_done.lock())(output).is_break() {
                                    stop.store(true, Ordering::Relaxed);
                                }
                                futures::future::ready(())
                            }),
                    );
                });
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocking_sum(flavor_threads: Option<usize>) -> (u64, usize) {
        let runtime = match flavor_threads {
            Some(workers) => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build(),
            None => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
        .unwrap();
        runtime.block_on(async {
            let threads_seen = Mutex::new(std::collections::HashSet::new());
            let mut sum = 0u64;
            for_each_job(
                200,
                8,
                |i| {
                    let threads_seen = &threads_seen;
                    async move {
                        threads_seen.lock().insert(std::thread::current().id());
                        // A timer and a spawned task must work from any thread.
                        tokio::time::sleep(std::time::Duration::from_micros(10)).await;
                        tokio::spawn(async move { i as u64 }).await.unwrap()
                    }
                },
                |value| {
                    sum += value;
                    ControlFlow::Continue(())
                },
            )
            .await;
            let seen = threads_seen.lock().len();
            (sum, seen)
        })
    }

    #[test]
    fn every_job_runs_once_on_any_runtime() {
        let expected: u64 = (0..200).sum();
        let (sum, _) = blocking_sum(None);
        assert_eq!(sum, expected);
        let (sum, threads) = blocking_sum(Some(2));
        assert_eq!(sum, expected);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cores > 1 {
            assert!(
                threads > 1,
                "jobs ran on {threads} thread(s) of {cores} cores"
            );
        }
    }
}
