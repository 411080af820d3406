//! The framing: every frame is a 4-byte big-endian length and that many bytes. A message
//! is one JSON frame followed by the binary attachment frames its JSON announces.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frames the server accepts. Past them the frame is refused with `EFBIG`
/// and the connection closed, as the stream can no longer be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest JSON frame, in bytes (default 16 MiB).
    pub max_json_frame: u32,
    /// The most attachment bytes of one message, all its attachments together
    /// (default 1 GiB).
    pub max_attachment: u32,
    /// The most attachments one message may announce (default 16).
    pub max_attachments: u32,
    /// The most requests of one connection running at once; the connection's reader
    /// waits beyond it (default 64).
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_json_frame: 16 << 20,
            max_attachment: 1 << 30,
            max_attachments: 16,
            max_in_flight: 64,
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The stream ended inside a frame (header or body).
    Truncated { expected: u64, got: u64 },
    /// The header announces more than the limit.
    TooLarge { length: u32, max: u32 },
    /// The stream failed.
    Io,
}

/// Reads one frame; `Ok(None)` when the stream ends cleanly between frames.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match reader.read(&mut header[got..]).await {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(FrameError::Truncated {
                    expected: 4,
                    got: got as u64,
                })
            }
            Ok(n) => got += n,
            Err(_) => return Err(FrameError::Io),
        }
    }
    let length = u32::from_be_bytes(header);
    if length > max {
        return Err(FrameError::TooLarge { length, max });
    }
    // Grown as bytes arrive, so a header alone cannot make the server allocate the limit.
    let mut body = Vec::with_capacity((length as usize).min(1 << 16));
    let read = (&mut *reader)
        .take(u64::from(length))
        .read_to_end(&mut body)
        .await
        .map_err(|_| FrameError::Io)?;
    if read as u64 != u64::from(length) {
        return Err(FrameError::Truncated {
            expected: u64::from(length),
            got: read as u64,
        });
    }
    Ok(Some(body))
}

/// One outgoing message: a JSON frame and its attachments.
pub(crate) struct Message {
    pub(crate) json: Vec<u8>,
    pub(crate) attachments: Vec<Bytes>,
}

/// Writes a message and flushes it.
pub(crate) async fn write_message<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &Message,
) -> std::io::Result<()> {
    write_frame(writer, &message.json).await?;
    for attachment in &message.attachments {
        write_frame(writer, attachment).await?;
    }
    writer.flush().await
}

async fn write_frame<W: AsyncWrite + Unpin>(writer: &mut W, body: &[u8]) -> std::io::Result<()> {
    let length = u32::try_from(body.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a frame is at most 4 GiB - 1 bytes",
        )
    })?;
    writer.write_all(&length.to_be_bytes()).await?;
    writer.write_all(body).await
}
