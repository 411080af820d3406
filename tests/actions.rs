//! The actions from Rust: every action through `Vfs::dispatch` with its JSON shape, the
//! typed methods, errors that change nothing, events, and booting from config files.

use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::broadcast;
use vfs_layer::actions::{
    Action, ActionError, ActionOutput, ArchiveFormat, ImportSource, MountsConfig, Vfs, VfsEvent,
};
use vfs_layer::core::{DriverDescriptor, MountOptions, VfsPath};

struct Fixture {
    vfs: Vfs,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// A Vfs with a memory root and a store in a temporary directory.
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repository = vfs_layer::snapshot::Repository::open_local(&dir.path().join("store"))
            .await
            .unwrap();
        let vfs = Vfs::new(vfs_layer::registry(), repository);
        let memory = DriverDescriptor::new("memory", json!({}));
        vfs.mount_fs(&VfsPath::root(), &memory, MountOptions::default())
            .await
            .unwrap();
        Fixture { vfs, dir }
    }

    /// Runs an action given as `{"method", "params"}` JSON and returns its JSON result.
    async fn call(&self, method: &str, params: Value) -> Result<Value, ActionError> {
        let action = Action::from_rpc(method, Some(params))?;
        let output = self.vfs.dispatch(action).await?;
        Ok(serde_json::to_value(&output).unwrap())
    }

    async fn ok(&self, method: &str, params: Value) -> Value {
        match self.call(method, params.clone()).await {
            Ok(value) => value,
            Err(err) => panic!("{method} {params}: {err}"),
        }
    }

    async fn err(&self, method: &str, params: Value) -> ActionError {
        match self.call(method, params.clone()).await {
            Ok(value) => panic!("{method} {params} succeeded with {value}"),
            Err(err) => err,
        }
    }

    /// The whole tree as a normalized snapshot id (stored, but the store is not the
    /// tree), for "nothing changed" checks.
    async fn tree_id(&self) -> String {
        let summary = self
            .vfs
            .snapshot_root_filesystem(&VfsPath::root(), None, true)
            .await
            .unwrap();
        summary.snapshot_id
    }

    fn host_dir(&self, name: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        path
    }
}

fn drain(events: &mut broadcast::Receiver<VfsEvent>) -> Vec<VfsEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

fn text(value: &Value) -> &str {
    value["data"]
        .as_str()
        .unwrap_or_else(|| panic!("no text data in {value}"))
}

#[tokio::test]
async fn mount_list_unmount_with_agentos_shapes_and_events() {
    let fx = Fixture::new().await;
    let host = fx.host_dir("host");
    std::fs::write(host.join("seed.txt"), "from the host").unwrap();
    let mut events = fx.vfs.subscribe();

    let work = fx
        .ok(
            "mountFs",
            json!({"path": "/work", "driver": {"id": "memory", "config": {}}, "options": {"readOnly": false}}),
        )
        .await;
    assert_eq!(work["path"], "/work");
    assert_eq!(work["kind"], "memory");
    assert_eq!(work["readOnly"], false);
    // agentOS's later descriptor: `plugin` and a top-level readOnly.
    let data = fx
        .ok(
            "mountFs",
            json!({"path": "/data", "plugin": {"id": "host_dir", "config": {"hostPath": host, "readOnly": true}}, "readOnly": true}),
        )
        .await;
    assert_eq!(data["readOnly"], true);

    let mounts = fx.ok("listMounts", json!({})).await;
    let rows = mounts.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, ["kind", "mountId", "path", "readOnly"], "{row}");
    }
    assert!(
        !mounts.to_string().contains("hostPath"),
        "config leaked: {mounts}"
    );
    assert_eq!(
        rows.iter()
            .map(|r| r["path"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["/", "/data", "/work"]
    );

    let read = fx
        .ok(
            "readFile",
            json!({"path": "/data/seed.txt", "encoding": "utf8"}),
        )
        .await;
    assert_eq!(text(&read), "from the host");
    let refused = fx
        .err("writeFile", json!({"path": "/data/new.txt", "data": "x"}))
        .await;
    assert_eq!(refused.code, "EROFS");

    let gone = fx.ok("unmountFs", json!({"path": "/work"})).await;
    assert_eq!(gone["mountId"], work["mountId"]);
    fx.ok("unmountFs", json!({"path": "/data", "lazy": true}))
        .await;
    assert_eq!(
        fx.ok("listMounts", Value::Null)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let seen: Vec<Value> = drain(&mut events)
        .iter()
        .map(|event| serde_json::to_value(event).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = seen
        .iter()
        .map(|e| (e["type"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("mounted", "/work"),
            ("mounted", "/data"),
            ("unmounted", "/work"),
            ("unmounted", "/data")
        ]
    );
    assert_eq!(seen[0]["mountId"], work["mountId"]);
    assert_eq!(seen[1]["kind"], "host_dir");
    assert_eq!(seen[2]["lazy"], false);
}

#[tokio::test]
async fn file_actions_read_write_list_stat_mkdir_remove_rename() {
    let fx = Fixture::new().await;
    fx.ok("mkdir", json!({"path": "/a/b/c", "recursive": true}))
        .await;
    fx.ok("mkdir", json!({"path": "/a/b/c", "recursive": true}))
        .await;
    assert_eq!(
        fx.err("mkdir", json!({"path": "/a/b/c"})).await.code,
        "EEXIST"
    );
    assert_eq!(
        fx.err("mkdir", json!({"path": "/x/y"})).await.code,
        "ENOENT"
    );

    fx.ok("writeFile", json!({"path": "/a/text.txt", "data": "hello"}))
        .await;
    fx.ok(
        "writeFile",
        json!({"path": "/a/bin", "data": {"base64": "AAH/"}}),
    )
    .await;
    let bin = fx.ok("readFile", json!({"path": "/a/bin"})).await;
    assert_eq!(bin, json!({"size": 3, "data": {"base64": "AAH/"}}));
    let bin = fx
        .ok("readFile", json!({"path": "/a/bin", "encoding": "base64"}))
        .await;
    assert_eq!(bin["data"]["base64"], "AAH/");
    // Not UTF-8: asking for text is a clear error, not mangled content.
    let err = fx
        .vfs
        .dispatch(
            Action::from_rpc(
                "readFile",
                Some(json!({"path": "/a/bin", "encoding": "utf8"})),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(serde_json::to_value(&err)
        .unwrap_err()
        .to_string()
        .contains("EINVAL"));
    assert_eq!(
        text(
            &fx.ok(
                "readFile",
                json!({"path": "/a/text.txt", "encoding": "utf8"})
            )
            .await
        ),
        "hello"
    );

    fx.ok(
        "mountFs",
        json!({"path": "/a/mnt", "driver": {"id": "memory"}}),
    )
    .await;
    let entries = fx.ok("readDirEntries", json!({"path": "/a"})).await;
    let listed: Vec<(String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("b", "directory"),
        ("bin", "file"),
        ("mnt", "directory"),
        ("text.txt", "file"),
    ];
    assert_eq!(listed, expected.map(|(n, k)| (n.to_owned(), k.to_owned())));

    let stat = fx.ok("stat", json!({"path": "/a/text.txt"})).await;
    assert_eq!(stat["size"], 5);
    assert_eq!(stat["isFile"], true);
    assert_eq!(stat["isDirectory"], false);
    assert_eq!(stat["mode"].as_u64().unwrap() & 0o170000, 0o100000);
    for field in [
        "blocks",
        "dev",
        "rdev",
        "atimeMs",
        "mtimeMs",
        "ctimeMs",
        "birthtimeMs",
        "ino",
        "nlink",
        "uid",
        "gid",
        "isSymbolicLink",
    ] {
        assert!(stat.get(field).is_some(), "stat lacks {field}: {stat}");
    }
    assert_eq!(
        fx.ok("stat", json!({"path": "/a"})).await["isDirectory"],
        true
    );

    fx.ok(
        "rename",
        json!({"from": "/a/text.txt", "to": "/a/b/moved.txt"}),
    )
    .await;
    assert_eq!(
        fx.err("stat", json!({"path": "/a/text.txt"})).await.code,
        "ENOENT"
    );
    let across = fx
        .err(
            "rename",
            json!({"from": "/a/b/moved.txt", "to": "/a/mnt/x"}),
        )
        .await;
    assert_eq!(across.code, "EXDEV");

    assert_eq!(
        fx.err("remove", json!({"path": "/a/b"})).await.code,
        "ENOTEMPTY"
    );
    fx.ok("remove", json!({"path": "/a/bin"})).await;
    fx.ok("remove", json!({"path": "/a/b", "recursive": true}))
        .await;
    let left = fx.ok("readDirEntries", json!({"path": "/a"})).await;
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
}

#[tokio::test]
async fn snapshot_tag_list_diff_restore_with_progress_events() {
    let fx = Fixture::new().await;
    fx.ok("mkdir", json!({"path": "/etc", "recursive": true}))
        .await;
    fx.ok(
        "writeFile",
        json!({"path": "/etc/hosts", "data": "127.0.0.1 localhost\n"}),
    )
    .await;
    fx.ok("writeFile", json!({"path": "/etc/motd", "data": "hi"}))
        .await;
    let mut events = fx.vfs.subscribe();

    let first = fx
        .ok("snapshotRootFilesystem", json!({"tag": "boot"}))
        .await;
    let first_id = first["snapshotId"].as_str().unwrap().to_owned();
    assert_eq!(first_id.len(), 64);
    assert_eq!(first["tag"], "boot");
    assert_eq!(first["stats"]["files"], 2);

    let seen: Vec<Value> = drain(&mut events)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let last = seen.last().unwrap();
    assert_eq!(last["type"], "snapshotFinished");
    assert_eq!(last["snapshotId"], first_id.as_str());
    let progress: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "snapshotProgress")
        .collect();
    assert!(!progress.is_empty(), "no progress events: {seen:?}");
    assert_eq!(progress.last().unwrap()["phase"], "done");
    assert_eq!(progress.last().unwrap()["filesTotal"], 2);

    fx.ok("writeFile", json!({"path": "/etc/motd", "data": "changed"}))
        .await;
    let second = fx.ok("snapshotRootFilesystem", json!({"path": "/"})).await;
    let second_id = second["snapshotId"].as_str().unwrap();
    assert_ne!(second_id, first_id);
    // The stat cache: only the changed file is read again.
    assert_eq!(second["stats"]["filesCached"], 1);

    let diff = fx
        .ok("diffSnapshots", json!({"from": "boot", "to": second_id}))
        .await;
    assert_eq!(
        diff,
        json!({"changes": [{"path": "/etc/motd", "kind": "modified"}]})
    );
    fx.ok("writeFile", json!({"path": "/etc/new", "data": "n"}))
        .await;
    let live = fx.ok("diffSnapshots", json!({"from": second_id})).await;
    assert_eq!(
        live,
        json!({"changes": [
            {"path": "/etc", "kind": "metadataChanged"},
            {"path": "/etc/new", "kind": "added"},
        ]})
    );

    let listed = fx.ok("listSnapshots", json!({})).await;
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let boot = rows
        .iter()
        .find(|r| r["snapshotId"] == first_id.as_str())
        .unwrap();
    assert_eq!(boot["tags"], json!(["boot"]));

    let restored = fx
        .ok(
            "restoreSnapshot",
            json!({"snapshot": "boot", "path": "/restored"}),
        )
        .await;
    assert_eq!(restored["files"], 2);
    let motd = fx
        .ok(
            "readFile",
            json!({"path": "/restored/etc/motd", "encoding": "utf8"}),
        )
        .await;
    assert_eq!(text(&motd), "hi");
    let again = fx
        .err(
            "restoreSnapshot",
            json!({"snapshot": "boot", "path": "/restored"}),
        )
        .await;
    assert_eq!(again.code, "ENOTEMPTY");
}

#[tokio::test]
async fn export_and_import_round_trip_in_every_format() {
    let fx = Fixture::new().await;
    fx.ok("mkdir", json!({"path": "/srv/www", "recursive": true}))
        .await;
    fx.ok(
        "writeFile",
        json!({"path": "/srv/www/index.html", "data": "<h1>hi</h1>"}),
    )
    .await;
    fx.ok(
        "writeFile",
        json!({"path": "/srv/blob", "data": {"base64": "AAECAwQ="}}),
    )
    .await;
    let taken = fx
        .ok(
            "snapshotRootFilesystem",
            json!({"path": "/srv", "normalize": true}),
        )
        .await;
    let id = taken["snapshotId"].as_str().unwrap().to_owned();

    for format in ["tar", "tar.zst", "agentos"] {
        // Back to the caller as bytes.
        let action = Action::from_rpc(
            "exportSnapshot",
            Some(json!({"snapshot": id, "format": format})),
        )
        .unwrap();
        let ActionOutput::Exported(export) = fx.vfs.dispatch(action).await.unwrap() else {
            panic!("exportSnapshot gave another output")
        };
        let bytes = export
            .data
            .as_ref()
            .and_then(|d| d.bytes())
            .unwrap()
            .clone();
        assert_eq!(export.size, bytes.len() as u64);
        let format_enum: ArchiveFormat = serde_json::from_value(json!(format)).unwrap();
        let imported = fx
            .vfs
            .import_snapshot(format_enum, ImportSource::Bytes(bytes), Some("imported"))
            .await
            .unwrap();
        assert_eq!(
            imported.snapshot_id, id,
            "{format} round trip changed the id"
        );

        // Through a host file.
        let file = fx.dir.path().join(format!("out.{format}"));
        let written = fx
            .ok(
                "exportSnapshot",
                json!({"snapshot": id, "format": format, "hostPath": file}),
            )
            .await;
        assert_eq!(written["size"], std::fs::metadata(&file).unwrap().len());
        assert!(written.get("data").is_none());
        let imported = fx
            .ok(
                "importSnapshot",
                json!({"format": format, "hostPath": file}),
            )
            .await;
        assert_eq!(imported["snapshotId"], id.as_str());
    }
    let missing_dir = fx.dir.path().join("absent/out.tar");
    let err = fx
        .err(
            "exportSnapshot",
            json!({"snapshot": id, "format": "tar", "hostPath": missing_dir}),
        )
        .await;
    assert_eq!(err.code, "ENOENT");
    // An existing file is replaced whole, as `tar -cf` does.
    let again = fx
        .ok(
            "exportSnapshot",
            json!({"snapshot": id, "format": "tar", "hostPath": fx.dir.path().join("out.tar")}),
        )
        .await;
    assert_eq!(
        again["size"],
        std::fs::metadata(fx.dir.path().join("out.tar"))
            .unwrap()
            .len()
    );
    // Nothing half-written is left beside a failed export.
    let names: Vec<String> = std::fs::read_dir(fx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
}

#[tokio::test]
async fn bad_input_is_refused_with_its_errno_and_changes_nothing() {
    let fx = Fixture::new().await;
    fx.ok("writeFile", json!({"path": "/keep.txt", "data": "keep"}))
        .await;
    fx.ok("mountFs", json!({"path": "/m", "driver": {"id": "memory"}}))
        .await;
    fx.ok(
        "mountFs",
        json!({"path": "/m/inner", "driver": {"id": "memory"}}),
    )
    .await;
    let before = fx.tree_id().await;
    let snapshots_before = fx.vfs.list_snapshots().await.unwrap().len();
    let mounts_before = fx.vfs.list_mounts();

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "mountFs",
            json!({"path": "/x", "driver": {"id": "nope"}}),
            "EINVAL",
        ),
        (
            "mountFs",
            json!({"path": "/x", "driver": {"id": "memory", "config": {"bogus": 1}}}),
            "EINVAL",
        ),
        (
            "mountFs",
            json!({"path": "/x", "driver": {"id": "host_dir", "config": {}}}),
            "EINVAL",
        ),
        (
            "mountFs",
            json!({"path": "/m", "driver": {"id": "memory"}}),
            "EEXIST",
        ),
        (
            "mountFs",
            json!({"path": "/keep.txt", "driver": {"id": "memory"}}),
            "ENOTDIR",
        ),
        (
            "mountFs",
            json!({"path": "relative", "driver": {"id": "memory"}}),
            "EINVAL",
        ),
        ("unmountFs", json!({"path": "/m"}), "EBUSY"),
        ("unmountFs", json!({"path": "/keep.txt"}), "EINVAL"),
        ("readFile", json!({"path": "/missing"}), "ENOENT"),
        ("readFile", json!({"path": "/../etc/passwd"}), "EINVAL"),
        ("readFile", json!({"path": "/a\u{0}b"}), "EINVAL"),
        (
            "writeFile",
            json!({"path": "keep.txt", "data": "x"}),
            "EINVAL",
        ),
        (
            "writeFile",
            json!({"path": format!("/{}", "n".repeat(300)), "data": "x"}),
            "ENAMETOOLONG",
        ),
        (
            "writeFile",
            json!({"path": "/keep.txt/x", "data": "x"}),
            "ENOTDIR",
        ),
        (
            "writeFile",
            json!({"path": "/x", "data": {"attachment": 0}}),
            "EINVAL",
        ),
        ("remove", json!({"path": "/m"}), "EBUSY"),
        ("remove", json!({"path": "/m", "recursive": true}), "EBUSY"),
        ("rename", json!({"from": "/m", "to": "/moved"}), "EBUSY"),
        (
            "rename",
            json!({"from": "/keep.txt", "to": "/m/k"}),
            "EXDEV",
        ),
        ("mkdir", json!({"path": "/d", "mode": 0o17777}), "EINVAL"),
        ("snapshotRootFilesystem", json!({"tag": "../bad"}), "EINVAL"),
        (
            "snapshotRootFilesystem",
            json!({"path": "/keep.txt"}),
            "ENOTDIR",
        ),
        (
            "restoreSnapshot",
            json!({"snapshot": "nope", "path": "/r"}),
            "ENOENT",
        ),
        (
            "restoreSnapshot",
            json!({"snapshot": "0".repeat(64), "path": "/r"}),
            "ENOENT",
        ),
        ("diffSnapshots", json!({"from": "nope"}), "ENOENT"),
        (
            "exportSnapshot",
            json!({"snapshot": "nope", "format": "tar"}),
            "ENOENT",
        ),
        (
            "exportSnapshot",
            json!({"snapshot": before, "format": "tar", "hostPath": "relative.tar"}),
            "EINVAL",
        ),
        (
            "importSnapshot",
            json!({"format": "tar", "data": "not a tar archive at all, just text"}),
            "EINVAL",
        ),
        (
            "importSnapshot",
            json!({"format": "agentos", "data": "{}"}),
            "EINVAL",
        ),
        ("importSnapshot", json!({"format": "tar"}), "EINVAL"),
        (
            "importSnapshot",
            json!({"format": "tar", "hostPath": "/nonexistent/x.tar"}),
            "ENOENT",
        ),
    ];
    let store = fx.dir.path().join("store");
    let store = store.to_string_lossy();
    for (method, params, code) in &cases {
        let err = fx.err(method, params.clone()).await;
        assert_eq!(&err.code, code, "{method} {params}: {err}");
        assert!(!err.message.is_empty());
        // Where the store lives on the host is not the client's business.
        assert!(
            !err.to_string().contains(store.as_ref())
                && !serde_json::to_string(&err)
                    .unwrap()
                    .contains(store.as_ref()),
            "{method} {params}: {err}"
        );
    }
    // Parse-level refusals: unknown action, wrong types, missing and unknown fields.
    let parse_cases: Vec<(&str, Value, &str)> = vec![
        ("formatDisk", json!({}), "ENOSYS"),
        ("readFile", json!({}), "EINVAL"),
        ("readFile", json!({"path": 7}), "EINVAL"),
        (
            "readFile",
            json!({"path": "/keep.txt", "extra": true}),
            "EINVAL",
        ),
        (
            "mountFs",
            json!({"path": "/x", "driver": "memory"}),
            "EINVAL",
        ),
        ("unmountFs", json!({"path": "/m", "lazy": "yes"}), "EINVAL"),
        (
            "exportSnapshot",
            json!({"snapshot": before, "format": "zip"}),
            "EINVAL",
        ),
        (
            "writeFile",
            json!({"path": "/x", "data": {"base64": "!!"}}),
            "EINVAL",
        ),
        ("listMounts", json!({"x": 1}), "EINVAL"),
    ];
    for (method, params, code) in &parse_cases {
        let err = Action::from_rpc(method, Some(params.clone())).unwrap_err();
        assert_eq!(&err.code, code, "{method} {params}: {err}");
    }

    assert_eq!(fx.vfs.list_mounts(), mounts_before);
    assert_eq!(
        fx.vfs.list_snapshots().await.unwrap().len(),
        snapshots_before
    );
    assert_eq!(fx.tree_id().await, before);
}

#[tokio::test]
async fn error_path_and_json_shape() {
    let fx = Fixture::new().await;
    let err = fx.err("readFile", json!({"path": "/nope/file"})).await;
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["code"], "ENOENT");
    assert_eq!(json["path"], "/nope/file");
    assert!(json["message"].as_str().unwrap().starts_with("ENOENT"));
}

#[tokio::test]
async fn boot_from_toml_and_json_files_and_roll_back_on_error() {
    let fx = Fixture::new().await;
    let host = fx.host_dir("shared");
    std::fs::write(host.join("readme"), "shared").unwrap();
    let toml_path = fx.dir.path().join("mounts.toml");
    std::fs::write(
        &toml_path,
        format!(
            r#"
[[mounts]]
path = "/"
driver = {{ id = "memory" }}

[[mounts]]
path = "/shared"
driver = {{ id = "host_dir", config = {{ hostPath = "{}", readOnly = true }} }}
options = {{ readOnly = true }}
"#,
            host.display()
        ),
    )
    .unwrap();
    let store = vfs_layer::snapshot::Repository::open_local(&fx.dir.path().join("store2"))
        .await
        .unwrap();
    let vfs = Vfs::new(vfs_layer::registry(), store.clone());
    let mut events = vfs.subscribe();
    vfs.boot(&MountsConfig::load(&toml_path).unwrap())
        .await
        .unwrap();
    let paths: Vec<String> = vfs
        .list_mounts()
        .iter()
        .map(|m| m.path.to_string())
        .collect();
    assert_eq!(paths, ["/", "/shared"]);
    assert!(vfs.list_mounts()[1].read_only);
    assert_eq!(
        vfs.read_file(&VfsPath::new("/shared/readme").unwrap())
            .await
            .unwrap(),
        "shared"
    );
    assert_eq!(drain(&mut events).len(), 2);

    // JSON; the third mount fails, so the first two are taken down again.
    let json_path = fx.dir.path().join("mounts.json");
    std::fs::write(
        &json_path,
        json!({"mounts": [
            {"path": "/", "driver": {"id": "memory"}},
            {"path": "/a", "driver": {"id": "memory"}},
            {"path": "/b", "driver": {"id": "no_such_driver"}},
        ]})
        .to_string(),
    )
    .unwrap();
    let vfs = Arc::new(Vfs::new(vfs_layer::registry(), store));
    let err = vfs
        .boot(&MountsConfig::load(&json_path).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.code, "EINVAL");
    assert!(err.message.starts_with("EINVAL: mount #3 (/b): "), "{err}");
    assert_eq!(err.to_string(), err.message);
    assert!(vfs.list_mounts().is_empty(), "{:?}", vfs.list_mounts());

    let yaml = fx.dir.path().join("mounts.yaml");
    std::fs::write(&yaml, "mounts: []").unwrap();
    assert_eq!(MountsConfig::load(&yaml).unwrap_err().code, "EINVAL");
    assert_eq!(
        MountsConfig::from_toml_str("[[mounts]]\npath = 1")
            .unwrap_err()
            .code,
        "EINVAL"
    );
    assert_eq!(
        MountsConfig::from_json_str(r#"{"mounts": [], "extra": 1}"#)
            .unwrap_err()
            .code,
        "EINVAL"
    );
    assert_eq!(
        MountsConfig::load(&fx.dir.path().join("absent.toml"))
            .unwrap_err()
            .code,
        "ENOENT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_is_spawnable_and_concurrent() {
    let fx = Arc::new(Fixture::new().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let fx = fx.clone();
        tasks.push(tokio::spawn(async move {
            let path = format!("/f{i}");
            let action = Action::WriteFile {
                path: path.clone(),
                data: format!("{i}").as_str().into(),
            };
            fx.vfs.dispatch(action).await.unwrap();
            if i % 4 == 0 {
                let action = Action::SnapshotRootFilesystem {
                    path: None,
                    tag: None,
                    normalize: false,
                };
                fx.vfs.dispatch(action).await.unwrap();
            }
            fx.vfs
                .read_file(&VfsPath::new(&path).unwrap())
                .await
                .unwrap()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), format!("{i}"));
    }
}

#[tokio::test]
async fn driver_failures_become_driver_error_events() {
    use vfs_layer::core::conformance::Forward;
    use vfs_layer::core::{ErrorKind, FileSystem, VfsError};

    let dir = tempfile::tempdir().unwrap();
    let registry = vfs_layer::registry();
    registry
        .register_fn("faulty", |_config: serde_json::Value| {
            let inner: Arc<dyn FileSystem> = Arc::new(vfs_layer::drivers::memory::MemoryFs::new());
            let fs = Forward::new(inner, "faulty")
                .before_open(|path| {
                    if path.as_str() == "/broken" {
                        Err(VfsError::new(ErrorKind::Io, "open").with_path(path.as_str()))
                    } else {
                        Ok(())
                    }
                })
                .on_shutdown(|| Err(VfsError::new(ErrorKind::Io, "shutdown")));
            Ok(Arc::new(fs) as Arc<dyn FileSystem>)
        })
        .unwrap();
    let repository = vfs_layer::snapshot::Repository::open_local(dir.path())
        .await
        .unwrap();
    let vfs = Vfs::new(registry, repository);
    let memory = DriverDescriptor::new("memory", json!({}));
    vfs.mount_fs(&VfsPath::root(), &memory, MountOptions::default())
        .await
        .unwrap();
    let faulty = DriverDescriptor::new("faulty", json!({}));
    vfs.mount_fs(
        &VfsPath::new("/f").unwrap(),
        &faulty,
        MountOptions::default(),
    )
    .await
    .unwrap();
    let mut events = vfs.subscribe();

    vfs.write_file(&VfsPath::new("/f/fine").unwrap(), "ok".into())
        .await
        .unwrap();
    let action =
        Action::from_rpc("writeFile", Some(json!({"path": "/f/broken", "data": "x"}))).unwrap();
    let err = vfs.dispatch(action).await.unwrap_err();
    assert_eq!(err.code, "EIO");
    let unmounted = vfs
        .unmount_fs(&VfsPath::new("/f").unwrap(), false)
        .await
        .unwrap();
    assert_eq!(unmounted.kind, "faulty");

    let seen: Vec<Value> = drain(&mut events)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0]["type"], "driverError");
    assert_eq!(seen[0]["operation"], "writeFile");
    assert_eq!(seen[0]["kind"], "faulty");
    assert_eq!(seen[0]["path"], "/f/broken");
    assert_eq!(seen[1]["type"], "driverError");
    assert_eq!(seen[1]["operation"], "unmountFs");
    assert_eq!(seen[1]["code"], "EIO");
    assert_eq!(seen[2]["type"], "unmounted");
    // The unmount stood despite the failed shutdown.
    assert_eq!(vfs.list_mounts().len(), 1);
}

#[test]
fn actions_round_trip_through_json_with_agentos_names() {
    let actions = [
        json!({"method": "mountFs", "params": {"path": "/w", "driver": {"id": "memory", "config": {"a": 1}}, "options": {"readOnly": true}}}),
        json!({"method": "unmountFs", "params": {"path": "/w", "lazy": true}}),
        json!({"method": "listMounts"}),
        json!({"method": "snapshotRootFilesystem", "params": {"path": "/", "tag": "t", "normalize": true}}),
        json!({"method": "restoreSnapshot", "params": {"snapshot": "t", "path": "/r"}}),
        json!({"method": "diffSnapshots", "params": {"from": "a", "to": "b", "path": null}}),
        json!({"method": "exportSnapshot", "params": {"snapshot": "t", "format": "tar.zst", "hostPath": "/tmp/x", "encoding": "binary"}}),
        json!({"method": "importSnapshot", "params": {"format": "tar", "data": {"base64": "AA=="}, "hostPath": null, "tag": null}}),
        json!({"method": "listSnapshots"}),
        json!({"method": "readFile", "params": {"path": "/a", "encoding": "utf8"}}),
        json!({"method": "writeFile", "params": {"path": "/a", "data": "text"}}),
        json!({"method": "readDirEntries", "params": {"path": "/"}}),
        json!({"method": "stat", "params": {"path": "/a", "noFollow": true}}),
        json!({"method": "mkdir", "params": {"path": "/d", "recursive": true, "mode": 448}}),
        json!({"method": "remove", "params": {"path": "/d", "recursive": false}}),
        json!({"method": "rename", "params": {"from": "/a", "to": "/b"}}),
    ];
    let mut methods = Vec::new();
    for value in actions {
        let action: Action =
            serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"));
        let again: Action = serde_json::from_value(serde_json::to_value(&action).unwrap()).unwrap();
        assert_eq!(again, action);
        assert_eq!(value["method"], action.method());
        methods.push(action.method());
    }
    assert_eq!(methods, vfs_layer::actions::ACTION_NAMES);
}

/// A file too big to answer whole is refused by its size, before any of it is read into
/// memory (a sparse host file: nothing on disk either).
#[tokio::test]
async fn read_file_refuses_a_file_over_the_limit_before_reading_it() {
    let fx = Fixture::new().await;
    let host = fx.host_dir("big");
    let file = std::fs::File::create(host.join("sparse")).unwrap();
    file.set_len(vfs_layer::actions::READ_FILE_MAX + 1).unwrap();
    fx.ok(
        "mountFs",
        json!({"path": "/h", "driver": {"id": "host_dir", "config": {"hostPath": host}}}),
    )
    .await;
    let err = fx.err("readFile", json!({"path": "/h/sparse"})).await;
    assert_eq!(
        (err.code.as_str(), err.path.as_deref()),
        ("EFBIG", Some("/h/sparse"))
    );
    file.set_len(5).unwrap();
    let read = fx.ok("readFile", json!({"path": "/h/sparse"})).await;
    assert_eq!(read["size"], 5);
}

/// A mounts config takes agentOS's descriptor shape too: `plugin` and a top-level
/// `readOnly`, which mounts read-only as `options.readOnly` does.
#[tokio::test]
async fn a_mounts_config_takes_agentos_top_level_read_only() {
    let fx = Fixture::new().await;
    let config = vfs_layer::actions::MountsConfig::from_json_str(
        r#"{"mounts": [{"path": "/ro", "plugin": {"id": "memory", "config": {}}, "readOnly": true}]}"#,
    )
    .unwrap();
    fx.vfs.boot(&config).await.unwrap();
    let err = fx
        .err("writeFile", json!({"path": "/ro/x", "data": "no"}))
        .await;
    assert_eq!(err.code, "EROFS");
}
