//! One client connection: requests read in order, run concurrently, answered as they
//! finish; events pushed as notifications.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{broadcast, mpsc, Semaphore};
use tokio::task::JoinSet;
use vfs_core::ErrorKind;

use super::frame::{read_frame, write_message, FrameError, Limits, Message};
use crate::actions::{Action, ActionError, Vfs, VfsEvent};

/// JSON-RPC 2.0 error codes.
pub(crate) mod code {
    /// Not JSON, or not UTF-8.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a request; also frame errors.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such action.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The params do not fit the action.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The action ran and failed.
    pub const ACTION_FAILED: i64 = -32000;
    /// The server failed inside (a panic, a bug): the request is answered all the same.
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// How many outgoing messages may wait for a slow client before requests and events
/// wait for it in turn.
const OUTGOING_BACKLOG: usize = 256;

/// The members a request may have.
const REQUEST_MEMBERS: &[&str] = &["jsonrpc", "id", "method", "params", "attachments"];

struct RpcError {
    rpc_code: i64,
    error: ActionError,
}

impl RpcError {
    fn new(rpc_code: i64, kind: ErrorKind, message: impl Into<String>) -> RpcError {
        RpcError {
            rpc_code,
            error: ActionError::new(kind, message),
        }
    }

    fn invalid_request(message: impl Into<String>) -> RpcError {
        RpcError::new(code::INVALID_REQUEST, ErrorKind::InvalidInput, message)
    }

    fn message(&self, id: &Value) -> Message {
        let body = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": self.rpc_code,
                "message": self.error.to_string(),
                "data": self.error,
            }
        });
        Message {
            json: body.to_string().into_bytes(),
            attachments: Vec::new(),
        }
    }
}

fn frame_error(err: &FrameError, what: &str) -> Option<RpcError> {
    match err {
        FrameError::TooLarge { length, max } => Some(RpcError::new(
            code::INVALID_REQUEST,
            ErrorKind::FileTooLarge,
            format!("{what} frame of {length} bytes is over the limit of {max} bytes"),
        )),
        FrameError::Truncated { expected, got } => Some(RpcError::invalid_request(format!(
            "truncated {what} frame: the stream ended after {got} of {expected} bytes"
        ))),
        FrameError::Io => None,
    }
}

/// A parsed request, its attachments read.
struct Request {
    /// `None` for a notification (no answer).
    id: Option<Value>,
    method: String,
    params: Option<Value>,
    attachments: Vec<Bytes>,
}

/// Serves one client over any byte streams until it closes its side, then waits for its
/// requests to finish and answers them.
/// Frame errors that lose the stream's framing (oversize, truncated) are answered and
/// end the connection; every other bad request gets an error and the connection goes on.
///
/// ```
/// use std::sync::Arc;
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use vfs_layer::actions::Vfs;
/// use vfs_layer::server::{serve_stream, Limits};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let store = std::env::temp_dir().join(format!("vfs-serve-stream-doc-{}", std::process::id()));
/// let repository = vfs_layer::snapshot::Repository::open_local(&store).await?;
/// let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repository));
/// let (client, server) = tokio::io::duplex(1 << 16);
/// let (server_read, server_write) = tokio::io::split(server);
/// let served = tokio::spawn(serve_stream(vfs, server_read, server_write, Limits::default()));
///
/// // One frame: a 4-byte big-endian length, then the JSON.
/// let request = br#"{"jsonrpc":"2.0","id":1,"method":"listMounts"}"#;
/// let (mut read, mut write) = tokio::io::split(client);
/// write.write_all(&(request.len() as u32).to_be_bytes()).await?;
/// write.write_all(request).await?;
/// write.shutdown().await?;
///
/// let length = read.read_u32().await? as usize;
/// let mut answer = vec![0; length];
/// read.read_exact(&mut answer).await?;
/// let answer: serde_json::Value = serde_json::from_slice(&answer)?;
/// assert_eq!(answer["result"], serde_json::json!([]));
/// served.await?;
/// # std::fs::remove_dir_all(&store)?;
/// # Ok(()) }
/// ```
///
/// The connection receives every event sent from the moment `serve_stream` is called,
/// before the returned future is first polled.
pub fn serve_stream<R, W>(
    vfs: Arc<Vfs>,
    reader: R,
    writer: W,
    limits: Limits,
) -> impl std::future::Future<Output = ()> + Send
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let events = vfs.subscribe();
    serve_stream_until(vfs, events, reader, writer, limits, std::future::pending())
}

/// As [`serve_stream`] with the connection's event subscription given (taken when the
/// client was accepted, so it misses nothing sent after), and when `stop` completes:
/// stops reading (a message not yet whole is dropped unrun), lets the requests already
/// running finish and answers them.
pub(crate) async fn serve_stream_until<R, W>(
    vfs: Arc<Vfs>,
    events: broadcast::Receiver<VfsEvent>,
    mut reader: R,
    mut writer: W,
    limits: Limits,
    stop: impl std::future::Future<Output = ()>,
) where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    tokio::pin!(stop);
    let (outgoing, mut queue) = mpsc::channel::<Message>(OUTGOING_BACKLOG);
    let writer_task = tokio::spawn(async move {
        while let Some(message) = queue.recv().await {
            if write_message(&mut writer, &message).await.is_err() {
                // The client is gone; requests still finish, their answers are dropped.
                break;
            }
        }
    });
    let (finish_events, events_finish) = tokio::sync::oneshot::channel();
    let events_task = tokio::spawn(push_events(events, outgoing.clone(), events_finish));
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let mut requests = JoinSet::new();

    loop {
        // Reap finished requests so the set does not grow with the connection's age.
        while requests.try_join_next().is_some() {}
        let next = tokio::select! {
            biased;
            () = &mut stop => break,
            next = read_message(&mut reader, &limits) => next,
        };
        let request = match next {
            Incoming::Request(request) => request,
            Incoming::End => break,
            Incoming::Refused { id, error, fatal } => {
                let _ = outgoing.send(error.message(&id)).await;
                if fatal {
                    break;
                }
                continue;
            }
        };
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let vfs = vfs.clone();
        let outgoing = outgoing.clone();
        requests.spawn(async move {
            let id = request.id.clone();
            let method = request.method.clone();
            // A panic below (a driver's bug, say) must still answer: a client waiting on
            // this id would otherwise wait forever.
            let answer = AssertUnwindSafe(run_request(&vfs, request))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    Err(RpcError::new(
                        code::INTERNAL_ERROR,
                        ErrorKind::Io,
                        format!(
                            "{method} failed inside the server: {}",
                            panic_message(panic.as_ref())
                        ),
                    ))
                });
            if let Some(id) = id {
                let message = match answer {
                    Ok((result, attachments)) => {
                        let mut body = Map::new();
                        body.insert("jsonrpc".into(), "2.0".into());
                        body.insert("id".into(), id);
                        body.insert("result".into(), result);
                        if !attachments.is_empty() {
                            body.insert("attachments".into(), attachments.len().into());
                        }
                        Message {
                            json: Value::Object(body).to_string().into_bytes(),
                            attachments,
                        }
                    }
                    Err(rpc) => rpc.message(&id),
                };
                let _ = outgoing.send(message).await;
            }
            drop(permit);
        });
    }
    while requests.join_next().await.is_some() {}
    let _ = finish_events.send(());
    let _ = events_task.await;
    drop(outgoing);
    let _ = writer_task.await;
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

type RequestError = (Value, RpcError, bool);

/// What the next message of a connection is.
enum Incoming {
    Request(Request),
    /// The stream ended between messages, or failed.
    End,
    /// Answer `error` to `id`; after a `fatal` one the stream cannot be followed.
    Refused {
        id: Value,
        error: RpcError,
        fatal: bool,
    },
}

/// Reads one message whole: its JSON frame and its attachments.
async fn read_message<R: AsyncRead + Unpin>(reader: &mut R, limits: &Limits) -> Incoming {
    let frame = match read_frame(reader, limits.max_json_frame).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return Incoming::End,
        Err(err) => {
            return match frame_error(&err, "JSON") {
                Some(error) => Incoming::Refused {
                    id: Value::Null,
                    error,
                    fatal: true,
                },
                None => Incoming::End,
            }
        }
    };
    match read_request(reader, &frame, limits).await {
        Ok(request) => Incoming::Request(request),
        Err((id, error, fatal)) => Incoming::Refused { id, error, fatal },
    }
}

/// Parses a JSON frame and reads the attachments it announces. Errors carry the id to
/// answer with and whether the stream's framing is lost.
async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    frame: &[u8],
    limits: &Limits,
) -> Result<Request, RequestError> {
    let text = std::str::from_utf8(frame).map_err(|err| {
        let rpc = RpcError::new(
            code::PARSE_ERROR,
            ErrorKind::InvalidInput,
            format!("the JSON frame is not UTF-8: {err}"),
        );
        // Fatal: the attachments it may have announced are unknown, so the next frame
        // could be one of them (file content) and must not be read as a request.
        (Value::Null, rpc, true)
    })?;
    let value: Value = serde_json::from_str(text).map_err(|err| {
        let rpc = RpcError::new(
            code::PARSE_ERROR,
            ErrorKind::InvalidInput,
            format!("the JSON frame is not JSON: {err}"),
        );
        (Value::Null, rpc, true)
    })?;
    let Value::Object(mut body) = value else {
        let what = if value.is_array() {
            "batch requests are not supported; send one request per frame"
        } else {
            "a request is a JSON object"
        };
        // Fatal for the same reason as a parse error: a batch may announce attachments.
        return Err((Value::Null, RpcError::invalid_request(what), true));
    };
    // Attachments first: until they are read, the next frame boundary is unknown.
    let count = match body.remove("attachments") {
        None => 0,
        Some(Value::Number(n))
            if n.as_u64()
                .is_some_and(|n| n <= u64::from(limits.max_attachments)) =>
        {
            n.as_u64().unwrap_or_default()
        }
        Some(other) => {
            let id = reply_id(&body);
            let rpc = RpcError::invalid_request(format!(
                "attachments must be a count from 0 to {}, not {other}; the stream cannot be followed past this message",
                limits.max_attachments
            ));
            return Err((id, rpc, true));
        }
    };
    let mut attachments = Vec::new();
    // The attachments of one message share one budget, so a message holds at most
    // `max_attachment` bytes however many frames it has.
    let mut budget = limits.max_attachment;
    for _ in 0..count {
        match read_frame(reader, budget).await {
            Ok(Some(data)) => {
                budget -= data.len() as u32;
                attachments.push(Bytes::from(data));
            }
            Ok(None) => {
                let rpc = RpcError::invalid_request(format!(
                    "the stream ended after {} of {count} announced attachments",
                    attachments.len()
                ));
                return Err((reply_id(&body), rpc, true));
            }
            Err(err) => {
                let id = reply_id(&body);
                return match frame_error(&err, "attachment") {
                    Some(rpc) => Err((id, rpc, true)),
                    None => Err((
                        id,
                        RpcError::invalid_request("the stream failed while reading an attachment"),
                        true,
                    )),
                };
            }
        }
    }
    let id = match body.get("id") {
        None => None,
        Some(id @ (Value::Number(_) | Value::String(_) | Value::Null)) => Some(id.clone()),
        Some(_) => {
            let rpc = RpcError::invalid_request("id must be a number, a string or null");
            return Err((Value::Null, rpc, false));
        }
    };
    let answer_id = id.clone().unwrap_or(Value::Null);
    if let Some(unknown) = body
        .keys()
        .find(|key| !REQUEST_MEMBERS.contains(&key.as_str()))
    {
        let rpc = RpcError::invalid_request(format!("unknown request member '{unknown}'"));
        return Err((answer_id, rpc, false));
    }
    if body.get("jsonrpc") != Some(&Value::from("2.0")) {
        let rpc = RpcError::invalid_request("jsonrpc must be \"2.0\"");
        return Err((answer_id, rpc, false));
    }
    let method = match body.remove("method") {
        Some(Value::String(method)) => method,
        _ => {
            let rpc = RpcError::invalid_request("method must be a string");
            return Err((answer_id, rpc, false));
        }
    };
    Ok(Request {
        id,
        method,
        params: body.remove("params"),
        attachments,
    })
}

/// The id to answer a request with before it is fully checked.
fn reply_id(body: &Map<String, Value>) -> Value {
    match body.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// Runs one request: the result and its attachments, or the error to answer with.
async fn run_request(vfs: &Vfs, request: Request) -> Result<(Value, Vec<Bytes>), RpcError> {
    let mut action = Action::from_rpc(&request.method, request.params).map_err(|error| {
        let rpc_code = if error.kind() == ErrorKind::NotImplemented {
            code::METHOD_NOT_FOUND
        } else {
            code::INVALID_PARAMS
        };
        RpcError { rpc_code, error }
    })?;
    let invalid_params =
        |message: String| RpcError::new(code::INVALID_PARAMS, ErrorKind::InvalidInput, message);
    let mut used = vec![false; request.attachments.len()];
    if let Some(payload) = action.payload_mut() {
        if let Some(index) = payload.attachment_index() {
            let data = request.attachments.get(index as usize).ok_or_else(|| {
                invalid_params(format!(
                    "the payload names attachment {index} but the request has {}",
                    request.attachments.len()
                ))
            })?;
            payload.set_bytes(data.clone());
            used[index as usize] = true;
        }
    }
    if let Some(unused) = used.iter().position(|used| !used) {
        return Err(invalid_params(format!(
            "attachment {unused} is not used by {}",
            request.method
        )));
    }
    let mut output = vfs.dispatch(action).await.map_err(|error| RpcError {
        rpc_code: code::ACTION_FAILED,
        error,
    })?;
    let mut attachments = Vec::new();
    if let Some(payload) = output.payload_mut() {
        if payload
            .bytes()
            .is_some_and(|bytes| bytes.len() > u32::MAX as usize)
        {
            return Err(RpcError::new(
                code::ACTION_FAILED,
                ErrorKind::FileTooLarge,
                "the result is over 4 GiB, more than one frame holds; export to a hostPath instead",
            ));
        }
        if let Some(bytes) = payload.detach(0) {
            attachments.push(bytes);
        }
    }
    let result = serde_json::to_value(&output).map_err(|err| {
        let message = err.to_string();
        let message = message
            .strip_prefix("EINVAL: ")
            .unwrap_or(&message)
            .to_owned();
        RpcError::new(code::ACTION_FAILED, ErrorKind::InvalidInput, message)
    })?;
    Ok((result, attachments))
}

/// Pushes every event as an `event` notification; a client too slow to keep up gets an
/// `eventsLost` notification with the count instead of the events it missed. When
/// `finish` fires (the connection's requests are done), the events already sent are
/// still pushed, so a client sees the events of its own last requests before the end.
async fn push_events(
    mut events: broadcast::Receiver<VfsEvent>,
    outgoing: mpsc::Sender<Message>,
    finish: tokio::sync::oneshot::Receiver<()>,
) {
    tokio::pin!(finish);
    // Once finishing: how many of the events already sent are still to push. Later
    // ones (other clients keep the server busy) are not waited for.
    let mut left: Option<usize> = None;
    loop {
        let received = match left {
            Some(0) => return,
            Some(ref mut n) => {
                *n -= 1;
                match events.try_recv() {
                    Ok(event) => Ok(event),
                    Err(broadcast::error::TryRecvError::Lagged(count)) => {
                        Err(broadcast::error::RecvError::Lagged(count))
                    }
                    Err(_) => return,
                }
            }
            None => tokio::select! {
                biased;
                received = events.recv() => received,
                _ = &mut finish => {
                    left = Some(events.len());
                    continue;
                }
            },
        };
        let body = match received {
            Ok(event) => json!({"jsonrpc": "2.0", "method": "event", "params": event}),
            Err(broadcast::error::RecvError::Lagged(count)) => {
                json!({"jsonrpc": "2.0", "method": "eventsLost", "params": {"count": count}})
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let message = Message {
            json: body.to_string().into_bytes(),
            attachments: Vec::new(),
        };
        if outgoing.send(message).await.is_err() {
            return;
        }
    }
}
