//! agentOS JSON snapshot export and import.

mod common;

use std::sync::Arc;

use common::*;
use vfs_core::{ErrorKind, VfsPath};
use vfs_snapshot::{
    AgentOsExportOptions, AgentOsSnapshot, ImportOptions, Repository, RestoreOptions,
    SnapshotOptions,
};

async fn repo() -> (tempfile::TempDir, Arc<Repository>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    (dir, repo)
}

async fn object_count(repo: &Repository) -> usize {
    use futures::TryStreamExt;
    let all: Vec<_> = repo.store().list(None).try_collect().await.unwrap();
    all.len()
}

fn sample_json() -> serde_json::Value {
    serde_json::json!({
        "kind": "snapshot-export",
        "source": {
            "format": "agent-os-filesystem-snapshot-v1",
            "filesystem": { "entries": [
                { "path": "/", "type": "directory", "mode": "0755", "uid": 0, "gid": 0 },
                { "path": "/bin", "type": "directory", "mode": "0755", "uid": 0, "gid": 0 },
                { "path": "/bin/busybox", "type": "file", "mode": "4755", "uid": 0, "gid": 0,
                  "content": "AAECA/7/gA==", "encoding": "base64" },
                { "path": "/etc", "type": "directory", "mode": "0750", "uid": 5, "gid": 6 },
                { "path": "/etc/empty", "type": "file", "mode": "0600", "uid": 0, "gid": 0,
                  "content": "", "encoding": "utf8" },
                { "path": "/etc/hosts", "type": "file", "mode": "0644", "uid": 1000, "gid": 100,
                  "content": "127.0.0.1 localhost\n", "encoding": "utf8" },
                { "path": "/etc/unicode", "type": "file", "mode": "0644", "uid": 0, "gid": 0,
                  "content": "grüße ✓", "encoding": "utf8" },
                { "path": "/usr", "type": "directory", "mode": "0755", "uid": 0, "gid": 0 },
                { "path": "/usr/bin", "type": "directory", "mode": "0755", "uid": 0, "gid": 0 },
                { "path": "/usr/bin/rel", "type": "symlink", "mode": "0777", "uid": 0, "gid": 0,
                  "target": "../../bin/busybox" },
                { "path": "/usr/bin/sh", "type": "symlink", "mode": "0777", "uid": 0, "gid": 0,
                  "target": "/bin/busybox" }
            ] }
        }
    })
}

#[tokio::test]
async fn agentos_json_round_trips_exactly() {
    let (_dir, repo) = repo().await;
    let input = sample_json();
    let bytes = serde_json::to_vec(&input).unwrap();
    let (id, stats) = repo
        .import_agentos_json(&bytes, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!((stats.files, stats.dirs, stats.symlinks), (4, 5, 2));
    assert!(repo.verify(&id).await.unwrap().is_ok());
    let out = repo
        .export_agentos_json(&id, &AgentOsExportOptions::default())
        .await
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(out, input);
    // Importing the export again is the same snapshot and stores nothing new.
    let (again, stats) = repo
        .import_agentos_json(
            &serde_json::to_vec(&out).unwrap(),
            &ImportOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(again, id);
    assert_eq!(stats.chunks_new + stats.trees_new, 0, "{stats:?}");
}

#[tokio::test]
async fn snapshot_to_agentos_and_back_restores_the_same_content() {
    let (_dir, repo) = repo().await;
    let fs = populated().await;
    let options = SnapshotOptions {
        normalize: true,
        ..SnapshotOptions::default()
    };
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &options)
        .await
        .unwrap();
    let (doc, stats) = repo
        .export_agentos(&id, &AgentOsExportOptions::default())
        .await
        .unwrap();
    assert!(stats.skipped.is_empty());
    assert_eq!(doc.source.filesystem.entries[0].path, "/");
    let big = doc
        .source
        .filesystem
        .entries
        .iter()
        .find(|e| e.path == "/home/user/big.bin")
        .unwrap();
    assert_eq!(big.encoding.as_deref(), Some("base64"));
    let notes = doc
        .source
        .filesystem
        .entries
        .iter()
        .find(|e| e.path == "/home/user/notes.txt")
        .unwrap();
    assert_eq!(
        (notes.mode.as_str(), notes.content.as_deref()),
        ("0750", Some("hello")) // chown in the fixture cleared setuid
    );
    let (back, stats) = repo
        .import_agentos(&doc, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(stats.chunks_new, 0, "content dedups against the snapshot");
    // Same export both ways (hard links become plain files, times are not in the format).
    let (doc2, _) = repo
        .export_agentos(&back, &AgentOsExportOptions::default())
        .await
        .unwrap();
    assert_eq!(doc, doc2);
    // And the restored content equals the source's.
    let target = vfs_drivers::MemoryFs::new();
    repo.restore(&back, &target, &p("/r"), &RestoreOptions::default())
        .await
        .unwrap();
    for path in [
        "etc/hosts",
        "home/user/big.bin",
        "srv/hosts.hard",
        "etc/empty",
    ] {
        let a = vfs_core::FileSystem::read_file(fs.as_ref(), &p(&format!("/{path}")))
            .await
            .unwrap();
        let b = vfs_core::FileSystem::read_file(&target, &p(&format!("/r/{path}")))
            .await
            .unwrap();
        assert_eq!(a, b, "{path}");
    }
}

#[tokio::test]
async fn export_past_max_bytes_is_efbig_naming_the_file() {
    let (_dir, repo) = repo().await;
    let bytes = serde_json::to_vec(&sample_json()).unwrap();
    let (id, _) = repo
        .import_agentos_json(&bytes, &ImportOptions::default())
        .await
        .unwrap();
    let options = AgentOsExportOptions {
        max_bytes: Some(10),
    };
    let err = repo.export_agentos(&id, &options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge);
    assert!(err.to_string().contains("/etc/hosts"), "{err}");
    // Enough room: fine.
    let options = AgentOsExportOptions {
        max_bytes: Some(1000),
    };
    assert!(repo.export_agentos(&id, &options).await.is_ok());
}

fn with_entries(entries: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "kind": "snapshot-export",
        "source": { "format": "agent-os-filesystem-snapshot-v1",
                    "filesystem": { "entries": entries } }
    }))
    .unwrap()
}

#[tokio::test]
async fn hostile_agentos_documents_are_refused_and_store_nothing() {
    let (_dir, repo) = repo().await;
    let before = object_count(&repo).await;
    let file = |path: &str| serde_json::json!({"path": path, "type": "file", "mode": "0644", "content": "x"});
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"{".to_vec()),
        ("not an object", b"[]".to_vec()),
        (
            "wrong kind",
            br#"{"kind":"other","source":{"format":"agent-os-filesystem-snapshot-v1","filesystem":{"entries":[]}}}"#.to_vec(),
        ),
        (
            "wrong format",
            br#"{"kind":"snapshot-export","source":{"format":"v2","filesystem":{"entries":[]}}}"#.to_vec(),
        ),
        ("relative path", with_entries(serde_json::json!([file("etc/x")]))),
        ("dot-dot", with_entries(serde_json::json!([file("/etc/../x")]))),
        ("dot", with_entries(serde_json::json!([file("/./x")]))),
        ("empty component", with_entries(serde_json::json!([file("//x")]))),
        ("trailing slash", with_entries(serde_json::json!([file("/x/")]))),
        ("NUL", with_entries(serde_json::json!([file("/a\u{0}b")]))),
        ("duplicate", with_entries(serde_json::json!([file("/x"), file("/x")]))),
        (
            "duplicate kinds",
            with_entries(serde_json::json!([file("/x"), {"path": "/x", "type": "directory", "mode": "0755"}])),
        ),
        (
            "mode not octal",
            with_entries(serde_json::json!([{"path": "/x", "type": "file", "mode": "0999"}])),
        ),
        (
            "mode with type bits",
            with_entries(serde_json::json!([{"path": "/x", "type": "file", "mode": "100644"}])),
        ),
        (
            "mode a number",
            with_entries(serde_json::json!([{"path": "/x", "type": "file", "mode": 420}])),
        ),
        (
            "unknown type",
            with_entries(serde_json::json!([{"path": "/x", "type": "fifo", "mode": "0644"}])),
        ),
        (
            "unknown encoding",
            with_entries(serde_json::json!([{"path": "/x", "type": "file", "mode": "0644", "content": "x", "encoding": "hex"}])),
        ),
        (
            "bad base64",
            with_entries(serde_json::json!([{"path": "/x", "type": "file", "mode": "0644", "content": "@@@", "encoding": "base64"}])),
        ),
        (
            "symlink without target",
            with_entries(serde_json::json!([{"path": "/x", "type": "symlink", "mode": "0777"}])),
        ),
        (
            "symlink escaping",
            with_entries(serde_json::json!([{"path": "/a/x", "type": "symlink", "mode": "0777", "target": "../../etc"}])),
        ),
        (
            "beneath a file",
            with_entries(serde_json::json!([file("/x"), file("/x/y")])),
        ),
        (
            "root a file",
            with_entries(serde_json::json!([{"path": "/", "type": "file", "mode": "0644"}])),
        ),
        (
            "directory with content",
            with_entries(serde_json::json!([{"path": "/d", "type": "directory", "mode": "0755", "content": "x"}])),
        ),
        (
            "uid negative",
            with_entries(serde_json::json!([{"path": "/x", "type": "file", "mode": "0644", "uid": -1}])),
        ),
        (
            "name too long",
            with_entries(serde_json::json!([file(&format!("/{}", "n".repeat(256)))])),
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, json) in cases {
        let err = repo
            .import_agentos_json(&json, &ImportOptions::default())
            .await
            .expect_err(what);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{what}: {err}");
    }
    // Limits are EFBIG.
    let big = with_entries(serde_json::json!([file("/a"), file("/b")]));
    let limits = ImportOptions {
        max_total_size: 1,
        ..ImportOptions::default()
    };
    let err = repo.import_agentos_json(&big, &limits).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileTooLarge);
    assert_eq!(object_count(&repo).await, before, "nothing stored");
    assert!(repo.list_snapshots().await.unwrap().is_empty());
}

#[tokio::test]
async fn implied_directories_and_defaults() {
    let (_dir, repo) = repo().await;
    let json = with_entries(serde_json::json!([
        {"path": "/a/b/c", "type": "file", "mode": "644"}
    ]));
    let (id, _) = repo
        .import_agentos_json(&json, &ImportOptions::default())
        .await
        .unwrap();
    let (doc, _): (AgentOsSnapshot, _) = repo
        .export_agentos(&id, &AgentOsExportOptions::default())
        .await
        .unwrap();
    let paths: Vec<(&str, &str)> = doc
        .source
        .filesystem
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.mode.as_str()))
        .collect();
    assert_eq!(
        paths,
        vec![
            ("/", "0755"),
            ("/a", "0755"),
            ("/a/b", "0755"),
            ("/a/b/c", "0644")
        ]
    );
}
