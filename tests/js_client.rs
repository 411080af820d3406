//! The JavaScript client (clients/js) against the real `vfs serve`: node runs
//! clients/js/test.mjs, which checks each step itself and prints a summary we check
//! again here. Skipped only when node is missing outside CI.

use std::process::Command;

use serde_json::Value;

#[test]
fn js_client_drives_the_server_over_stdio_and_the_socket() {
    let node_present = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !node_present {
        assert!(std::env::var_os("CI").is_none(), "node is required in CI");
        eprintln!("skipped: node is not installed");
        return;
    }
    let manifest = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("node")
        .arg(format!("{manifest}/clients/js/test.mjs"))
        .env("VFS_BIN", env!("CARGO_BIN_EXE_vfs"))
        .current_dir(manifest)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "node failed: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    let line = stdout.lines().last().expect("a summary line");
    let summary: Value = serde_json::from_str(line).expect("the summary is JSON");

    assert_eq!(
        summary["rootEntries"],
        serde_json::json!(["host:directory", "work:directory"])
    );
    assert_eq!(
        summary["missing"],
        serde_json::json!({"code": "ENOENT", "path": "/work/missing"})
    );
    assert_eq!(summary["blobBytes"], 300_000);
    let id = summary["snapshotId"].as_str().unwrap();
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    // notes.txt, seed.txt, blob.bin and twenty small files.
    assert_eq!(summary["snapshotFiles"], 23);
    assert_eq!(
        summary["mounts"],
        serde_json::json!([
            "/:memory:false",
            "/host:host_dir:false",
            "/work:memory:false"
        ])
    );
    assert_eq!(summary["mountsAfter"], serde_json::json!(["/"]));
    let events: Vec<&str> = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for kind in [
        "mounted",
        "unmounted",
        "snapshotProgress",
        "snapshotFinished",
    ] {
        assert!(events.contains(&kind), "no {kind} event in {events:?}");
    }
    assert_eq!(events.iter().filter(|e| **e == "mounted").count(), 2);
    assert_eq!(events.iter().filter(|e| **e == "unmounted").count(), 2);
    assert_eq!(summary["exitCode"], 0);
    assert_eq!(summary["socketSnapshots"], serde_json::json!(["from-js"]));
    assert_eq!(summary["socketServerExit"], 0);
    // A missing binary and a killed server reject the calls instead of crashing node.
    assert_eq!(summary["failureHandling"], "ok");
}
