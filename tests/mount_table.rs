//! The mount table's rules, one test per rule, over memory drivers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use vfs_core::{
    DirEntry, ErrorKind, FileKind, FileSystem, MountEvent, MountOptions, MountTable, OpenOptions,
    ReadOnlyFs, SetTime, UnmountOptions, VfsError, VfsPath, XattrMode,
};
use vfs_drivers::memory::MemoryFs;

use vfs_core::conformance::Forward;

fn p(path: &str) -> VfsPath {
    VfsPath::new(path).expect("valid test path")
}

fn memory() -> Arc<dyn FileSystem> {
    Arc::new(MemoryFs::new())
}

#[track_caller]
fn assert_errno<T>(result: vfs_core::Result<T>, kind: ErrorKind) {
    match result {
        Ok(_) => panic!("expected {}, got Ok", kind.code()),
        Err(err) => assert_eq!(err.kind(), kind, "expected {}, got {err}", kind.code()),
    }
}

/// A table with a memory root and the given memory mounts; returns the mounted drivers.
async fn table_with(
    mounts: &[&str],
) -> (MountTable, Arc<dyn FileSystem>, Vec<Arc<dyn FileSystem>>) {
    let table = MountTable::new();
    let root = memory();
    table
        .mount(&VfsPath::root(), root.clone(), MountOptions::default())
        .await
        .unwrap();
    let mut drivers = Vec::new();
    for path in mounts {
        let fs = memory();
        table
            .mount(&p(path), fs.clone(), MountOptions::default())
            .await
            .unwrap();
        drivers.push(fs);
    }
    (table, root, drivers)
}

fn names(entries: &[DirEntry]) -> Vec<String> {
    let mut names: Vec<String> = entries.iter().map(|entry| entry.name.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn driver_sees_paths_relative_to_its_mount_root() {
    let (table, root, drivers) = table_with(&["/mnt/data"]).await;
    table
        .write_file(&p("/mnt/data/x"), Bytes::from_static(b"inside"))
        .await
        .unwrap();
    assert_eq!(drivers[0].read_file(&p("/x")).await.unwrap(), "inside");
    assert_errno(root.stat(&p("/mnt/data/x")).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn longest_prefix_wins() {
    let (table, _root, drivers) = table_with(&["/a", "/a/b"]).await;
    table
        .write_file(&p("/a/b/c"), Bytes::from_static(b"deep"))
        .await
        .unwrap();
    table
        .write_file(&p("/a/bc"), Bytes::from_static(b"shallow"))
        .await
        .unwrap();
    assert_eq!(drivers[1].read_file(&p("/c")).await.unwrap(), "deep");
    assert_eq!(drivers[0].read_file(&p("/bc")).await.unwrap(), "shallow");
    assert_errno(drivers[0].stat(&p("/b/c")).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn missing_mount_point_is_created_in_the_parent() {
    let (_table, root, _drivers) = table_with(&["/a/b/c"]).await;
    assert!(root.stat(&p("/a/b/c")).await.unwrap().is_dir());
}

#[tokio::test]
async fn mount_point_over_a_file_is_enotdir() {
    let (table, _root, _drivers) = table_with(&[]).await;
    table.write_file(&p("/file"), Bytes::new()).await.unwrap();
    assert_errno(
        table
            .mount(&p("/file"), memory(), MountOptions::default())
            .await,
        ErrorKind::NotADirectory,
    );
    assert!(table
        .list()
        .iter()
        .all(|info| info.path.as_str() != "/file"));
}

#[tokio::test]
async fn mounting_the_same_path_twice_is_eexist() {
    let (table, _root, _drivers) = table_with(&["/m"]).await;
    assert_errno(
        table
            .mount(&p("/m"), memory(), MountOptions::default())
            .await,
        ErrorKind::AlreadyExists,
    );
    assert_errno(
        table
            .mount(&p("/m/"), memory(), MountOptions::default())
            .await,
        ErrorKind::AlreadyExists,
    );
}

#[tokio::test]
async fn mount_points_are_listed_in_their_parent_as_directories() {
    let (table, root, _drivers) = table_with(&["/m"]).await;
    // Replace the created mount point so the listing has to supply the kind itself.
    root.remove_dir(&p("/m")).await.unwrap();
    root.write_file(&p("/m"), Bytes::new()).await.unwrap();
    table.write_file(&p("/other"), Bytes::new()).await.unwrap();
    let entries = table.read_dir(&VfsPath::root()).await.unwrap();
    assert_eq!(names(&entries), ["m", "other"]);
    let m = entries.iter().find(|entry| entry.name == "m").unwrap();
    assert_eq!(m.kind, FileKind::Directory);
}

#[tokio::test]
async fn ancestors_of_mount_points_exist_without_a_root_mount() {
    let table = MountTable::new();
    table
        .mount(&p("/a/b"), memory(), MountOptions::default())
        .await
        .unwrap();
    table
        .mount(&p("/c"), memory(), MountOptions::default())
        .await
        .unwrap();
    assert_eq!(
        names(&table.read_dir(&VfsPath::root()).await.unwrap()),
        ["a", "c"]
    );
    assert_eq!(names(&table.read_dir(&p("/a")).await.unwrap()), ["b"]);
    assert!(table.stat(&p("/a")).await.unwrap().is_dir());
    assert!(table.exists(&p("/a")).await.unwrap());
    assert!(!table.exists(&p("/z")).await.unwrap());
    assert_errno(table.stat(&p("/z")).await, ErrorKind::NotFound);
    assert_errno(
        table.write_file(&p("/a/x"), Bytes::new()).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table.create_dir(&p("/a/new"), 0o755).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table.set_permissions(&p("/a"), 0o700).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(table.read_file(&p("/a")).await, ErrorKind::IsADirectory);
}

#[tokio::test]
async fn mount_point_stats_as_the_mounted_root() {
    let (table, root, drivers) = table_with(&["/m"]).await;
    drivers[0]
        .set_permissions(&VfsPath::root(), 0o710)
        .await
        .unwrap();
    root.set_permissions(&p("/m"), 0o755).await.unwrap();
    assert_eq!(table.stat(&p("/m")).await.unwrap().mode, 0o710);
    assert_eq!(table.lstat(&p("/m")).await.unwrap().mode, 0o710);
}

#[tokio::test]
async fn rename_and_link_across_mounts_are_exdev() {
    let (table, root, drivers) = table_with(&["/m"]).await;
    table
        .write_file(&p("/f"), Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert_errno(
        table.rename(&p("/f"), &p("/m/f")).await,
        ErrorKind::CrossesDevices,
    );
    assert_errno(
        table.hard_link(&p("/f"), &p("/m/f")).await,
        ErrorKind::CrossesDevices,
    );
    assert!(root.exists(&p("/f")).await.unwrap());
    assert!(!drivers[0].exists(&p("/f")).await.unwrap());
    // Within one mount both work.
    table.rename(&p("/f"), &p("/g")).await.unwrap();
    table.hard_link(&p("/g"), &p("/h")).await.unwrap();
    assert_eq!(table.stat(&p("/h")).await.unwrap().nlink, 2);
}

#[tokio::test]
async fn read_only_mount_refuses_every_mutation_with_erofs() {
    let (table, _root, _drivers) = table_with(&[]).await;
    let backing = memory();
    backing
        .write_file(&p("/f"), Bytes::from_static(b"keep"))
        .await
        .unwrap();
    backing.create_dir(&p("/d"), 0o755).await.unwrap();
    backing.symlink("f", &p("/l")).await.unwrap();
    table
        .mount(&p("/ro"), backing.clone(), MountOptions { read_only: true })
        .await
        .unwrap();

    let f = p("/ro/f");
    assert_eq!(table.read_file(&f).await.unwrap(), "keep");
    assert_eq!(table.read_link(&p("/ro/l")).await.unwrap(), "f");
    assert_eq!(table.pread(&f, 1, 2).await.unwrap(), "ee");
    table.open(&f, OpenOptions::read_only()).await.unwrap();

    assert_errno(
        table.write_file(&f, Bytes::new()).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table.write_file(&p("/ro/new"), Bytes::new()).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table.pwrite(&f, 0, Bytes::from_static(b"x")).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(table.truncate(&f, 0).await, ErrorKind::ReadOnly);
    for options in [
        OpenOptions::new().write(true),
        OpenOptions::new().append(true),
        OpenOptions::new().read(true).create(true),
        OpenOptions::new().read(true).truncate(true),
    ] {
        assert_errno(table.open(&f, options).await, ErrorKind::ReadOnly);
    }
    assert_errno(
        table.create_dir(&p("/ro/e"), 0o755).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table.create_dir_all(&p("/ro/e/f"), 0o755).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(table.remove_file(&f).await, ErrorKind::ReadOnly);
    assert_errno(table.remove_dir(&p("/ro/d")).await, ErrorKind::ReadOnly);
    assert_errno(table.remove_dir_all(&p("/ro/d")).await, ErrorKind::ReadOnly);
    assert_errno(table.rename(&f, &p("/ro/g")).await, ErrorKind::ReadOnly);
    assert_errno(table.symlink("f", &p("/ro/l2")).await, ErrorKind::ReadOnly);
    assert_errno(table.hard_link(&f, &p("/ro/h")).await, ErrorKind::ReadOnly);
    assert_errno(table.set_permissions(&f, 0o600).await, ErrorKind::ReadOnly);
    assert_errno(
        table.set_owner(&f, Some(1), None).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table.set_times(&f, SetTime::Now, SetTime::Now).await,
        ErrorKind::ReadOnly,
    );
    assert_errno(
        table
            .set_xattr(&f, "user.k", Bytes::from_static(b"v"), XattrMode::Upsert)
            .await,
        ErrorKind::ReadOnly,
    );
    assert_errno(table.remove_xattr(&f, "user.k").await, ErrorKind::ReadOnly);

    assert_eq!(backing.read_file(&p("/f")).await.unwrap(), "keep");
    let mut left = names(&backing.read_dir(&VfsPath::root()).await.unwrap());
    left.sort();
    assert_eq!(left, ["d", "f", "l"]);
    assert!(table.capabilities_at(&f).unwrap().read_only);
}

#[tokio::test]
async fn read_only_wrapper_works_over_any_filesystem() {
    let backing = memory();
    backing
        .write_file(&p("/f"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    let fs = ReadOnlyFs::new(backing);
    assert_eq!(fs.read_file(&p("/f")).await.unwrap(), "x");
    assert_errno(fs.remove_file(&p("/f")).await, ErrorKind::ReadOnly);
    assert!(fs.capabilities().read_only);
    assert_eq!(fs.kind(), "memory");
}

#[tokio::test]
async fn unmounting_a_path_with_child_mounts_is_ebusy() {
    let (table, _root, _drivers) = table_with(&["/a", "/a/b"]).await;
    assert_errno(
        table.unmount(&p("/a"), UnmountOptions::default()).await,
        ErrorKind::Busy,
    );
    assert_errno(
        table.unmount(&p("/a"), UnmountOptions { lazy: true }).await,
        ErrorKind::Busy,
    );
    table
        .unmount(&p("/a/b"), UnmountOptions::default())
        .await
        .unwrap();
    table
        .unmount(&p("/a"), UnmountOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn unmounting_a_non_mount_is_einval() {
    let (table, _root, _drivers) = table_with(&["/m"]).await;
    table.create_dir(&p("/plain"), 0o755).await.unwrap();
    assert_errno(
        table.unmount(&p("/plain"), UnmountOptions::default()).await,
        ErrorKind::InvalidInput,
    );
    assert_errno(
        table
            .unmount(&p("/m/inner"), UnmountOptions::default())
            .await,
        ErrorKind::InvalidInput,
    );
    assert_errno(
        table
            .unmount(&p("/nothing"), UnmountOptions::default())
            .await,
        ErrorKind::InvalidInput,
    );
    assert_eq!(table.list().len(), 2);
}

#[tokio::test]
async fn open_handles_make_unmount_busy_unless_lazy() {
    let (table, root, drivers) = table_with(&["/m"]).await;
    drivers[0]
        .write_file(&p("/f"), Bytes::from_static(b"before"))
        .await
        .unwrap();
    let handle = table
        .open(&p("/m/f"), OpenOptions::new().read(true).write(true))
        .await
        .unwrap();
    assert_eq!(table.open_handles(&p("/m")), Some(1));
    assert_errno(
        table.unmount(&p("/m"), UnmountOptions::default()).await,
        ErrorKind::Busy,
    );
    assert!(
        table.exists(&p("/m/f")).await.unwrap(),
        "a refused unmount changes nothing"
    );

    table
        .unmount(&p("/m"), UnmountOptions { lazy: true })
        .await
        .unwrap();
    // New lookups see the directory beneath, not the detached mount.
    assert!(!table.exists(&p("/m/f")).await.unwrap());
    assert!(root.stat(&p("/m")).await.unwrap().is_dir());
    // The open handle still reaches the detached filesystem.
    handle
        .write_at(0, Bytes::from_static(b"after!"))
        .await
        .unwrap();
    assert_eq!(handle.read_at(0, 6).await.unwrap(), "after!");
    assert_eq!(drivers[0].read_file(&p("/f")).await.unwrap(), "after!");
}

#[tokio::test]
async fn closed_handles_stop_counting() {
    let (table, _root, drivers) = table_with(&["/m"]).await;
    drivers[0].write_file(&p("/f"), Bytes::new()).await.unwrap();
    let handle = table
        .open(&p("/m/f"), OpenOptions::read_only())
        .await
        .unwrap();
    drop(handle);
    assert_errno(
        table.open(&p("/m/missing"), OpenOptions::read_only()).await,
        ErrorKind::NotFound,
    );
    assert_eq!(table.open_handles(&p("/m")), Some(0));
    table
        .unmount(&p("/m"), UnmountOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn mount_ids_are_never_reused() {
    let (table, _root, _drivers) = table_with(&[]).await;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..50 {
        let id = table
            .mount(&p("/again"), memory(), MountOptions::default())
            .await
            .unwrap();
        assert!(seen.insert(id), "id {id} came back");
        table
            .unmount(&p("/again"), UnmountOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn list_shows_path_kind_read_only_and_id_but_never_config() {
    let (table, _root, _drivers) = table_with(&["/b"]).await;
    table
        .mount(&p("/a"), memory(), MountOptions { read_only: true })
        .await
        .unwrap();
    let list = table.list();
    let paths: Vec<&str> = list.iter().map(|info| info.path.as_str()).collect();
    assert_eq!(paths, ["/", "/a", "/b"]);
    assert!(list[1].read_only && !list[2].read_only);
    assert!(list.iter().all(|info| info.kind == "memory"));
    let json = serde_json::to_value(&list[1]).unwrap();
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["kind", "mountId", "path", "readOnly"]);
}

#[tokio::test]
async fn subscribers_see_mount_and_unmount_events() {
    let table = MountTable::new();
    let mut events = table.subscribe();
    let id = table
        .mount(&p("/m"), memory(), MountOptions::default())
        .await
        .unwrap();
    table
        .unmount(&p("/m"), UnmountOptions::default())
        .await
        .unwrap();
    match events.recv().await.unwrap() {
        MountEvent::Mounted { mount } => {
            assert_eq!(mount.mount_id, id);
            assert_eq!(mount.path.as_str(), "/m");
        }
        other => panic!("expected mounted, got {other:?}"),
    }
    match events.recv().await.unwrap() {
        MountEvent::Unmounted { mount, lazy } => {
            assert_eq!(mount.mount_id, id);
            assert!(!lazy);
        }
        other => panic!("expected unmounted, got {other:?}"),
    }
    let event = MountEvent::Mounted {
        mount: vfs_core::MountInfo {
            path: p("/m"),
            kind: "memory".into(),
            read_only: false,
            mount_id: id,
        },
    };
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["type"], "mounted");
    assert_eq!(json["mount"]["mountId"], id.0);
}

#[tokio::test]
async fn unmount_shuts_the_driver_down_and_reports_a_failed_shutdown() {
    let table = MountTable::new();
    let mut events = table.subscribe();
    for fail in [false, true] {
        let shutdowns = Arc::new(AtomicUsize::new(0));
        let counted = shutdowns.clone();
        let probe = Forward::new(memory(), "probe").on_shutdown(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            if fail {
                return Err(
                    VfsError::new(ErrorKind::Io, "shutdown").with_detail("probe told to fail")
                );
            }
            Ok(())
        });
        table
            .mount(&p("/probe"), Arc::new(probe), MountOptions::default())
            .await
            .unwrap();
        assert_eq!(table.list()[0].kind, "probe");
        let info = table
            .unmount(&p("/probe"), UnmountOptions::default())
            .await
            .unwrap();
        assert_eq!(shutdowns.load(Ordering::SeqCst), 1);
        assert!(table.list().is_empty(), "a failed shutdown still unmounts");
        let mut kinds = Vec::new();
        while let Ok(event) = events.try_recv() {
            kinds.push(match event {
                MountEvent::Mounted { .. } => "mounted",
                MountEvent::Unmounted { mount, .. } => {
                    assert_eq!(mount, info);
                    "unmounted"
                }
                MountEvent::ShutdownFailed { code, .. } => {
                    assert_eq!(code, "EIO");
                    "shutdownFailed"
                }
            });
        }
        let expected: &[&str] = if fail {
            &["mounted", "shutdownFailed", "unmounted"]
        } else {
            &["mounted", "unmounted"]
        };
        assert_eq!(kinds, expected);
    }
}

#[tokio::test]
async fn errors_carry_the_callers_path() {
    let (table, _root, _drivers) = table_with(&["/mnt/data"]).await;
    let err = table.read_file(&p("/mnt/data/missing")).await.unwrap_err();
    assert_eq!(err.code(), "ENOENT");
    assert_eq!(err.path(), Some("/mnt/data/missing"));
    let err = table
        .open(&p("/mnt/data/missing"), OpenOptions::read_only())
        .await
        .err()
        .unwrap();
    assert_eq!(err.path(), Some("/mnt/data/missing"));
}

#[tokio::test]
async fn mount_points_cannot_be_removed_renamed_or_created_over() {
    let (table, _root, drivers) = table_with(&["/a/m"]).await;
    drivers[0]
        .write_file(&p("/inside"), Bytes::from_static(b"kept"))
        .await
        .unwrap();
    table
        .write_file(&p("/a/beside"), Bytes::from_static(b"kept"))
        .await
        .unwrap();
    assert_errno(table.remove_dir(&p("/a/m")).await, ErrorKind::Busy);
    assert_errno(table.remove_file(&p("/a/m")).await, ErrorKind::IsADirectory);
    assert_errno(table.rename(&p("/a/m"), &p("/a/n")).await, ErrorKind::Busy);
    assert_errno(table.rename(&p("/a"), &p("/b")).await, ErrorKind::Busy);
    table.create_dir(&p("/d"), 0o755).await.unwrap();
    assert_errno(table.rename(&p("/d"), &p("/a/m")).await, ErrorKind::Busy);
    assert_errno(
        table.create_dir(&p("/a/m"), 0o755).await,
        ErrorKind::AlreadyExists,
    );
    assert_errno(
        table.symlink("x", &p("/a/m")).await,
        ErrorKind::AlreadyExists,
    );
    assert_errno(table.remove_dir_all(&p("/a")).await, ErrorKind::Busy);
    assert_errno(table.remove_dir_all(&p("/a/m")).await, ErrorKind::Busy);
    assert!(table.stat(&p("/a/m")).await.unwrap().is_dir());
    // Refused before anything went: neither the mount's files nor its neighbours.
    assert_eq!(table.read_file(&p("/a/m/inside")).await.unwrap(), "kept");
    assert_eq!(table.read_file(&p("/a/beside")).await.unwrap(), "kept");
    table.create_dir_all(&p("/z/y"), 0o755).await.unwrap();
    table.write_file(&p("/z/y/f"), Bytes::new()).await.unwrap();
    table.remove_dir_all(&p("/z")).await.unwrap();
    assert_errno(table.stat(&p("/z")).await, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_mount_table_mounts_inside_another() {
    let (inner, _root, drivers) = table_with(&["/deep"]).await;
    drivers[0]
        .write_file(&p("/f"), Bytes::from_static(b"nested"))
        .await
        .unwrap();
    let (outer, _outer_root, _) = table_with(&[]).await;
    outer
        .mount(&p("/guest"), Arc::new(inner), MountOptions::default())
        .await
        .unwrap();
    assert_eq!(
        outer.read_file(&p("/guest/deep/f")).await.unwrap(),
        "nested"
    );
    assert_eq!(outer.list()[1].kind, "mount_table");
    let err = outer
        .read_file(&p("/guest/deep/missing"))
        .await
        .unwrap_err();
    assert_eq!(err.path(), Some("/guest/deep/missing"));
}

#[tokio::test]
async fn realpath_answers_in_table_paths() {
    let (table, _root, drivers) = table_with(&["/m"]).await;
    drivers[0].create_dir(&p("/real"), 0o755).await.unwrap();
    drivers[0].symlink("real", &p("/link")).await.unwrap();
    assert_eq!(
        table.realpath(&p("/m/link")).await.unwrap().as_str(),
        "/m/real"
    );
}
