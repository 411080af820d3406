//! The real `vfs serve` process over stdio and over its Unix socket: actions with binary
//! attachments and base64, concurrent requests, events as notifications, several
//! clients, a client leaving mid-request, a mounts file at boot, clean shutdown.

#[path = "common/server_client.rs"]
mod server_client;

use serde_json::{json, Value};
use server_client::{encode, frame, Client, Server};

/// Bytes that are not UTF-8 and not small, with a seeded pattern.
fn binary(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect()
}

/// The session every transport runs: mounts, binary and base64 content, snapshot,
/// export and import, and the events they send.
fn session(client: &mut Client, host: &std::path::Path) {
    let work = client.ok(
        "mountFs",
        json!({"path": "/work", "driver": {"id": "memory", "config": {}}, "options": {"readOnly": false}}),
    );
    assert_eq!(work["kind"], "memory");
    let mounted = client.wait_event(|e| e["type"] == "mounted" && e["path"] == "/work");
    assert_eq!(mounted["mountId"], work["mountId"]);
    client.ok(
        "mountFs",
        json!({"path": "/host", "driver": {"id": "host_dir", "config": {"hostPath": host, "readOnly": false}}}),
    );

    // 1 MiB of non-UTF-8 bytes as an attachment, both ways, and into the host directory.
    let blob = binary(1 << 20, 7);
    let written = client.call_with(
        "writeFile",
        json!({"path": "/host/blob.bin", "data": {"attachment": 0}}),
        &[&blob],
    );
    assert_eq!(written.unwrap().json["result"], Value::Null);
    assert_eq!(std::fs::read(host.join("blob.bin")).unwrap(), blob);
    let read = client
        .call("readFile", json!({"path": "/host/blob.bin"}))
        .unwrap();
    assert_eq!(
        read.json["result"],
        json!({"size": blob.len(), "data": {"attachment": 0}})
    );
    assert_eq!(read.json["attachments"], 1);
    assert_eq!(read.attachments, std::slice::from_ref(&blob));

    // Base64 and text for simple hosts.
    client.ok(
        "writeFile",
        json!({"path": "/work/b64", "data": {"base64": "AP8B"}}),
    );
    let b64 = client.ok(
        "readFile",
        json!({"path": "/work/b64", "encoding": "base64"}),
    );
    assert_eq!(b64["data"]["base64"], "AP8B");
    client.ok(
        "writeFile",
        json!({"path": "/work/notes.txt", "data": "hello"}),
    );
    let text = client.ok(
        "readFile",
        json!({"path": "/work/notes.txt", "encoding": "utf8"}),
    );
    assert_eq!(text["data"], "hello");

    let entries = client.ok("readDirEntries", json!({"path": "/"}));
    let names: Vec<(&str, &str)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("host", "directory"), ("work", "directory")]);

    let snap = client.ok("snapshotRootFilesystem", json!({"tag": "first"}));
    let id = snap["snapshotId"].as_str().unwrap().to_owned();
    assert_eq!(snap["stats"]["files"], 3);
    let finished = client.wait_event(|e| e["type"] == "snapshotFinished");
    assert_eq!(finished["snapshotId"], id.as_str());
    client.wait_event(|e| e["type"] == "snapshotProgress" && e["phase"] == "done");

    let export = client
        .call(
            "exportSnapshot",
            json!({"snapshot": "first", "format": "tar.zst"}),
        )
        .unwrap();
    let archive = export.attachments[0].clone();
    assert_eq!(export.json["result"]["size"], archive.len());
    assert_eq!(&archive[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    let imported = client
        .call_with(
            "importSnapshot",
            json!({"format": "tar.zst", "data": {"attachment": 0}}),
            &[&archive],
        )
        .unwrap();
    assert_eq!(imported.json["result"]["snapshotId"], id.as_str());
    let listed = client.ok("listSnapshots", json!({}));
    assert_eq!(listed[0]["tags"], json!(["first"]));

    let mounts = client.ok("listMounts", json!({}));
    assert_eq!(mounts.as_array().unwrap().len(), 3);
    assert!(!mounts.to_string().contains("hostPath"));
    client.ok("unmountFs", json!({"path": "/host"}));
    client.wait_event(|e| e["type"] == "unmounted" && e["path"] == "/host");
}

#[test]
fn stdio_session_then_stdin_close_ends_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let (server, mut client) = Server::stdio(&dir.path().join("store"), &[]);
    session(&mut client, &host);

    // Requests run concurrently: all sent before any answer is read, all answered.
    let ids: Vec<u64> = (0..32)
        .map(|i| {
            client.send(
                "writeFile",
                json!({"path": format!("/work/f{i}"), "data": format!("{i}")}),
                &[],
            )
        })
        .collect();
    for id in ids {
        assert_eq!(client.answer(id).json["result"], Value::Null);
    }
    let read = client.ok("readFile", json!({"path": "/work/f31", "encoding": "utf8"}));
    assert_eq!(read["data"], "31");

    // A request sent just before stdin closes is still answered.
    let id = client.send("listMounts", json!({}), &[]);
    client.close_write();
    let rest = client.wait_closed();
    assert!(
        rest.iter()
            .any(|m| m.json["id"] == id && m.json["result"].is_array()),
        "{rest:?}"
    );
    assert!(server.wait().success());
}

#[test]
fn socket_serves_many_clients_with_events_to_each() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let socket = dir.path().join("vfs.sock");
    let server = Server::socket(&dir.path().join("store"), &socket, &[]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let mut watcher = server.client();
    let mut first = server.client();
    session(&mut first, &host);
    // The other client saw the first one's mounts as events.
    let seen = watcher.wait_event(|e| e["type"] == "mounted" && e["path"] == "/work");
    assert_eq!(seen["kind"], "memory");
    let text = watcher.ok(
        "readFile",
        json!({"path": "/work/notes.txt", "encoding": "utf8"}),
    );
    assert_eq!(text["data"], "hello");

    // A client that leaves in the middle of a request (its attachment half sent) changes
    // nothing, and the others go on.
    let mut leaving = server.client();
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "writeFile",
        "params": {"path": "/work/half", "data": {"attachment": 0}}, "attachments": 1});
    let mut bytes = frame(request.to_string().as_bytes());
    bytes.extend_from_slice(&(1000u32).to_be_bytes());
    bytes.extend_from_slice(&[1; 10]);
    leaving.send_raw(&bytes);
    drop(leaving);
    let err = watcher.err("stat", json!({"path": "/work/half"}));
    assert_eq!(err.code, "ENOENT");

    // A client that leaves after a complete request: the request still completes whole.
    let mut quitter = server.client();
    let blob = binary(256 << 10, 3);
    quitter.send_raw(&encode(
        &json!({"jsonrpc": "2.0", "id": 9, "method": "writeFile", "params": {"path": "/work/whole", "data": {"attachment": 0}}}),
        &[&blob],
    ));
    quitter.close_write();
    let answers = quitter.wait_closed();
    assert!(
        answers
            .iter()
            .any(|m| m.json["id"] == 9 && m.json["result"].is_null()),
        "{answers:?}"
    );
    let read = watcher
        .call("readFile", json!({"path": "/work/whole"}))
        .unwrap();
    assert_eq!(read.attachments, [blob]);

    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "the socket file is removed on shutdown");
}

#[test]
fn mounts_file_boots_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("seed");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("config.json"), "{}").unwrap();
    let mounts = dir.path().join("mounts.json");
    std::fs::write(
        &mounts,
        json!({"mounts": [
            {"path": "/", "driver": {"id": "memory"}},
            {"path": "/seed", "driver": {"id": "host_dir", "config": {"hostPath": host, "readOnly": true}}, "options": {"readOnly": true}},
        ]})
        .to_string(),
    )
    .unwrap();
    let (server, mut client) = Server::stdio(
        &dir.path().join("store"),
        &["--mounts", mounts.to_str().unwrap()],
    );
    let listed = client.ok("listMounts", json!(null));
    let rows: Vec<(&str, &str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["path"].as_str().unwrap(),
                m["kind"].as_str().unwrap(),
                m["readOnly"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, [("/", "memory", false), ("/seed", "host_dir", true)]);
    assert_eq!(
        client.ok(
            "readFile",
            json!({"path": "/seed/config.json", "encoding": "utf8"})
        )["data"],
        "{}"
    );
    assert_eq!(
        client
            .err("writeFile", json!({"path": "/seed/x", "data": ""}))
            .code,
        "EROFS"
    );
    // The events of the last requests still reach the client before the stream ends.
    let id = client.send("unmountFs", json!({"path": "/seed"}), &[]);
    client.close_write();
    let rest = client.wait_closed();
    assert!(
        rest.iter()
            .any(|m| m.json["id"] == id && m.json["result"]["path"] == "/seed"),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|m| m.json["method"] == "event" && m.json["params"]["type"] == "unmounted"),
        "{rest:?}"
    );
    assert!(server.wait().success());
}

#[test]
fn sigterm_ends_a_stdio_server_whose_stdin_stays_open() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = Server::stdio(&dir.path().join("store"), &[]);
    client.ok("writeFile", json!({"path": "/a", "data": "x"}));
    // stdin stays open: only the signal can end it, and a blocked stdin read must not
    // keep the process alive.
    let started = std::time::Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(client);
}

/// The byte-level examples of PROTOCOL.md, sent and answered exactly as printed there.
#[test]
fn protocol_md_examples_are_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = Server::stdio(&dir.path().join("store"), &[]);
    client.ok(
        "mountFs",
        json!({"path": "/work", "driver": {"id": "memory"}}),
    );
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md")).unwrap();

    let write = br#"{"jsonrpc":"2.0","id":1,"method":"writeFile","params":{"path":"/work/a.txt","data":{"attachment":0}},"attachments":1}"#;
    assert_eq!(write.len(), 0x75);
    let mut bytes = frame(write);
    bytes.extend_from_slice(&[0, 0, 0, 5]);
    bytes.extend_from_slice(b"hello");
    client.send_raw(&bytes);
    let answer = client.next_answer();
    let expected = r#"{"id":1,"jsonrpc":"2.0","result":null}"#;
    assert_eq!(answer.json.to_string(), expected);
    assert_eq!(expected.len(), 0x26);
    assert!(doc.contains(&format!("00 00 00 26  {expected}")));

    let read = r#"{"jsonrpc":"2.0","id":2,"method":"readFile","params":{"path":"/work/a.txt"}}"#;
    assert_eq!(read.len(), 0x4c);
    client.send_raw(&frame(read.as_bytes()));
    let answer = client.next_answer();
    let expected =
        r#"{"attachments":1,"id":2,"jsonrpc":"2.0","result":{"data":{"attachment":0},"size":5}}"#;
    assert_eq!(answer.json.to_string(), expected);
    assert_eq!(expected.len(), 0x54);
    assert_eq!(answer.attachments, [b"hello".to_vec()]);
    assert!(doc.contains(&format!("← 00 00 00 54  {expected}")));

    let missing = r#"{"jsonrpc":"2.0","id":3,"method":"readFile","params":{"path":"/nope"}}"#;
    assert_eq!(missing.len(), 0x46);
    client.send_raw(&frame(missing.as_bytes()));
    let answer = client.next_answer().json.to_string();
    assert_eq!(answer.len(), 0xd0);
    assert!(answer.starts_with(
        r#"{"error":{"code":-32000,"data":{"code":"ENOENT","message":"ENOENT: no such file or"#
    ));
    assert!(doc.contains(&format!("→ 00 00 00 4c  {read}")));
    assert!(doc.contains(&format!("→ 00 00 00 46  {missing}")));
    assert!(doc.contains("← 00 00 00 d0  "));
    assert!(doc.contains("The JSON frame is 117 (0x75) bytes"));
    client.close_write();
    client.wait_closed();
    assert!(server.wait().success());
}
