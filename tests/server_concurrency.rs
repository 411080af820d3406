//! Requests of one connection run concurrently, and a socket server that shuts down
//! still answers the requests already running. A driver whose `open` waits at a gate the
//! test controls makes both deterministic (no timing involved).

#[path = "common/server_client.rs"]
mod server_client;

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use server_client::Client;
use vfs_layer::actions::Vfs;
use vfs_layer::core::conformance::Forward;
use vfs_layer::core::{DriverDescriptor, FileSystem, MountOptions, VfsPath};
use vfs_layer::server::{serve_unix_with, Limits};

/// A registry with `gate`: a memory driver whose open of `/slow` waits until the test
/// sends on the returned channel; `entered` tells when it started waiting.
fn gated_registry() -> (
    vfs_layer::core::DriverRegistry,
    mpsc::Sender<()>,
    mpsc::Receiver<()>,
) {
    let (release, gate) = mpsc::channel::<()>();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let gate = Arc::new(Mutex::new(gate));
    let entered_tx = Arc::new(Mutex::new(entered_tx));
    let registry = vfs_layer::registry();
    registry
        .register_fn("gate", move |_config: serde_json::Value| {
            let gate = gate.clone();
            let entered_tx = entered_tx.clone();
            let inner: Arc<dyn FileSystem> = Arc::new(vfs_layer::drivers::memory::MemoryFs::new());
            let fs = Forward::new(inner, "gate").before_open(move |path| {
                if path.as_str() == "/slow" {
                    let _ = entered_tx.lock().unwrap().send(());
                    // The hook is synchronous: hand this worker's queued tasks to another
                    // thread while it waits, as a driver calling blocking code must.
                    tokio::task::block_in_place(|| {
                        let _ = gate.lock().unwrap().recv();
                    });
                }
                Ok(())
            });
            Ok(Arc::new(fs) as Arc<dyn FileSystem>)
        })
        .unwrap();
    (registry, release, entered)
}

/// A `vfs serve` on a Unix socket in this process, with a memory root.
struct Served {
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    /// Send to shut the server down.
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

/// Starts a server with `registry` and returns once it listens.
fn serve(registry: vfs_layer::core::DriverRegistry) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vfs.sock");
    let store = dir.path().join("store");
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_socket = socket.clone();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let repository = vfs_layer::snapshot::Repository::open_local(&store)
                .await
                .unwrap();
            let vfs = Arc::new(Vfs::new(registry, repository));
            let memory = DriverDescriptor::new("memory", json!({}));
            vfs.mount_fs(&VfsPath::root(), &memory, MountOptions::default())
                .await
                .unwrap();
            let shutdown = async {
                let _ = stop_rx.await;
            };
            serve_unix_with(vfs, &server_socket, shutdown, Limits::default()).await
        })
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the server did not listen");
        std::thread::sleep(Duration::from_millis(10));
    }
    Served {
        _dir: dir,
        socket,
        stop,
        thread,
    }
}

/// Checks that `client` can still write and read `file`, and that a new client is served
/// (it sees the root and one more mount); returns the new client.
fn still_served(client: &mut Client, socket: &std::path::Path, file: &str) -> Client {
    client.ok("writeFile", json!({"path": file, "data": file}));
    assert_eq!(
        client.ok("readFile", json!({"path": file, "encoding": "utf8"}))["data"],
        file
    );
    let mut other = Client::connect(socket);
    assert_eq!(
        other.ok("listMounts", json!({})).as_array().unwrap().len(),
        2
    );
    other
}

#[test]
fn a_blocked_request_holds_up_neither_others_nor_shutdown() {
    let (registry, release, entered) = gated_registry();
    let Served {
        _dir,
        socket,
        stop: stop_tx,
        thread: server,
    } = serve(registry);
    let deadline = Instant::now() + Duration::from_secs(60);

    let mut client = Client::connect(&socket);
    client.ok("mountFs", json!({"path": "/g", "driver": {"id": "gate"}}));
    let slow = client.send("writeFile", json!({"path": "/g/slow", "data": "late"}), &[]);
    entered
        .recv_timeout(Duration::from_secs(60))
        .expect("the slow write reached the driver");

    // While it waits, the same connection, the same mount and a new client are served.
    let mut other = still_served(&mut client, &socket, "/g/fast");

    // Shut down while it still waits: the socket goes, the running request is answered.
    stop_tx.send(()).unwrap();
    while socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the server did not stop listening"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    release.send(()).unwrap();
    let answer = client.answer(slow);
    assert!(answer.json["result"].is_null(), "{}", answer.json);
    client.wait_closed();
    other.wait_closed();
    server.join().unwrap().unwrap();
}

/// A request whose driver panics is answered (JSON-RPC's internal error, `EIO`, naming
/// the action), and the connection and server go on serving.
#[test]
fn a_panicking_request_is_answered_and_the_server_goes_on() {
    let registry = vfs_layer::registry();
    registry
        .register_fn("boom", |_config: serde_json::Value| {
            let inner: Arc<dyn FileSystem> = Arc::new(vfs_layer::drivers::memory::MemoryFs::new());
            let fs = Forward::new(inner, "boom").before_open(|path| {
                if path.as_str() == "/boom" {
                    panic!("the driver tripped over {path}");
                }
                Ok(())
            });
            Ok(Arc::new(fs) as Arc<dyn FileSystem>)
        })
        .unwrap();
    let Served {
        _dir,
        socket,
        stop: stop_tx,
        thread: server,
    } = serve(registry);

    let mut client = Client::connect(&socket);
    client.ok("mountFs", json!({"path": "/b", "driver": {"id": "boom"}}));
    let id = client.send("writeFile", json!({"path": "/b/boom", "data": "x"}), &[]);
    let answer = client.answer(id);
    let error = &answer.json["error"];
    assert_eq!(error["code"], -32603, "{}", answer.json);
    assert_eq!(error["data"]["code"], "EIO", "{}", answer.json);
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("writeFile") && message.contains("tripped over /boom"),
        "{message}"
    );

    // The same connection, the same mount and a new client are all still served.
    let mut other = still_served(&mut client, &socket, "/b/fine");

    stop_tx.send(()).unwrap();
    client.wait_closed();
    other.wait_closed();
    server.join().unwrap().unwrap();
}
