//! A moto S3 server on loopback, started once per test (or bench) binary and killed when
//! the process exits, however it exits.
//!
//! The server is `$VFS_MOTO_SERVER`, else `moto_server` on `PATH`; `bash scripts/test`
//! installs one when neither is there. Without one the S3 tests fail, saying so.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    port: u16,
}

/// The process group of the server, killed at exit.
static GROUP: AtomicI32 = AtomicI32::new(0);

extern "C" fn kill_server_at_exit() {
    let group = GROUP.swap(0, Ordering::SeqCst);
    if group > 0 {
        // SAFETY: kill(2) on a process group we created; no memory is touched.
        unsafe {
            libc::kill(-group, libc::SIGKILL);
        }
    }
}

fn server_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("VFS_MOTO_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("moto_server");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(
        "moto_server was not found (neither $VFS_MOTO_SERVER nor PATH): run `bash scripts/test`, \
         which installs moto[server] into target/moto-venv, or set VFS_MOTO_SERVER"
            .to_owned(),
    )
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|err| format!("bind: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| format!("local_addr: {err}"))
}

/// Sends one plain HTTP/1.1 request to the server and returns the status code and body.
fn http(port: u16, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn start() -> Result<Moto, String> {
    let binary = server_binary()?;
    let port = free_port()?;
    // The child is spawned from a thread that lives as long as the process, because
    // PR_SET_PDEATHSIG fires when the spawning *thread* ends, not only the process.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("moto-keeper".into())
        .spawn(move || {
            let mut command = Command::new(&binary);
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    // Its own process group, so the python behind a shim dies with it...
                    libc::setpgid(0, 0);
                    // ...and killed if this test process dies without running atexit.
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let spawned = command.spawn();
            let spawned = match spawned {
                Ok(child) => {
                    GROUP.store(child.id() as i32, Ordering::SeqCst);
                    // SAFETY: registering a plain extern "C" fn with no captured state.
                    unsafe {
                        libc::atexit(kill_server_at_exit);
                    }
                    let _ = sender.send(Ok(()));
                    child
                }
                Err(err) => {
                    let _ = sender.send(Err(format!("cannot start {}: {err}", binary.display())));
                    return;
                }
            };
            let mut child = spawned;
            let _ = child.wait();
        })
        .map_err(|err| format!("cannot spawn the moto keeper thread: {err}"))?;
    receiver
        .recv()
        .map_err(|_| "the moto keeper thread died".to_owned())??;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((status, _)) = http(port, "GET", "/") {
            if status > 0 {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "moto_server did not answer on port {port} within 60 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
    })
}

/// The server of this process, started on first use. Panics (failing the test) with the
/// reason when moto cannot be started: the S3 tests are never skipped silently.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
    match MOTO.get_or_init(start) {
        Ok(moto) => moto,
        Err(err) => panic!("the S3 tests need moto: {err}"),
    }
}

impl Moto {
    /// Creates a fresh bucket with a name unique to this process and returns it.
    pub fn bucket(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "vfs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        // object_store has no bucket API; moto takes an unsigned CreateBucket.
        let (status, _) = http(self.port, "PUT", &format!("/{name}")).expect("create bucket");
        assert_eq!(status, 200, "moto refused to create bucket {name}");
        name
    }

    /// The body of an unsigned GET (moto does not check signatures), e.g. a bucket's
    /// `?uploads` listing.
    pub fn get(&self, path: &str) -> String {
        let (status, body) = http(self.port, "GET", path).expect("GET from moto");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// The driver config of an `s3` mount of `bucket` (with `prefix`) on this server.
    pub fn config(&self, bucket: &str, prefix: &str) -> serde_json::Value {
        serde_json::json!({
            "url": format!("s3://{bucket}/{prefix}"),
            "endpoint": self.endpoint,
            "region": "us-east-1",
            "accessKeyId": "testing",
            "secretAccessKey": "testing",
            "allowHttp": true,
        })
    }
}
