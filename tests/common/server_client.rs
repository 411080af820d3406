//! A test client of the `vfs serve` wire protocol (PROTOCOL.md), and the real server
//! process to talk to: frames of a 4-byte big-endian length, JSON messages followed by
//! the attachment frames they announce.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long any one answer may take before the test fails instead of hanging.
const ANSWER_DEADLINE: Duration = Duration::from_secs(60);

/// One message from the server.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub json: Value,
    pub attachments: Vec<Vec<u8>>,
}

/// A JSON-RPC error answer, flattened for assertions.
#[derive(Clone, Debug)]
pub struct RpcError {
    pub rpc_code: i64,
    pub code: String,
    pub message: String,
    pub path: Option<String>,
    pub id: Value,
}

fn read_frame(reader: &mut impl Read) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    reader.read_exact(&mut header).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// Frames a JSON message and its attachments.
pub fn encode(json: &Value, attachments: &[&[u8]]) -> Vec<u8> {
    let mut json = json.clone();
    if !attachments.is_empty() {
        json["attachments"] = attachments.len().into();
    }
    let text = json.to_string();
    let mut out = frame(text.as_bytes());
    for attachment in attachments {
        out.extend_from_slice(&frame(attachment));
    }
    out
}

/// One frame: the length, big-endian, then the bytes.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A connection to a server: writes requests, and a reader thread hands over every
/// message it receives.
pub struct Client {
    writer: Option<Box<dyn Write + Send>>,
    incoming: mpsc::Receiver<Incoming>,
    /// Notifications received while waiting for answers.
    pub events: Vec<Value>,
    /// Answers received while waiting for another id.
    answers: Vec<Incoming>,
    next_id: u64,
    socket: Option<UnixStream>,
}

impl Client {
    pub fn new(reader: impl Read + Send + 'static, writer: impl Write + Send + 'static) -> Client {
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(reader);
            while let Some(body) = read_frame(&mut reader) {
                let json: Value = serde_json::from_slice(&body).expect("the server sent JSON");
                let count = json.get("attachments").and_then(Value::as_u64).unwrap_or(0);
                let mut attachments = Vec::new();
                for _ in 0..count {
                    match read_frame(&mut reader) {
                        Some(data) => attachments.push(data),
                        None => return,
                    }
                }
                if tx.send(Incoming { json, attachments }).is_err() {
                    return;
                }
            }
        });
        Client {
            writer: Some(Box::new(writer)),
            incoming,
            events: Vec::new(),
            answers: Vec::new(),
            next_id: 1,
            socket: None,
        }
    }

    /// Connects to a server's socket.
    pub fn connect(socket: &Path) -> Client {
        let stream = UnixStream::connect(socket).expect("connect to the server socket");
        let mut client = Client::new(stream.try_clone().unwrap(), stream.try_clone().unwrap());
        client.socket = Some(stream);
        client
    }

    /// Writes raw bytes (malformed input included).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let writer = self
            .writer
            .as_mut()
            .expect("the client's side is still open");
        writer.write_all(bytes).unwrap();
        writer.flush().unwrap();
    }

    /// Ends the client's side of the stream (stdin closed, or socket shut for writing).
    pub fn close_write(&mut self) {
        self.writer = None;
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(std::net::Shutdown::Write);
        }
    }

    /// Sends a request with attachments and returns its id.
    pub fn send(&mut self, method: &str, params: Value, attachments: &[&[u8]]) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&encode(&request, attachments));
        id
    }

    fn next_message(&mut self) -> Option<Incoming> {
        match self.incoming.recv_timeout(ANSWER_DEADLINE) {
            Ok(message) => Some(message),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("no message from the server in {ANSWER_DEADLINE:?}")
            }
        }
    }

    /// The next answer (not a notification), whatever its id.
    pub fn next_answer(&mut self) -> Incoming {
        if !self.answers.is_empty() {
            return self.answers.remove(0);
        }
        loop {
            let message = self
                .next_message()
                .expect("the server closed the stream before answering");
            if message.json.get("id").is_some() {
                return message;
            }
            self.events.push(message.json);
        }
    }

    /// The answer to request `id`.
    pub fn answer(&mut self, id: u64) -> Incoming {
        if let Some(at) = self.answers.iter().position(|a| a.json["id"] == id) {
            return self.answers.remove(at);
        }
        loop {
            let message = self
                .next_message()
                .expect("the server closed the stream before answering");
            if message.json.get("id").is_none() {
                self.events.push(message.json);
            } else if message.json["id"] == id {
                return message;
            } else {
                self.answers.push(message);
            }
        }
    }

    /// Calls a method: its result and attachments, or its error.
    pub fn call_with(
        &mut self,
        method: &str,
        params: Value,
        attachments: &[&[u8]],
    ) -> Result<Incoming, RpcError> {
        let id = self.send(method, params, attachments);
        into_result(self.answer(id))
    }

    pub fn call(&mut self, method: &str, params: Value) -> Result<Incoming, RpcError> {
        self.call_with(method, params, &[])
    }

    /// A call that must succeed; its result.
    pub fn ok(&mut self, method: &str, params: Value) -> Value {
        match self.call(method, params.clone()) {
            Ok(answer) => answer.json["result"].clone(),
            Err(err) => panic!("{method} {params}: {err:?}"),
        }
    }

    /// A call that must fail; its error.
    pub fn err(&mut self, method: &str, params: Value) -> RpcError {
        match self.call(method, params.clone()) {
            Ok(answer) => panic!("{method} {params} succeeded: {}", answer.json),
            Err(err) => err,
        }
    }

    /// Waits for an event notification matching `pred` (checking those already seen).
    pub fn wait_event(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            if let Some(at) = self
                .events
                .iter()
                .position(|e| e["method"] == "event" && pred(&e["params"]))
            {
                return self.events.remove(at)["params"].clone();
            }
            let message = self
                .next_message()
                .expect("the server closed the stream before the event");
            if message.json.get("id").is_some() {
                self.answers.push(message);
            } else {
                self.events.push(message.json);
            }
        }
    }

    /// Waits until the server closes the stream, returning the messages it sent first.
    pub fn wait_closed(&mut self) -> Vec<Incoming> {
        let mut rest: Vec<Incoming> = self.answers.drain(..).collect();
        while let Some(message) = self.next_message() {
            rest.push(message);
        }
        rest
    }
}

/// Splits an answer into its result or its error.
pub fn into_result(answer: Incoming) -> Result<Incoming, RpcError> {
    match answer.json.get("error") {
        None => Ok(answer),
        Some(error) => Err(error_of(&answer.json, error)),
    }
}

pub fn error_of(message: &Value, error: &Value) -> RpcError {
    RpcError {
        rpc_code: error["code"].as_i64().expect("error.code is a number"),
        code: error["data"]["code"]
            .as_str()
            .expect("error.data.code is the errno")
            .to_owned(),
        message: error["data"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        path: error["data"]["path"].as_str().map(str::to_owned),
        id: message["id"].clone(),
    }
}

/// The `vfs serve` process.
pub struct Server {
    pub child: Child,
    pub socket: Option<PathBuf>,
}

impl Server {
    fn command(store: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vfs"));
        command.arg("serve").arg("--store").arg(store).args(extra);
        command.stderr(Stdio::inherit());
        command
    }

    /// `vfs serve --stdio` and a client on its stdin/stdout.
    pub fn stdio(store: &Path, extra: &[&str]) -> (Server, Client) {
        let mut child = Server::command(store, &["--stdio"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn vfs serve --stdio");
        let client = Client::new(child.stdout.take().unwrap(), child.stdin.take().unwrap());
        (
            Server {
                child,
                socket: None,
            },
            client,
        )
    }

    /// `vfs serve --socket PATH`, once the socket accepts connections.
    pub fn socket(store: &Path, socket: &Path, extra: &[&str]) -> Server {
        let mut child = Server::command(store, &["--socket"])
            .arg(socket)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn vfs serve --socket");
        let deadline = Instant::now() + ANSWER_DEADLINE;
        while UnixStream::connect(socket).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("vfs serve exited before listening: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "vfs serve did not listen on {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            socket: Some(socket.to_owned()),
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.socket.as_deref().expect("a socket server"))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as i32;
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        wait_with_deadline(&mut self.child)
    }

    /// Waits for the process to exit by itself.
    pub fn wait(mut self) -> std::process::ExitStatus {
        wait_with_deadline(&mut self.child)
    }
}

fn wait_with_deadline(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + ANSWER_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "vfs serve did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
