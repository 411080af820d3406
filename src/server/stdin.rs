//! Stdin read on a thread of its own, so a server that stops on a signal can end the
//! process: tokio's `stdin()` reads on the blocking pool, and a runtime waits for its
//! blocking pool when dropped, so a read that never returns would keep the process alive.

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// How much one read of stdin takes.
const CHUNK: usize = 64 << 10;

/// Stdin as an [`AsyncRead`], fed by a detached thread.
pub(crate) struct Stdin {
    chunks: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Stdin {
    pub(crate) fn new() -> std::io::Result<Stdin> {
        // Two chunks ahead: enough to overlap reading with parsing, bounded memory.
        let (tx, chunks) = mpsc::channel(2);
        std::thread::Builder::new()
            .name("vfs-stdin".into())
            .spawn(move || {
                let mut stdin = std::io::stdin().lock();
                loop {
                    let mut buffer = vec![0u8; CHUNK];
                    let chunk = match stdin.read(&mut buffer) {
                        Ok(0) => return,
                        Ok(n) => {
                            buffer.truncate(n);
                            Ok(Bytes::from(buffer))
                        }
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(err) => Err(err),
                    };
                    let failed = chunk.is_err();
                    if tx.blocking_send(chunk).is_err() || failed {
                        return;
                    }
                }
            })?;
        Ok(Stdin {
            chunks,
            current: Bytes::new(),
        })
    }
}

impl AsyncRead for Stdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.current.is_empty() {
            match self.chunks.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                // The thread ended: end of input.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Err(err)),
                Poll::Ready(Some(Ok(chunk))) => self.current = chunk,
            }
        }
        let n = self.current.len().min(buf.remaining());
        buf.put_slice(&self.current[..n]);
        self.current.advance(n);
        Poll::Ready(Ok(()))
    }
}
