//! Open handles: life after unlink and rename, coherence, and concurrent use.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::{assert_errno, Fixture, Must};
use crate::{ErrorKind, FileHandle, OpenOptions};

/// A handle opened before the file is unlinked still reads its content.
pub async fn handle_reads_after_unlink(fx: Fixture) {
    let caps = fx.caps();
    fx.write("f", "still here").await;
    let handle = fx.open("f", OpenOptions::read_only()).await;
    let path = fx.path("f");
    fx.fs.remove_file(&path).await.must("remove_file f");
    assert!(!fx.is_there("f").await);
    let read = handle.read_at(0, 100).await;
    if !caps.open_unlinked {
        assert_errno(
            read,
            ErrorKind::Unsupported,
            "read_at after unlink on a driver without open_unlinked",
        );
        return;
    }
    assert_eq!(read.must("read_at after unlink"), "still here");
    assert_eq!(handle.read_at(6, 100).await.must("read_at 6"), "here");
    let meta = handle.stat().await.must("handle stat after unlink");
    assert_eq!(meta.size, 10);
    assert_eq!(meta.nlink, 0, "an unlinked file has no links");
}

/// A handle opened before the file is unlinked can still write and read back; the name
/// does not come back.
pub async fn handle_writes_after_unlink(fx: Fixture) {
    let caps = fx.caps();
    fx.write("f", "abc").await;
    let handle = fx
        .open("f", OpenOptions::new().read(true).write(true))
        .await;
    let path = fx.path("f");
    fx.fs.remove_file(&path).await.must("remove_file f");
    let write = handle.write_at(3, Bytes::from_static(b"def")).await;
    if !caps.open_unlinked {
        assert_errno(
            write,
            ErrorKind::Unsupported,
            "write_at after unlink on a driver without open_unlinked",
        );
        return;
    }
    assert_eq!(write.must("write_at after unlink"), 3);
    handle.set_len(5).await.must("set_len after unlink");
    assert_eq!(handle.read_at(0, 100).await.must("read_at"), "abcde");
    assert_eq!(handle.stat().await.must("handle stat").size, 5);
    handle.close().await.must("close after unlink");
    assert!(
        !fx.is_there("f").await,
        "writing does not resurrect the name"
    );
    assert!(fx.names("").await.is_empty());
    // A new file at the same name is a different file.
    fx.write("f", "new").await;
    assert_eq!(fx.read("f").await, "new");
}

/// When a rename replaces the name, a handle on the old file keeps reading the old
/// content while the name serves the new one.
pub async fn handle_reads_old_content_after_rename_replaces_the_name(fx: Fixture) {
    let caps = fx.caps();
    fx.write("f", "old content").await;
    fx.write("replacement", "new content").await;
    let handle = fx.open("f", OpenOptions::read_only()).await;
    let (from, to) = (fx.path("replacement"), fx.path("f"));
    fx.fs
        .rename(&from, &to)
        .await
        .must("rename replacement over f");
    assert_eq!(fx.read("f").await, "new content");
    let read = handle.read_at(0, 100).await;
    if !caps.open_unlinked {
        assert_errno(
            read,
            ErrorKind::Unsupported,
            "read_at of a replaced file on a driver without open_unlinked",
        );
        return;
    }
    assert_eq!(read.must("read_at of the replaced file"), "old content");
}

/// A handle follows its file across a rename: writes through it show at the new name.
pub async fn handle_follows_its_file_across_rename(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    fx.write("f", "abc").await;
    let handle = fx
        .open("f", OpenOptions::new().read(true).write(true))
        .await;
    let (from, to) = (fx.path("f"), fx.path("d/g"));
    fx.fs.rename(&from, &to).await.must("rename f d/g");
    handle
        .write_at(3, Bytes::from_static(b"def"))
        .await
        .must("write_at after rename");
    handle.close().await.must("close");
    assert_eq!(fx.read("d/g").await, "abcdef");
    assert!(!fx.is_there("f").await);
}

/// `FileHandle::stat` reflects changes made through the path and through the handle.
pub async fn handle_stat_tracks_changes(fx: Fixture) {
    let caps = fx.caps();
    fx.write("f", "abc").await;
    let handle = fx
        .open("f", OpenOptions::new().read(true).write(true))
        .await;
    let meta = handle.stat().await.must("handle stat");
    assert!(meta.is_file());
    assert_eq!(meta.size, 3);
    assert_eq!(meta.ino, fx.stat("f").await.ino);
    let path = fx.path("f");
    fx.fs
        .pwrite(&path, 3, Bytes::from_static(b"defg"))
        .await
        .must("pwrite at the end");
    assert_eq!(handle.stat().await.must("handle stat").size, 7);
    handle.set_len(2).await.must("set_len 2");
    assert_eq!(fx.stat("f").await.size, 2);
    assert_eq!(handle.stat().await.must("handle stat").size, 2);
    if caps.permissions {
        fx.fs
            .set_permissions(&path, 0o640)
            .await
            .must("set_permissions");
        assert_eq!(handle.stat().await.must("handle stat").mode, 0o640);
    }
    if caps.hard_links {
        let link = fx.path("link");
        fx.fs.hard_link(&path, &link).await.must("hard_link");
        assert_eq!(handle.stat().await.must("handle stat").nlink, 2);
    }
    handle.sync().await.must("sync");
}

/// Two handles on one file see each other's writes at once.
pub async fn handles_on_one_file_see_each_other(fx: Fixture) {
    let _ = fx.caps();
    fx.write("f", "").await;
    let rw = OpenOptions::new().read(true).write(true);
    let first = fx.open("f", rw).await;
    let second = fx.open("f", rw).await;
    first
        .write_at(0, Bytes::from_static(b"hello"))
        .await
        .must("first write");
    assert_eq!(second.read_at(0, 100).await.must("second read"), "hello");
    second
        .write_at(5, Bytes::from_static(b" world"))
        .await
        .must("second write");
    assert_eq!(
        first.read_at(0, 100).await.must("first read"),
        "hello world"
    );
    first.set_len(4).await.must("set_len");
    assert_eq!(second.read_at(0, 100).await.must("second read"), "hell");
    assert_eq!(fx.read("f").await, "hell");
}

const APPENDERS: usize = 8;
const APPENDS_EACH: usize = 100;
const RECORD: usize = 32;

/// One fixed-size record that names its writer and sequence number.
fn record(task: usize, seq: usize) -> Bytes {
    let mut line = format!("task {task:02} record {seq:04} ");
    while line.len() < RECORD - 1 {
        line.push('.');
    }
    line.push('\n');
    Bytes::from(line)
}

async fn append_records(handle: Arc<dyn FileHandle>, task: usize) {
    for seq in 0..APPENDS_EACH {
        let data = record(task, seq);
        let written = handle
            .write_at(0, data)
            .await
            .must(format_args!("append by task {task}, record {seq}"));
        assert_eq!(written, RECORD, "an append is written whole");
    }
}

/// 8 tasks each append 100 fixed-size records at once (half through one shared handle,
/// half through handles of their own): every record is there once, none is torn, each
/// task's records are in order, and the size is exact.
pub async fn concurrent_appenders_lose_no_record(fx: Fixture) {
    let caps = fx.caps();
    fx.write("log", "").await;
    let options = OpenOptions::new().append(true);
    let shared: Arc<dyn FileHandle> = Arc::from(fx.open("log", options).await);
    let mut handles = Vec::new();
    for task in 0..APPENDERS {
        let handle = if task % 2 == 0 {
            shared.clone()
        } else {
            Arc::from(fx.open("log", options).await)
        };
        if caps.atomic_append {
            handles.push(tokio::spawn(append_records(handle, task)));
        } else {
            // Without atomic appends only one appender at a time is promised.
            append_records(handle, task).await;
        }
    }
    for handle in handles {
        handle.await.expect("an appender task panicked");
    }
    let content = fx.read("log").await;
    assert_eq!(content.len(), APPENDERS * APPENDS_EACH * RECORD);
    let mut seen = HashSet::new();
    let mut next = [0usize; APPENDERS];
    for (index, chunk) in content.chunks(RECORD).enumerate() {
        let text = std::str::from_utf8(chunk)
            .unwrap_or_else(|_| panic!("record {index} is not text: {chunk:?}"));
        let mut words = text.split_whitespace();
        let (task, seq) = match (words.next(), words.next(), words.next(), words.next()) {
            (Some("task"), Some(task), Some("record"), Some(seq)) => (
                task.parse::<usize>().expect("task number"),
                seq.parse::<usize>().expect("record number"),
            ),
            _ => panic!("record {index} is torn: {text:?}"),
        };
        assert!(
            task < APPENDERS && seq < APPENDS_EACH,
            "record {index}: {text:?}"
        );
        assert_eq!(chunk, &record(task, seq)[..], "record {index} is torn");
        assert!(seen.insert((task, seq)), "record {text:?} appears twice");
        assert_eq!(seq, next[task], "task {task}'s records are out of order");
        next[task] += 1;
    }
    assert_eq!(seen.len(), APPENDERS * APPENDS_EACH);
}

/// Many tasks creating files in one directory at once: every file lands with its content.
pub async fn concurrent_creates_in_one_dir_all_land(fx: Fixture) {
    let _ = fx.caps();
    fx.mkdir("d").await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let fs = fx.fs.clone();
        let dir = fx.path("d");
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let path = dir.join(&format!("t{task}-f{i}")).expect("a valid name");
                fs.write_file(&path, Bytes::from(format!("{task}/{i}")))
                    .await
                    .must(format_args!("write_file {path}"));
            }
        }));
    }
    for task in tasks {
        task.await.expect("a creating task panicked");
    }
    let names = fx.names("d").await;
    assert_eq!(names.len(), 400);
    for task in 0..8 {
        for i in 0..50 {
            assert_eq!(
                fx.read(&format!("d/t{task}-f{i}")).await,
                format!("{task}/{i}")
            );
        }
    }
}

/// Many tasks racing to `create_new` one name: exactly one wins, the others get `EEXIST`.
pub async fn concurrent_create_new_has_one_winner(fx: Fixture) {
    let _ = fx.caps();
    let mut tasks = Vec::new();
    for task in 0..16u8 {
        let fs = fx.fs.clone();
        let path = fx.path("contested");
        tasks.push(tokio::spawn(async move {
            let options = OpenOptions::new().write(true).create_new(true);
            match fs.open(&path, options).await {
                Ok(handle) => {
                    handle
                        .write_at(0, Bytes::from(vec![b'a' + task]))
                        .await
                        .must("the winner writes");
                    handle.close().await.must("close");
                    Some(task)
                }
                Err(err) => {
                    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "loser got {err}");
                    None
                }
            }
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(winner) = task.await.expect("a racing task panicked") {
            winners.push(winner);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(fx.read("contested").await, vec![b'a' + winners[0]]);
}
