//! The configurable frame limits, in process over an in-memory stream: the JSON frame
//! size, the attachment budget of one message (shared by all its attachments) and the
//! attachment count. Each is answered with an error and ends only that connection.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vfs_layer::actions::Vfs;
use vfs_layer::core::{DriverDescriptor, MountOptions, VfsPath};
use vfs_layer::server::{serve_stream, Limits};

const LIMITS: Limits = Limits {
    max_json_frame: 256,
    max_attachment: 10,
    max_attachments: 2,
    max_in_flight: 4,
};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Sends `bytes` on a new connection, ends it, and returns every JSON message answered.
async fn exchange(vfs: &Arc<Vfs>, bytes: Vec<u8>) -> Vec<Value> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server);
    let served = tokio::spawn(serve_stream(vfs.clone(), server_read, server_write, LIMITS));
    let (mut read, mut write) = tokio::io::split(client);
    write.write_all(&bytes).await.unwrap();
    write.shutdown().await.unwrap();
    let mut received = Vec::new();
    read.read_to_end(&mut received).await.unwrap();
    served.await.unwrap();
    let mut messages = Vec::new();
    let mut rest = &received[..];
    while rest.len() >= 4 {
        let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        let body: Value = serde_json::from_slice(&rest[4..4 + length]).unwrap();
        rest = &rest[4 + length..];
        // Skip the attachment frames an answer announces.
        for _ in 0..body.get("attachments").and_then(Value::as_u64).unwrap_or(0) {
            let length = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            rest = &rest[4 + length..];
        }
        messages.push(body);
    }
    messages
}

fn write_request(path: &str, attachments: usize) -> Vec<u8> {
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "writeFile",
        "params": {"path": path, "data": {"attachment": 0}}, "attachments": attachments});
    frame(request.to_string().as_bytes())
}

#[tokio::test]
async fn each_limit_refuses_its_message_and_runs_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let repository = vfs_layer::snapshot::Repository::open_local(dir.path())
        .await
        .unwrap();
    let vfs = Arc::new(Vfs::new(vfs_layer::registry(), repository));
    let memory = DriverDescriptor::new("memory", json!({}));
    vfs.mount_fs(&VfsPath::root(), &memory, MountOptions::default())
        .await
        .unwrap();

    // Within the limits: one attachment of exactly the budget.
    let mut ok = write_request("/fits", 1);
    ok.extend(frame(b"0123456789"));
    let answers = exchange(&vfs, ok).await;
    assert_eq!(
        answers,
        [json!({"jsonrpc": "2.0", "id": 1, "result": null})]
    );

    let over_json = frame(
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
            "x".repeat(300)
        )
        .as_bytes(),
    );
    let mut over_one = write_request("/one", 1);
    over_one.extend(frame(b"01234567890"));
    // Two attachments of 6 bytes each: each fits alone, together they are over.
    let mut over_total = write_request("/total", 2);
    over_total.extend(frame(b"012345"));
    over_total.extend(frame(b"012345"));
    let too_many = write_request("/many", 3);
    let cases = [
        ("JSON frame", over_json, "EFBIG"),
        ("one attachment", over_one, "EFBIG"),
        ("attachments together", over_total, "EFBIG"),
        ("attachment count", too_many, "EINVAL"),
    ];
    for (name, bytes, code) in cases {
        let answers = exchange(&vfs, bytes).await;
        assert_eq!(answers.len(), 1, "{name}: {answers:?}");
        assert_eq!(answers[0]["error"]["code"], -32600, "{name}: {answers:?}");
        assert_eq!(
            answers[0]["error"]["data"]["code"], code,
            "{name}: {answers:?}"
        );
    }
    let entries: Vec<String> = vfs
        .read_dir_entries(&VfsPath::root())
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(entries, ["fits"]);
}
