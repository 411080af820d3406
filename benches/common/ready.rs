//! Driving futures that complete without waiting, at no executor's cost.

use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Runs a future that never waits (memory drivers, inline host calls) by polling it once
/// with a no-op waker; blocks on one that does wait.
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => futures::executor::block_on(future),
    }
}
