//! Malformed input to the real `vfs serve` process: every request gets a JSON-RPC error
//! carrying the errno, the tree does not change, and the server keeps serving other
//! clients. Frame errors that lose the stream's framing close that one connection.

#[path = "common/server_client.rs"]
mod server_client;

use std::path::Path;

use serde_json::{json, Value};
use server_client::{encode, error_of, frame, Client, Server};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const ACTION_FAILED: i64 = -32000;

fn request(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
}

fn framed(value: &Value) -> Vec<u8> {
    frame(value.to_string().as_bytes())
}

/// Everything that says whether the tree changed: a normalized snapshot id of the
/// whole root, the mounts, and the host directory's files.
fn state(client: &mut Client, host: &Path) -> (Value, Value, Vec<(String, Vec<u8>)>) {
    let id = client.ok("snapshotRootFilesystem", json!({"normalize": true}))["snapshotId"].clone();
    let mounts = client.ok("listMounts", json!({}));
    let mut files: Vec<(String, Vec<u8>)> = walk(host);
    files.sort();
    (id, mounts, files)
}

fn walk(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let name = entry.path().display().to_string();
        if kind.is_dir() {
            out.push((name, Vec::new()));
            out.extend(walk(&entry.path()));
        } else if kind.is_symlink() {
            out.push((
                name,
                std::fs::read_link(entry.path())
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            ));
        } else {
            out.push((name, std::fs::read(entry.path()).unwrap()));
        }
    }
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    host: std::path::PathBuf,
    server: Server,
}

fn start(dir: tempfile::TempDir) -> (Fixture, Client) {
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("a.txt"), "host file").unwrap();
    std::os::unix::fs::symlink("/etc", host.join("escape")).unwrap();
    let server = Server::socket(&dir.path().join("store"), &dir.path().join("vfs.sock"), &[]);
    let mut setup = server.client();
    setup.ok("mountFs", json!({"path": "/host", "driver": {"id": "host_dir", "config": {"hostPath": host, "readOnly": false}}}));
    setup.ok("mountFs", json!({"path": "/ro", "driver": {"id": "host_dir", "config": {"hostPath": host}}, "options": {"readOnly": true}}));
    setup.ok(
        "mountFs",
        json!({"path": "/mem", "driver": {"id": "memory"}}),
    );
    setup.ok(
        "writeFile",
        json!({"path": "/mem/bin", "data": {"base64": "/wD+"}}),
    );
    setup.ok("writeFile", json!({"path": "/keep.txt", "data": "keep"}));
    setup.ok("snapshotRootFilesystem", json!({"tag": "base"}));
    (
        Fixture {
            _dir: dir,
            host,
            server,
        },
        setup,
    )
}

/// Requests that are refused while the connection goes on.
fn recoverable_cases(base_id: &str) -> Vec<(&'static str, Vec<u8>, i64, &'static str)> {
    let long_name = format!("/{}", "n".repeat(300));
    let too_long_path = format!("/{}", "d/".repeat(2100));
    let mut cases: Vec<(&'static str, Vec<u8>, i64, &'static str)> = vec![
        (
            "no jsonrpc member",
            framed(&json!({"id": 1, "method": "listMounts"})),
            INVALID_REQUEST,
            "EINVAL",
        ),
        (
            "jsonrpc 1.0",
            framed(&json!({"jsonrpc": "1.0", "id": 1, "method": "listMounts"})),
            INVALID_REQUEST,
            "EINVAL",
        ),
        (
            "no method",
            framed(&json!({"jsonrpc": "2.0", "id": 1})),
            INVALID_REQUEST,
            "EINVAL",
        ),
        (
            "method not a string",
            framed(&json!({"jsonrpc": "2.0", "id": 1, "method": 5})),
            INVALID_REQUEST,
            "EINVAL",
        ),
        (
            "id an object",
            framed(&json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "listMounts"})),
            INVALID_REQUEST,
            "EINVAL",
        ),
        (
            "unknown member",
            framed(&json!({"jsonrpc": "2.0", "id": 1, "method": "listMounts", "extra": true})),
            INVALID_REQUEST,
            "EINVAL",
        ),
        (
            "unknown method",
            framed(&request("formatDisk", json!({}))),
            METHOD_NOT_FOUND,
            "ENOSYS",
        ),
        (
            "missing field",
            framed(&request("readFile", json!({}))),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "wrong type",
            framed(&request("readFile", json!({"path": 42}))),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "unknown field",
            framed(&request(
                "readFile",
                json!({"path": "/keep.txt", "follow": true}),
            )),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "params a string",
            framed(&request("readFile", json!("/keep.txt"))),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "params for listMounts",
            framed(&request("listMounts", json!({"all": true}))),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "lazy not a bool",
            framed(&request(
                "unmountFs",
                json!({"path": "/mem", "lazy": "yes"}),
            )),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "unknown archive format",
            framed(&request(
                "exportSnapshot",
                json!({"snapshot": base_id, "format": "zip"}),
            )),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "bad base64",
            framed(&request(
                "writeFile",
                json!({"path": "/mem/x", "data": {"base64": "%%%"}}),
            )),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "payload of a wrong shape",
            framed(&request(
                "writeFile",
                json!({"path": "/mem/x", "data": [1, 2]}),
            )),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "attachment index out of range",
            encode(
                &request(
                    "writeFile",
                    json!({"path": "/mem/x", "data": {"attachment": 1}}),
                ),
                &[b"abc"],
            ),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "attachment named but none sent",
            framed(&request(
                "writeFile",
                json!({"path": "/mem/x", "data": {"attachment": 0}}),
            )),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "attachment sent but unused",
            encode(
                &request("readFile", json!({"path": "/keep.txt"})),
                &[b"stray"],
            ),
            INVALID_PARAMS,
            "EINVAL",
        ),
        (
            "unknown driver id",
            framed(&request(
                "mountFs",
                json!({"path": "/x", "driver": {"id": "ftp"}}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "bad driver config",
            framed(&request(
                "mountFs",
                json!({"path": "/x", "driver": {"id": "memory", "config": {"size": "big"}}}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "driver config of a wrong type",
            framed(&request(
                "mountFs",
                json!({"path": "/x", "driver": {"id": "host_dir", "config": {"hostPath": 7}}}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "host directory missing",
            framed(&request(
                "mountFs",
                json!({"path": "/x", "driver": {"id": "host_dir", "config": {"hostPath": "/nonexistent/vfs-test"}}}),
            )),
            ACTION_FAILED,
            "ENOENT",
        ),
        (
            "mount on a file",
            framed(&request(
                "mountFs",
                json!({"path": "/keep.txt", "driver": {"id": "memory"}}),
            )),
            ACTION_FAILED,
            "ENOTDIR",
        ),
        (
            "mount twice",
            framed(&request(
                "mountFs",
                json!({"path": "/mem", "driver": {"id": "memory"}}),
            )),
            ACTION_FAILED,
            "EEXIST",
        ),
        (
            "unmount a non-mount",
            framed(&request("unmountFs", json!({"path": "/keep.txt"}))),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "unmount the root under mounts",
            framed(&request("unmountFs", json!({"path": "/"}))),
            ACTION_FAILED,
            "EBUSY",
        ),
        (
            "dot-dot above the root",
            framed(&request("readFile", json!({"path": "/../etc/passwd"}))),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "dot-dot out of a host mount",
            framed(&request(
                "readFile",
                json!({"path": "/host/../../etc/passwd"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "symlink out of a host mount",
            framed(&request("readFile", json!({"path": "/host/escape/passwd"}))),
            ACTION_FAILED,
            "ENOENT",
        ),
        (
            "relative path",
            framed(&request(
                "writeFile",
                json!({"path": "keep.txt", "data": "x"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "NUL in a path",
            framed(&request(
                "writeFile",
                json!({"path": "/mem/a\u{0}b", "data": "x"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "name too long",
            framed(&request(
                "writeFile",
                json!({"path": long_name, "data": "x"}),
            )),
            ACTION_FAILED,
            "ENAMETOOLONG",
        ),
        (
            "path too long",
            framed(&request("stat", json!({"path": too_long_path}))),
            ACTION_FAILED,
            "ENAMETOOLONG",
        ),
        (
            "write to a read-only mount",
            framed(&request(
                "writeFile",
                json!({"path": "/ro/a.txt", "data": "x"}),
            )),
            ACTION_FAILED,
            "EROFS",
        ),
        (
            "rename across mounts",
            framed(&request(
                "rename",
                json!({"from": "/keep.txt", "to": "/mem/keep.txt"}),
            )),
            ACTION_FAILED,
            "EXDEV",
        ),
        (
            "remove a mount point",
            framed(&request(
                "remove",
                json!({"path": "/mem", "recursive": true}),
            )),
            ACTION_FAILED,
            "EBUSY",
        ),
        (
            "text of binary content",
            framed(&request(
                "readFile",
                json!({"path": "/mem/bin", "encoding": "utf8"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "bad tag",
            framed(&request(
                "snapshotRootFilesystem",
                json!({"tag": "../../refs"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "unknown snapshot",
            framed(&request(
                "restoreSnapshot",
                json!({"snapshot": "nope", "path": "/r"}),
            )),
            ACTION_FAILED,
            "ENOENT",
        ),
        (
            "restore into a non-empty directory",
            framed(&request(
                "restoreSnapshot",
                json!({"snapshot": "base", "path": "/mem"}),
            )),
            ACTION_FAILED,
            "ENOTEMPTY",
        ),
        (
            "garbage archive",
            encode(
                &request(
                    "importSnapshot",
                    json!({"format": "tar", "data": {"attachment": 0}}),
                ),
                &[&[7u8; 1536]],
            ),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "import from two sources",
            framed(&request(
                "importSnapshot",
                json!({"format": "tar", "data": "x", "hostPath": "/tmp/x.tar"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
        (
            "relative export hostPath",
            framed(&request(
                "exportSnapshot",
                json!({"snapshot": "base", "format": "tar", "hostPath": "out.tar"}),
            )),
            ACTION_FAILED,
            "EINVAL",
        ),
    ];
    // Numbered ids make each answer traceable.
    for (i, case) in cases.iter_mut().enumerate() {
        if let Ok(mut value) = serde_json::from_slice::<Value>(&case.1[4..]) {
            if value.get("id") == Some(&json!(1)) {
                value["id"] = json!(100 + i);
                let attachments_start =
                    4 + u32::from_be_bytes(case.1[..4].try_into().unwrap()) as usize;
                let mut bytes = framed(&value);
                bytes.extend_from_slice(&case.1[attachments_start..]);
                case.1 = bytes;
            }
        }
    }
    cases
}

/// Frames that cannot be read as a request object: answered with the code given, then the
/// connection closes, since any attachments they announced are unknown. The last one's
/// attachment is itself a request (to remove `/keep.txt`), which must never run.
fn unparsable_cases() -> Vec<(&'static str, Vec<u8>, i64)> {
    let mut smuggled = frame(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"writeFile\",\"attachments\":1,\"params\":{\"path\":\"/\xff\",\"data\":{\"attachment\":0}}}",
    );
    smuggled.extend_from_slice(&framed(&request("remove", json!({"path": "/keep.txt"}))));
    vec![
        ("not JSON", frame(b"{\"jsonrpc\": \"2.0\", oops"), PARSE_ERROR),
        ("invalid UTF-8", frame(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"readFile\",\"params\":{\"path\":\"/\xff\xfe\"}}"), PARSE_ERROR),
        ("empty frame", frame(b""), PARSE_ERROR),
        ("batch array", framed(&json!([request("listMounts", json!({}))])), INVALID_REQUEST),
        ("scalar", framed(&json!(42)), INVALID_REQUEST),
        ("invalid UTF-8 announcing an attachment that holds a request", smuggled, PARSE_ERROR),
    ]
}

/// Frame errors after which the stream cannot be followed: answered, then that
/// connection closes. The bool says whether the client ends its side first (a
/// truncated frame only shows as such at the end of the stream).
fn fatal_cases() -> Vec<(&'static str, Vec<u8>, bool, &'static str)> {
    let write = request(
        "writeFile",
        json!({"path": "/mem/partial", "data": {"attachment": 0}}),
    );
    let mut write_json = write.clone();
    write_json["attachments"] = json!(1);
    let announced = framed(&write_json);
    let with = |tail: &[u8]| {
        let mut bytes = announced.clone();
        bytes.extend_from_slice(tail);
        bytes
    };
    let mut truncated_attachment = (100u32).to_be_bytes().to_vec();
    truncated_attachment.extend_from_slice(b"only");
    vec![
        (
            "JSON frame over the limit",
            (u32::MAX - 1).to_be_bytes().to_vec(),
            false,
            "EFBIG",
        ),
        (
            "attachment over the limit",
            with(&(u32::MAX).to_be_bytes()),
            false,
            "EFBIG",
        ),
        ("truncated header", vec![0, 0], true, "EINVAL"),
        (
            "truncated JSON frame",
            [&200u32.to_be_bytes()[..], b"{\"jsonrpc\":"].concat(),
            true,
            "EINVAL",
        ),
        (
            "truncated attachment",
            with(&truncated_attachment),
            true,
            "EINVAL",
        ),
        ("attachment never sent", announced.clone(), true, "EINVAL"),
        (
            "attachments not a count",
            framed(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "listMounts", "attachments": "two"}),
            ),
            false,
            "EINVAL",
        ),
        (
            "too many attachments",
            framed(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "listMounts", "attachments": 100000}),
            ),
            false,
            "EINVAL",
        ),
    ]
}

#[test]
fn malformed_requests_get_errno_errors_and_change_nothing() {
    let (fx, mut watcher) = start(tempfile::tempdir().unwrap());
    let base = watcher.ok("listSnapshots", json!({}))[0]["snapshotId"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = state(&mut watcher, &fx.host);
    let mut bad = fx.server.client();

    let cases = recoverable_cases(&base);
    let mut count = 0;
    for (name, bytes, rpc_code, code) in &cases {
        bad.send_raw(bytes);
        let answer = bad.next_answer();
        let error = answer
            .json
            .get("error")
            .unwrap_or_else(|| panic!("{name}: no error in {}", answer.json));
        let err = error_of(&answer.json, error);
        assert_eq!(
            (err.rpc_code, err.code.as_str()),
            (*rpc_code, *code),
            "{name}: {}",
            answer.json
        );
        assert!(!err.message.is_empty(), "{name}: empty message");
        assert_eq!(answer.json["jsonrpc"], "2.0");
        count += 1;
    }
    // A notification (no id) that fails gets no answer: the next answer is the next request's.
    bad.send_raw(&framed(
        &json!({"jsonrpc": "2.0", "method": "readFile", "params": {"path": "/nope"}}),
    ));
    let after_notification = bad.call("listMounts", json!({})).unwrap();
    assert!(after_notification.json["result"].is_array());
    // The same connection still works.
    assert_eq!(
        bad.ok("readFile", json!({"path": "/keep.txt", "encoding": "utf8"}))["data"],
        "keep"
    );

    for (name, bytes, end_first, code) in fatal_cases() {
        let mut victim = fx.server.client();
        victim.send_raw(&bytes);
        if end_first {
            victim.close_write();
        }
        let messages = victim.wait_closed();
        assert_eq!(messages.len(), 1, "{name}: {messages:?}");
        let json = &messages[0].json;
        let err = error_of(json, &json["error"]);
        assert_eq!(
            (err.rpc_code, err.code.as_str()),
            (INVALID_REQUEST, code),
            "{name}: {json}"
        );
        // Other clients are served all along.
        assert_eq!(
            watcher.ok("stat", json!({"path": "/keep.txt"}))["size"],
            4,
            "after {name}"
        );
        count += 1;
    }
    for (name, bytes, rpc_code) in unparsable_cases() {
        let mut victim = fx.server.client();
        victim.send_raw(&bytes);
        let messages = victim.wait_closed();
        assert_eq!(messages.len(), 1, "{name}: {messages:?}");
        let json = &messages[0].json;
        let err = error_of(json, &json["error"]);
        assert_eq!(
            (err.rpc_code, err.code.as_str()),
            (rpc_code, "EINVAL"),
            "{name}: {json}"
        );
        assert_eq!(json["id"], Value::Null, "{name}");
        assert_eq!(
            watcher.ok("stat", json!({"path": "/keep.txt"}))["size"],
            4,
            "after {name}"
        );
        count += 1;
    }
    assert!(count >= 30, "only {count} malformed requests");

    assert_eq!(
        watcher.err("stat", json!({"path": "/mem/partial"})).code,
        "ENOENT"
    );
    assert_eq!(
        watcher.err("stat", json!({"path": "/mem/x"})).code,
        "ENOENT"
    );
    let after = state(&mut watcher, &fx.host);
    assert_eq!(before, after, "the tree changed");
    let snapshots = watcher.ok("listSnapshots", json!({}));
    assert_eq!(
        snapshots.as_array().unwrap().len(),
        2,
        "base and the normalized state: {snapshots}"
    );
    assert!(fx.server.terminate().success());
}

#[test]
fn malformed_requests_over_stdio_keep_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut client) = Server::stdio(&dir.path().join("store"), &[]);
    client.ok("writeFile", json!({"path": "/f", "data": "x"}));
    for (name, bytes, rpc_code, code) in recoverable_cases("0").into_iter().take(16) {
        client.send_raw(&bytes);
        let answer = client.next_answer();
        let err = error_of(&answer.json, &answer.json["error"]);
        assert_eq!(
            (err.rpc_code, err.code.as_str()),
            (rpc_code, code),
            "{name}"
        );
    }
    assert_eq!(
        client.ok("readFile", json!({"path": "/f", "encoding": "utf8"}))["data"],
        "x"
    );
    // A truncated frame at the end of stdin: answered, then the server ends normally.
    client.send_raw(&[0, 0, 1]);
    client.close_write();
    let rest = client.wait_closed();
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0].json["error"]["data"]["code"], "EINVAL");
    assert!(server.wait().success());
}
