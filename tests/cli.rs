//! The `vfs` command line end to end: the real binary on temporary directories, a local
//! store and an S3 store on moto; what scripts rely on (exit codes, one JSON document,
//! one-line errors) and that bad input changes nothing.

#[path = "common/moto.rs"]
mod moto;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary with a clean environment: no store or S3 settings leak in from the caller.
fn vfs_command(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vfs"));
    command.current_dir(cwd).env_remove("VFS_STORE");
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command
}

fn vfs(cwd: &Path, args: &[&str]) -> Output {
    vfs_command(cwd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vfs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(cwd: &Path, args: &[&str]) -> String {
    let out = vfs(cwd, args);
    assert!(
        out.status.success(),
        "vfs {args:?} failed ({:?}): {}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs a `--json` command that must succeed; stdout must be exactly one JSON document.
fn ok_json(cwd: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let stdout = ok(cwd, &all);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!("vfs {all:?} printed something other than one JSON document ({err}): {stdout}")
    })
}

/// Runs a command that must fail with `code`, printing one `vfs: ...` line on stderr.
fn fails(cwd: &Path, args: &[&str], code: i32) -> String {
    let out = vfs(cwd, args);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "vfs {args:?}: stdout {} stderr {stderr}",
        text(&out.stdout)
    );
    assert!(
        stderr.starts_with("vfs: ") && stderr.ends_with('\n') && stderr.lines().count() == 1,
        "vfs {args:?}: the error is not one line: {stderr:?}"
    );
    stderr
}

/// A tree with what a snapshot must keep: nested dirs, an empty dir, modes, an empty
/// file, a file over several chunks, a symlink, a hard link.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("src/nested/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("README.md"), "# tree\n").unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(root.join("src/nested/deeper/empty.txt"), "").unwrap();
    let script = root.join("src/run.sh");
    std::fs::write(&script, "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = root.join("src/secret");
    std::fs::write(&secret, "s3cr3t\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // 3 MiB of seeded noise: several content-defined chunks.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let big: Vec<u8> = (0..3 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    symlink("src/main.rs", root.join("link")).unwrap();
    std::fs::hard_link(root.join("README.md"), root.join("src/README.link")).unwrap();
}

/// Every file under `root` with its bytes (directories by a marker), to compare trees
/// and to see that nothing changed.
fn contents(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.insert(relative, b"<dir>".to_vec());
                pending.push(path);
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(
                    relative,
                    format!("<link {}>", target.display()).into_bytes(),
                );
            } else {
                out.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

fn snapshot_id(json: &Value) -> String {
    let id = json["snapshotId"]
        .as_str()
        .expect("a snapshotId")
        .to_owned();
    assert_eq!(id.len(), 64, "{json}");
    id
}

#[test]
fn snapshot_restore_then_diff_shows_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    make_tree(&dir.join("src-tree"));

    let taken = ok_json(dir, &["snapshot", "src-tree", "--tag", "first"]);
    let id = snapshot_id(&taken);
    assert_eq!(taken["tag"], "first");
    assert_eq!(taken["stats"]["files"], 7, "{taken}");
    assert!(taken["stats"]["bytesNew"].as_u64().unwrap() > 0);

    let restored = ok_json(dir, &["restore", "first", "restored"]);
    assert_eq!(restored["snapshotId"], id.as_str());
    assert_eq!(restored["hardlinks"], 1, "{restored}");
    assert_eq!(
        contents(&dir.join("src-tree")),
        contents(&dir.join("restored"))
    );
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("restored/src/secret"), 0o600);
    assert_eq!(mode("restored/src/run.sh"), 0o755);

    // Both orders, by id, by tag, by prefix: nothing differs.
    for (a, b) in [
        (id.as_str(), "./restored"),
        ("./restored", "first"),
        (&id[..10], "./src-tree"),
    ] {
        let diff = ok_json(dir, &["diff", a, b]);
        assert_eq!(
            diff["changes"],
            serde_json::json!([]),
            "diff {a} {b}: {diff}"
        );
    }
    assert_eq!(
        ok(dir, &["diff", "first", "./restored"]).trim(),
        "no differences"
    );

    // A change shows, and which way round it is follows the arguments.
    std::fs::write(
        dir.join("restored/src/main.rs"),
        "fn main() { changed() }\n",
    )
    .unwrap();
    std::fs::remove_file(dir.join("restored/src/secret")).unwrap();
    std::fs::write(dir.join("restored/new.txt"), "new\n").unwrap();
    let diff = ok_json(dir, &["diff", "first", "./restored"]);
    let changes: Vec<(String, String)> = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["path"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("/new.txt", "added"),
        ("/src/main.rs", "modified"),
        ("/src/secret", "removed"),
    ] {
        assert!(
            changes.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {changes:?}"
        );
    }
    let reversed = ok(dir, &["diff", "./restored", "first"]);
    assert!(reversed.contains("- /new.txt"), "{reversed}");
    assert!(reversed.contains("+ /src/secret"), "{reversed}");
    assert!(reversed.contains("M /src/main.rs"), "{reversed}");

    // Two snapshots: the second stores only the changed file and the trees above it.
    let second = ok_json(dir, &["snapshot", "restored", "--tag", "second"]);
    assert_eq!(second["stats"]["chunksNew"], 2, "{second}");
    let listed = ok_json(dir, &["snapshots"]);
    let rows = listed["snapshots"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert_eq!(rows[0]["tags"], serde_json::json!(["first"]));
    let diff = ok_json(dir, &["diff", "first", "second"]);
    assert_eq!(
        diff["changes"].as_array().unwrap().len(),
        changes.len(),
        "{diff}"
    );

    let verified = ok_json(dir, &["verify", "second"]);
    assert_eq!(verified["ok"], true, "{verified}");
    assert!(verified["chunks"].as_u64().unwrap() >= 4, "{verified}");
}

#[test]
fn export_then_import_gives_the_same_id() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    make_tree(&dir.join("tree"));
    let id = snapshot_id(&ok_json(dir, &["snapshot", "tree", "--normalize"]));
    for archive in ["out.tar", "out.tar.zst", "out.tzst"] {
        let exported = ok_json(dir, &["export", &id, archive]);
        let size = std::fs::metadata(dir.join(archive)).unwrap().len();
        assert_eq!(exported["size"], size, "{exported}");
        let imported = ok_json(dir, &["import", archive]);
        assert_eq!(snapshot_id(&imported), id, "{archive}");
        assert_eq!(imported["stats"]["bytesNew"], 0, "{archive}: {imported}");
    }
    // The tar is a real tar: the system's tar lists the files.
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(dir.join("out.tar"))
        .output()
        .unwrap();
    assert!(
        text(&listing.stdout).contains("src/main.rs"),
        "{}",
        text(&listing.stdout)
    );

    // Into another store, the id is the same: it names the content, not the store.
    let other = ok_json(
        dir,
        &[
            "import",
            "out.tar.zst",
            "--store",
            "other-store",
            "--tag",
            "again",
        ],
    );
    assert_eq!(snapshot_id(&other), id);
    assert!(dir.join("other-store/refs/again").is_file());

    // agentOS's JSON has no hard links or times: an export of it is a different tree,
    // but it round-trips to itself.
    ok(dir, &["export", &id, "out.json"]);
    let from_json = snapshot_id(&ok_json(dir, &["import", "out.json"]));
    ok(dir, &["export", &from_json, "again.json"]);
    assert_eq!(
        snapshot_id(&ok_json(dir, &["import", "again.json"])),
        from_json
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(dir.join("out.json")).unwrap()).unwrap();
    assert_eq!(doc["kind"], "snapshot-export");
}

#[test]
fn json_output_is_one_document_for_every_command() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    make_tree(&dir.join("tree"));
    let id = snapshot_id(&ok_json(dir, &["snapshot", "tree"]));
    let docs = [
        ok_json(dir, &["snapshots"]),
        ok_json(dir, &["verify", &id]),
        ok_json(dir, &["export", &id, "t.tar"]),
        ok_json(dir, &["import", "t.tar"]),
        ok_json(dir, &["diff", &id, "./tree"]),
        ok_json(dir, &["restore", &id, "r"]),
        ok_json(dir, &["gc"]),
    ];
    assert_eq!(docs[0]["snapshots"][0]["snapshotId"], id.as_str());
    assert_eq!(docs[0]["snapshots"][0]["files"], 7);
    assert_eq!(docs[1]["problems"], serde_json::json!([]));
    assert_eq!(docs[2]["format"], "tar");
    assert_eq!(docs[4]["changes"], serde_json::json!([]));
    assert_eq!(
        docs[5]["files"], 6,
        "hard links are not counted as files: {}",
        docs[5]
    );
    // Everything is younger than an hour: gc keeps it all.
    assert_eq!(docs[6]["snapshotsRemoved"], serde_json::json!([]));

    // An error under --json is a document too, and still one line on stderr.
    let out = vfs(dir, &["verify", "no-such-tag", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["code"], "ENOENT");
    assert_eq!(doc["error"]["path"], "no-such-tag");
    assert_eq!(text(&out.stderr).lines().count(), 1);
    // The store's location on the host is not part of the error.
    let store = dir.join(".vfs-store");
    let shown = store.to_string_lossy();
    assert!(
        !text(&out.stderr).contains(shown.as_ref()) && !doc.to_string().contains(shown.as_ref()),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn gc_removes_untagged_snapshots_and_their_data() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir_all(dir.join("a")).unwrap();
    std::fs::write(dir.join("a/file"), vec![7u8; 300 << 10]).unwrap();
    let kept = snapshot_id(&ok_json(dir, &["snapshot", "a", "--tag", "keep"]));
    std::fs::write(dir.join("a/file"), vec![9u8; 300 << 10]).unwrap();
    let dropped = snapshot_id(&ok_json(dir, &["snapshot", "a"]));
    std::fs::write(dir.join("a/file"), vec![5u8; 300 << 10]).unwrap();
    let named = snapshot_id(&ok_json(dir, &["snapshot", "a"]));

    let gc = ok_json(dir, &["gc", "--keep-recent", "0", "--keep", &named[..12]]);
    assert_eq!(gc["snapshotsRemoved"], serde_json::json!([dropped]), "{gc}");
    assert!(gc["bytesFreed"].as_u64().unwrap() > 0, "{gc}");
    let left: Vec<String> = ok_json(dir, &["snapshots"])["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["snapshotId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left, vec![kept.clone(), named.clone()]);
    for id in [&kept, &named] {
        assert_eq!(ok_json(dir, &["verify", id])["ok"], true);
    }
    fails(dir, &["verify", &dropped], 1);

    // A writer that died mid-snapshot leaves its lock (FORMAT.md): gc waits as long as
    // --wait says, then gives up with EBUSY and deletes nothing.
    std::fs::write(dir.join(".vfs-store/locks/writer-killed"), "{}").unwrap();
    let started = Instant::now();
    let line = fails(dir, &["gc", "--keep-recent", "0", "--wait", "1s"], 1);
    assert!(line.starts_with("vfs: EBUSY: "), "{line}");
    assert!(started.elapsed() < Duration::from_secs(30));
    std::fs::remove_file(dir.join(".vfs-store/locks/writer-killed")).unwrap();
    for id in [&kept, &named] {
        assert_eq!(ok_json(dir, &["verify", id])["ok"], true);
    }
}

#[test]
fn bad_input_fails_on_one_line_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    make_tree(&dir.join("tree"));
    ok(dir, &["snapshot", "tree", "--tag", "base"]);
    std::fs::create_dir(dir.join("full")).unwrap();
    std::fs::write(dir.join("full/occupied"), "x").unwrap();
    std::fs::write(dir.join("garbage.tar"), vec![0x5a; 4096]).unwrap();
    std::fs::write(
        dir.join("bad.toml"),
        "[[mounts]]\npath = \"/\"\ndriver = { id = \"nope\" }\n",
    )
    .unwrap();
    let before = contents(dir);

    let usage: &[&[&str]] = &[
        &["frobnicate"],
        &["snapshot"],
        &["restore", "base"],
        &["gc", "--keep-recent", "1w"],
        &["serve", "--stdio", "--socket", "x.sock"],
        &["snapshots", "--no-such-flag"],
    ];
    for args in usage {
        let line = fails(dir, args, 2);
        assert!(line.starts_with("vfs: usage: "), "{args:?}: {line}");
    }

    let operations: &[(&[&str], &str)] = &[
        (&["restore", "no-such-tag", "fresh"], "ENOENT"),
        (&["restore", "base", "full"], "ENOTEMPTY"),
        (&["restore", "base", "garbage.tar"], "EEXIST"),
        (
            &[
                "restore",
                "0000000000000000000000000000000000000000000000000000000000000000",
                "fresh",
            ],
            "ENOENT",
        ),
        (&["snapshot", "missing-dir"], "ENOENT"),
        (&["snapshot", "garbage.tar"], "ENOTDIR"),
        (&["snapshot", "tree", "--tag", ".hidden"], "EINVAL"),
        (&["snapshot", "tree", "--tag", "a/b"], "EINVAL"),
        (&["snapshot", "bad.toml"], "EINVAL"),
        (&["snapshot", "missing.toml"], "ENOENT"),
        (&["snapshot", "."], "EINVAL"),
        (&["diff", "./tree", "./full"], "EINVAL"),
        (&["diff", "base", "no-such-tag"], "ENOENT"),
        (&["export", "base", "out.zip"], "EINVAL"),
        (&["export", "no-such-tag", "out.tar"], "ENOENT"),
        (&["export", "base", "no-such-dir/out.tar"], "ENOENT"),
        (&["import", "missing.tar"], "ENOENT"),
        (&["import", "tree/README.md"], "EINVAL"),
        (&["import", "garbage.tar"], "EINVAL"),
        (&["verify", "abc"], "ENOENT"),
        (&["gc", "--keep", "no-such-tag"], "ENOENT"),
        (&["snapshots", "--store", "no-store-here"], "ENOENT"),
        (&["snapshots", "--store", "gs://bucket/x"], "EINVAL"),
        (&["snapshots", "--store", "s3://Bad_Bucket"], "EINVAL"),
        (&["snapshots", "--store", "file://relative"], "EINVAL"),
        (&["snapshots", "--store", ""], "EINVAL"),
        // Commands that would create a store leave none behind when they fail.
        (
            &["snapshot", "missing-dir", "--store", "new-store"],
            "ENOENT",
        ),
        (
            &[
                "snapshot",
                "tree",
                "--tag",
                ".bad",
                "--store",
                "new/nested/store",
            ],
            "EINVAL",
        ),
        (&["snapshot", "bad.toml", "--store", "new-store"], "EINVAL"),
        (&["snapshot", ".", "--store", "new-store"], "EINVAL"),
        (&["snapshot", "tree", "--store", "tree/inside"], "EINVAL"),
        (&["import", "garbage.tar", "--store", "new-store"], "EINVAL"),
        (&["import", "missing.tar", "--store", "new-store"], "ENOENT"),
    ];
    for (args, code) in operations {
        let line = fails(dir, args, 1);
        assert!(
            line.starts_with(&format!("vfs: {code}: ")),
            "{args:?}: {line}"
        );
    }
    // The errors name what they are about.
    assert!(fails(dir, &["snapshot", "missing-dir"], 1).contains("'missing-dir'"));
    assert!(fails(dir, &["snapshot", "bad.toml"], 1).contains("nope"));

    assert_eq!(before, contents(dir), "a failed command changed files");
    let listed = ok_json(dir, &["snapshots"]);
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn a_mounts_config_is_booted_and_snapshotted_as_one_tree() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    make_tree(&dir.join("host"));
    let config = format!(
        "[[mounts]]\npath = \"/\"\ndriver = {{ id = \"memory\" }}\n\n\
         [[mounts]]\npath = \"/data\"\ndriver = {{ id = \"host_dir\", config = {{ hostPath = \"{}\", readOnly = true }} }}\n\
         options = {{ readOnly = true }}\n",
        dir.join("host").display()
    );
    std::fs::write(dir.join("mounts.toml"), config).unwrap();
    let taken = ok_json(dir, &["snapshot", "mounts.toml", "--normalize"]);
    let id = snapshot_id(&taken);
    // The memory root, its /data mount point, and the host tree beneath it.
    assert_eq!(taken["stats"]["files"], 7, "{taken}");
    let diff = ok_json(dir, &["diff", &id, "mounts.toml", "--normalize"]);
    assert_eq!(diff["changes"], serde_json::json!([]), "{diff}");

    ok(dir, &["restore", &id, "restored"]);
    assert_eq!(
        contents(&dir.join("host")),
        contents(&dir.join("restored/data"))
    );

    // The same mounts given as JSON boot the same tree.
    let json = serde_json::json!({"mounts": [
        {"path": "/", "driver": {"id": "memory"}},
        {"path": "/data", "driver": {"id": "host_dir", "config": {"hostPath": dir.join("host"), "readOnly": true}},
         "options": {"readOnly": true}},
    ]});
    std::fs::write(dir.join("mounts.json"), json.to_string()).unwrap();
    let again = ok_json(dir, &["snapshot", "mounts.json", "--normalize"]);
    assert_eq!(snapshot_id(&again), id);
}

#[test]
fn demo_tells_the_story_and_a_rerun_dedups() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let first = ok(dir, &["demo"]);
    for step in [
        "1. boot",
        "2. after boot",
        "3. write",
        "4. snapshot",
        "5. change",
        "6. diff",
        "7. export",
        "8. unmount",
    ] {
        assert!(first.contains(step), "the account lacks {step:?}:\n{first}");
    }
    assert!(first.contains("store ./.vfs-store (new)"), "{first}");
    assert!(
        first.contains("modified         /app/src/lib.rs"),
        "{first}"
    );
    assert!(first.contains("mounts left: / (memory)"), "{first}");
    assert!(!first.contains("nothing new"), "{first}");
    assert!(dir.join(".vfs-demo/root.tar.zst").is_file());
    assert!(dir.join(".vfs-demo/host/NOTES.md").is_file());

    let second = ok_json(dir, &["demo"]);
    assert_eq!(second["firstWasStoredBefore"], true, "{second}");
    assert_eq!(second["first"]["stats"]["bytesNew"], 0, "{second}");
    assert_eq!(second["second"]["stats"]["bytesNew"], 0, "{second}");
    // The second snapshot of a fresh store stores little: the changed file's chunk and
    // the trees above it.
    let fresh = tempfile::tempdir().unwrap();
    let third = ok_json(fresh.path(), &["demo"]);
    let (full, delta) = (
        third["first"]["stats"]["bytesNew"].as_u64().unwrap(),
        third["second"]["stats"]["bytesNew"].as_u64().unwrap(),
    );
    assert!(
        delta > 0 && delta * 100 < full,
        "first stored {full}, second {delta}"
    );
    assert_eq!(third["second"]["stats"]["chunksNew"], 1, "{third}");

    // What the demo leaves is usable from the command line.
    let diff = ok_json(dir, &["diff", "demo-first", "demo-second"]);
    assert_eq!(
        diff["changes"],
        serde_json::json!([{"path": "/app/src/lib.rs", "kind": "modified"}])
    );
    let imported = ok_json(dir, &["import", ".vfs-demo/root.tar.zst"]);
    assert_eq!(imported["snapshotId"], second["second"]["snapshotId"]);
}

/// Reads one framed message (4-byte big-endian length, then JSON) from the server.
fn read_frame(stream: &mut impl Read) -> Value {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("a frame header");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("a frame body");
    serde_json::from_slice(&body).expect("a JSON frame")
}

fn write_frame(stream: &mut impl Write, json: &Value) {
    let body = json.to_string();
    stream
        .write_all(&(body.len() as u32).to_be_bytes())
        .unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    stream.flush().unwrap();
}

/// Sends `listMounts` and returns its result, skipping event notifications.
fn list_mounts(reader: &mut impl Read, writer: &mut impl Write) -> Value {
    write_frame(
        writer,
        &serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "listMounts"}),
    );
    loop {
        let message = read_frame(reader);
        if message["id"] == 7 {
            return message["result"].clone();
        }
    }
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vfs serve did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_on_stdio_boots_the_mounts_and_ends_with_its_input() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::create_dir(dir.join("host")).unwrap();
    let config = serde_json::json!({"mounts": [
        {"path": "/", "driver": {"id": "memory"}},
        {"path": "/work", "driver": {"id": "host_dir", "config": {"hostPath": dir.join("host")}}},
    ]});
    std::fs::write(dir.join("mounts.json"), config.to_string()).unwrap();
    let mut child = vfs_command(dir)
        .args(["serve", "--stdio", "--mounts", "mounts.json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mounts = list_mounts(&mut stdout, &mut stdin);
    let paths: Vec<&str> = mounts
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/", "/work"], "{mounts}");
    assert_eq!(mounts[1]["kind"], "host_dir");
    assert!(
        mounts[1].get("config").is_none(),
        "listMounts never shows config"
    );
    drop(stdin);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_on_a_socket_stops_cleanly_on_sigterm() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let socket = dir.join("vfs.sock");
    let mut child = vfs_command(dir)
        .args(["serve", "--socket"])
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        match std::os::unix::net::UnixStream::connect(&socket) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => panic!("the socket never accepted: {err}"),
        }
    };
    let mut writer = stream.try_clone().unwrap();
    // Without --mounts, the runtime starts with a memory root.
    let mounts = list_mounts(&mut stream, &mut writer);
    assert_eq!(mounts[0]["path"], "/");
    assert_eq!(mounts[0]["kind"], "memory");

    // SAFETY: kill(2) on the child this test spawned.
    let sent = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(sent, 0);
    let status = wait_with_deadline(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket file outlived the server");
}

#[test]
fn an_s3_store_on_moto_works_like_a_local_one() {
    let moto = moto::moto();
    let bucket = moto.bucket();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    make_tree(&dir.join("tree"));
    let store = format!("s3://{bucket}/team/snapshots");
    let s3 = |args: &[&str]| -> Output {
        vfs_command(dir)
            .args(args)
            .env("VFS_STORE", &store)
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = s3(&all);
        assert!(out.status.success(), "{all:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };

    let id = snapshot_id(&json(&["snapshot", "tree", "--tag", "remote"]));
    // The objects are in the bucket, under the prefix.
    let listing = moto.get(&format!("/{bucket}?list-type=2&prefix=team/snapshots/"));
    for key in [
        "team/snapshots/config",
        "team/snapshots/refs/remote",
        "team/snapshots/snapshots/",
    ] {
        assert!(listing.contains(key), "{key} not in the bucket: {listing}");
    }
    assert_eq!(
        json(&["snapshots"])["snapshots"][0]["snapshotId"],
        id.as_str()
    );
    assert_eq!(json(&["verify", "remote"])["ok"], true);
    json(&["restore", "remote", "restored"]);
    assert_eq!(contents(&dir.join("tree")), contents(&dir.join("restored")));
    assert_eq!(
        json(&["diff", "remote", "./restored"])["changes"],
        serde_json::json!([])
    );
    json(&["export", "remote", "remote.tar.zst"]);
    // The same archive into a local store gives the same id.
    assert_eq!(
        snapshot_id(&ok_json(
            dir,
            &["import", "remote.tar.zst", "--store", "local"]
        )),
        id
    );

    // Reading a prefix that holds no repository is ENOENT and creates nothing there.
    let out = vfs_command(dir)
        .args([
            "snapshots",
            "--store",
            &format!("s3://{bucket}/nothing-here"),
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("vfs: ENOENT: "),
        "{}",
        text(&out.stderr)
    );
    let listing = moto.get(&format!("/{bucket}?list-type=2&prefix=nothing-here/"));
    assert!(
        !listing.contains("<Key>"),
        "a read created objects: {listing}"
    );

    // A bucket that does not exist is an error on one line, not a hang.
    let started = Instant::now();
    let out = vfs_command(dir)
        .args(["snapshots", "--store", "s3://no-such-bucket-here/x"])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("s3://no-such-bucket-here/x"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

/// A tar header for a regular file of `size` bytes (ustar, checksum filled in).
fn tar_header(name: &str, size: u64) -> [u8; 512] {
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[100..108].copy_from_slice(b"0000644\0");
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    header[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    header[136..148].copy_from_slice(b"00000000000\0");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    header
}

fn writer_locks(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join("locks"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("writer-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn ctrl_c_stops_an_import_cleanly_and_releases_its_lock() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // A store that exists before (a failed command removes a store it created itself).
    std::fs::create_dir(dir.join("seed")).unwrap();
    let seed = snapshot_id(&ok_json(dir, &["snapshot", "seed"]));
    // The archive comes through a FIFO, so the test decides when the import is mid-way.
    let fifo = dir.join("incoming.tar");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut child = vfs_command(dir)
        .args(["import", "incoming.tar"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut archive = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    archive.write_all(&tar_header("big.bin", 4 << 20)).unwrap();
    archive.write_all(&vec![1u8; 64 << 10]).unwrap();

    // The import holds its writer lock while it waits for the rest of the archive.
    let store = dir.join(".vfs-store");
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer_locks(&store).is_empty() {
        assert!(Instant::now() < deadline, "the import never took its lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the child this test spawned.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    // More bytes wake the blocked read, which then sees the signal. The import may stop
    // reading (and close the pipe) before all of them are taken.
    let _ = archive.write_all(&vec![2u8; 64 << 10]);
    let status = wait_with_deadline(&mut child, Duration::from_secs(30));
    drop(archive);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by a signal"), "{stderr}");
    assert_eq!(
        writer_locks(&store),
        Vec::<String>::new(),
        "the lock outlived the import"
    );
    let listed = ok_json(dir, &["snapshots"]);
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["snapshots"][0]["snapshotId"], seed.as_str());
    // gc runs at once: nothing is left for it to wait on.
    ok_json(dir, &["gc", "--wait", "0"]);
}
