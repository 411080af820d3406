//! The memory driver served through a real FUSE mount: ordinary system calls from this
//! process go through the kernel to vfs-fuse and back.

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use vfs_core::conformance::Forward;
use vfs_core::{FileSystem, MountOptions, MountTable, UnmountOptions, VfsPath};
use vfs_drivers::MemoryFs;
use vfs_fuse::{FuseMount, FuseOptions};

/// A memory filesystem mounted at a fresh directory.
struct Fixture {
    mount: Option<FuseMount>,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn memory() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mnt");
        fs::create_dir(&root).unwrap();
        let mount =
            vfs_fuse::mount(Arc::new(MemoryFs::new()), &root, FuseOptions::default()).unwrap();
        Fixture {
            mount: Some(mount),
            root,
            _dir: dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mount) = self.mount.take() {
            mount.unmount().unwrap();
        }
    }
}

/// Runs blocking file I/O off the runtime's workers, which serve the requests it makes.
async fn io<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn errno_of(err: std::io::Error) -> i32 {
    err.raw_os_error().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn files_directories_renames_and_links() {
    let fx = Fixture::memory();
    let root = fx.root.clone();
    io(move || {
        let file = root.join("a.txt");
        fs::write(&file, b"hello").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"hello");
        assert_eq!(fs::metadata(&root).unwrap().nlink(), 2);
        fs::create_dir(root.join("dir")).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().nlink(), 3);
        fs::rename(&file, root.join("dir/b.txt")).unwrap();
        assert_eq!(fs::read(root.join("dir/b.txt")).unwrap(), b"hello");
        assert_eq!(errno_of(fs::metadata(&file).unwrap_err()), libc::ENOENT);

        let before = fs::metadata(root.join("dir/b.txt")).unwrap();
        fs::hard_link(root.join("dir/b.txt"), root.join("c.txt")).unwrap();
        let linked = fs::metadata(root.join("c.txt")).unwrap();
        assert_eq!(linked.ino(), before.ino(), "hard links share one inode");
        assert_eq!(linked.nlink(), 2);
        assert_eq!(fs::metadata(root.join("dir/b.txt")).unwrap().nlink(), 2);
        assert!(linked.ctime_nsec() != before.ctime_nsec() || linked.ctime() != before.ctime());

        // A renamed directory's files keep working under the new name.
        fs::rename(root.join("dir"), root.join("moved")).unwrap();
        fs::write(root.join("moved/b.txt"), b"changed").unwrap();
        assert_eq!(fs::read(root.join("c.txt")).unwrap(), b"changed");
        assert_eq!(fs::metadata(root.join("c.txt")).unwrap().size(), 7);

        fs::remove_file(root.join("moved/b.txt")).unwrap();
        assert_eq!(fs::metadata(root.join("c.txt")).unwrap().nlink(), 1);

        std::os::unix::fs::symlink("c.txt", root.join("s")).unwrap();
        assert_eq!(fs::read_link(root.join("s")).unwrap(), Path::new("c.txt"));
        assert_eq!(fs::read(root.join("s")).unwrap(), b"changed");
        assert!(fs::symlink_metadata(root.join("s"))
            .unwrap()
            .file_type()
            .is_symlink());

        let mut names: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["c.txt", "moved", "s"]);

        fs::write(root.join("moved/x"), b"x").unwrap();
        assert_eq!(
            errno_of(fs::remove_dir(root.join("moved")).unwrap_err()),
            libc::ENOTEMPTY
        );
        fs::remove_dir_all(root.join("moved")).unwrap();
        assert!(!root.join("moved").exists());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn append_exclusive_truncate_and_modes() {
    let fx = Fixture::memory();
    let root = fx.root.clone();
    io(move || {
        let file = root.join("log");
        fs::write(&file, b"one\n").unwrap();
        let mut appender = OpenOptions::new().append(true).open(&file).unwrap();
        let mut other = OpenOptions::new().write(true).open(&file).unwrap();
        other.write_all(b"ONE\n").unwrap();
        appender.write_all(b"two\n").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"ONE\ntwo\n");

        let err = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .unwrap_err();
        assert_eq!(errno_of(err), libc::EEXIST);
        let mut fresh = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(root.join("fresh"))
            .unwrap();
        fresh.write_all(b"abc").unwrap();
        // SAFETY: umask only changes this process's creation mask.
        let umask = unsafe {
            let old = libc::umask(0);
            libc::umask(old);
            old
        };
        assert_eq!(
            fs::metadata(root.join("fresh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o640 & !umask
        );

        let truncating = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        assert_eq!(truncating.metadata().unwrap().len(), 0);
        truncating.set_len(10_000).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().len(), 10_000);
        assert_eq!(fs::read(&file).unwrap(), vec![0; 10_000]);

        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);

        // UTIME_OMIT keeps mtime; a set atime shows at once.
        let before = fs::metadata(&file).unwrap();
        let times = [
            libc::timespec {
                tv_sec: 1_000_000,
                tv_nsec: 5,
            },
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
        ];
        // SAFETY: valid path and a two-element array, as utimensat requires.
        let rc =
            unsafe { libc::utimensat(libc::AT_FDCWD, c_path(&file).as_ptr(), times.as_ptr(), 0) };
        assert_eq!(rc, 0);
        let after = fs::metadata(&file).unwrap();
        assert_eq!((after.atime(), after.atime_nsec()), (1_000_000, 5));
        assert_eq!(
            (after.mtime(), after.mtime_nsec()),
            (before.mtime(), before.mtime_nsec())
        );

        let mut allocated = OpenOptions::new()
            .write(true)
            .open(root.join("fresh"))
            .unwrap();
        // SAFETY: a valid open descriptor.
        let rc =
            unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&allocated), 0, 0, 1 << 16) };
        assert_eq!(rc, 0);
        assert_eq!(allocated.metadata().unwrap().len(), 1 << 16);
        allocated.seek(SeekFrom::Start(0)).unwrap();
        allocated.write_all(&[b'y'; 3 * 4096]).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&allocated);
        let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        // SAFETY: a valid open descriptor.
        assert_eq!(unsafe { libc::fallocate(fd, punch, 10, 4096) }, 0);
        let content = fs::read(root.join("fresh")).unwrap();
        assert_eq!(content.len(), 1 << 16, "punching keeps the size");
        assert!(content[..10].iter().all(|&b| b == b'y'));
        assert!(content[10..4106].iter().all(|&b| b == 0));
        assert!(content[4106..3 * 4096].iter().all(|&b| b == b'y'));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rename_flags_xattrs_statfs_and_fifos() {
    let fx = Fixture::memory();
    let root = fx.root.clone();
    io(move || {
        fs::write(root.join("a"), b"a").unwrap();
        fs::write(root.join("b"), b"b").unwrap();
        let rename2 = |from: &str, to: &str, flags: libc::c_uint| {
            let (from, to) = (c_path(&root.join(from)), c_path(&root.join(to)));
            // SAFETY: valid NUL-terminated paths.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    flags,
                )
            };
            if rc == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap()
            }
        };
        assert_eq!(rename2("a", "b", libc::RENAME_NOREPLACE), libc::EEXIST);
        assert_eq!(rename2("a", "b", libc::RENAME_EXCHANGE), 0);
        assert_eq!(fs::read(root.join("a")).unwrap(), b"b");
        assert_eq!(fs::read(root.join("b")).unwrap(), b"a");
        assert_eq!(rename2("a", "c", libc::RENAME_NOREPLACE), 0);
        assert_eq!(rename2("c", "b", libc::RENAME_WHITEOUT), libc::EINVAL);

        let file = c_path(&root.join("b"));
        let (name, value) = (CString::new("user.colour").unwrap(), b"blue");
        // SAFETY: valid strings and buffers with their lengths.
        unsafe {
            assert_eq!(
                libc::setxattr(file.as_ptr(), name.as_ptr(), value.as_ptr().cast(), 4, 0),
                0
            );
            let mut buf = [0u8; 16];
            let len = libc::getxattr(file.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 16);
            assert_eq!(&buf[..len as usize], b"blue");
            assert_eq!(
                libc::getxattr(file.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 2),
                -1
            );
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::ERANGE)
            );
            let len = libc::listxattr(file.as_ptr(), buf.as_mut_ptr().cast(), 16);
            assert_eq!(&buf[..len as usize], b"user.colour\0");
            assert_eq!(
                libc::setxattr(
                    file.as_ptr(),
                    name.as_ptr(),
                    value.as_ptr().cast(),
                    4,
                    libc::XATTR_CREATE
                ),
                -1
            );
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EEXIST)
            );
            assert_eq!(libc::removexattr(file.as_ptr(), name.as_ptr()), 0);
            assert_eq!(
                libc::getxattr(file.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), 16),
                -1
            );
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::ENODATA)
            );

            let mut st: libc::statvfs = std::mem::zeroed();
            assert_eq!(libc::statvfs(c_path(&root).as_ptr(), &mut st), 0);
            assert_eq!(st.f_namemax, 255);
            assert!(st.f_bfree > 0 && st.f_ffree > 0);

            let fifo = c_path(&root.join("pipe"));
            assert_eq!(libc::mkfifo(fifo.as_ptr(), 0o644), 0);
        }
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(
            &fs::symlink_metadata(root.join("pipe")).unwrap().file_type()
        ));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_sequential_io_round_trips() {
    let fx = Fixture::memory();
    let file = fx.path("big");
    io(move || {
        // A seeded pattern, so any misplaced block shows.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let data: Vec<u8> = (0..(48 << 20))
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let mut out = fs::File::create(&file).unwrap();
        for chunk in data.chunks(3 << 20) {
            out.write_all(chunk).unwrap();
        }
        drop(out);
        assert_eq!(fs::metadata(&file).unwrap().len(), data.len() as u64);
        let mut back = Vec::new();
        fs::File::open(&file)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert!(back == data, "content read back differs");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_mounts_show_and_vanish_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    let table = Arc::new(MountTable::new());
    table
        .mount(
            &VfsPath::root(),
            Arc::new(MemoryFs::new()),
            MountOptions::default(),
        )
        .await
        .unwrap();
    let mount = vfs_fuse::mount_table(table.clone(), &root, FuseOptions::default()).unwrap();
    let work = VfsPath::new("/work").unwrap();
    let data = root.join("work/data.txt");
    let check = data.clone();
    io(move || {
        assert!(
            !check.parent().unwrap().exists(),
            "nothing mounted at /work yet"
        );
        assert_eq!(errno_of(fs::read(&check).unwrap_err()), libc::ENOENT);
    })
    .await;

    for round in 0..20u32 {
        let sub = MemoryFs::new();
        let content = format!("round {round}");
        sub.write_file(
            &VfsPath::new("/data.txt").unwrap(),
            Bytes::from(content.clone()),
        )
        .await
        .unwrap();
        table
            .mount(&work, Arc::new(sub), MountOptions::default())
            .await
            .unwrap();
        let path = data.clone();
        let seen = io(move || fs::read_to_string(&path)).await.unwrap();
        assert_eq!(seen, content, "the new mount shows at once");
        // The kernel reports a close to the filesystem after close(2) has returned, so
        // the handle read_to_string opened may still count: detach lazily.
        table
            .unmount(&work, UnmountOptions { lazy: true })
            .await
            .unwrap();
        let path = data.clone();
        let err = io(move || fs::read(&path)).await.unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::NotFound,
            "the unmounted tree is gone at once"
        );
    }
    mount.unmount().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unmount_then_mountpoint_is_plain_again() {
    let fx = Fixture::memory();
    let root = fx.root.clone();
    let marker = root.join("inside");
    io(move || fs::write(&marker, b"x").unwrap()).await;
    let mut fx = fx;
    fx.mount.take().unwrap().unmount().unwrap();
    assert!(!fx.path("inside").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_request_holds_up_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let inner = MemoryFs::new();
    inner
        .write_file(&VfsPath::new("/slow").unwrap(), Bytes::from_static(b"s"))
        .await
        .unwrap();
    inner
        .write_file(&VfsPath::new("/fast").unwrap(), Bytes::from_static(b"f"))
        .await
        .unwrap();
    let release = Arc::new(tokio::sync::Notify::new());
    // Stat of `/slow` waits until released.
    let held = release.clone();
    let fs = Arc::new(
        Forward::new(Arc::new(inner), "slow").before_stat(move |path| {
            let held = (path.as_str() == "/slow").then(|| held.clone());
            async move {
                if let Some(held) = held {
                    held.notified().await;
                }
            }
        }),
    );
    let mount = vfs_fuse::mount(fs, dir.path(), FuseOptions::default()).unwrap();
    let slow_path = dir.path().join("slow");
    let slow = tokio::task::spawn_blocking(move || fs::read(slow_path));
    let fast_path = dir.path().join("fast");
    // The slow lookup is still waiting: it is released only after this read returns.
    let fast = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        io(move || fs::read(fast_path)),
    )
    .await
    .expect("a stalled lookup blocked another request");
    assert_eq!(fast.unwrap(), b"f");
    assert!(!slow.is_finished());
    release.notify_one();
    assert_eq!(slow.await.unwrap().unwrap(), b"s");
    mount.unmount().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn new_entries_belong_to_the_caller_and_setgid_dirs_pass_their_group() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let options = FuseOptions {
        allow_other: true,
        ..FuseOptions::default()
    };
    let mount = vfs_fuse::mount(Arc::new(MemoryFs::new()), dir.path(), options).unwrap();
    let root = dir.path().to_owned();
    io(move || {
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        fs::create_dir(root.join("shared")).unwrap();
        std::os::unix::fs::chown(root.join("shared"), None, Some(4242)).unwrap();
        fs::set_permissions(root.join("shared"), fs::Permissions::from_mode(0o2777)).unwrap();
        let as_nobody = |script: &str| {
            let mut command = std::process::Command::new("/bin/sh");
            command.arg("-c").arg(script).current_dir(&root);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(65534) != 0
                        || libc::setuid(65534) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let status = command.status().unwrap();
            assert!(status.success(), "{script}");
        };
        as_nobody("umask 022 && touch mine && mkdir mydir && ln -s mine mylink && touch shared/f && mkdir shared/d");
        let owner = |name: &str| {
            let meta = fs::symlink_metadata(root.join(name)).unwrap();
            (meta.uid(), meta.gid(), meta.mode() & 0o7777)
        };
        assert_eq!(owner("mine"), (65534, 65534, 0o644));
        assert_eq!(owner("mydir"), (65534, 65534, 0o755));
        assert_eq!(owner("mylink").0, 65534);
        assert_eq!(owner("shared/f"), (65534, 4242, 0o644));
        assert_eq!(owner("shared/d"), (65534, 4242, 0o2755));
        // The kernel checks permissions: nobody cannot write root's file.
        fs::write(root.join("roots"), b"r").unwrap();
        let mut command = std::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg("echo x > roots")
            .current_dir(&root)
            .stderr(std::process::Stdio::null());
        // SAFETY: as above.
        unsafe {
            command.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        assert!(!command.status().unwrap().success());
        assert_eq!(fs::read(root.join("roots")).unwrap(), b"r");
    })
    .await;
    mount.unmount().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cp_a_keeps_modes_it_sets_through_acls() {
    let source = tempfile::tempdir().unwrap();
    let tree = source.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/f"), b"f").unwrap();
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o751)).unwrap();
    fs::set_permissions(tree.join("sub/f"), fs::Permissions::from_mode(0o604)).unwrap();
    let fx = Fixture::memory();
    let target = fx.path("copy");
    io(move || {
        // cp -a writes each mode as an access ACL (system.posix_acl_access).
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&tree)
            .arg(&target)
            .status()
            .unwrap();
        assert!(status.success());
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&target), 0o751);
        assert_eq!(mode(&target.join("sub")), mode(&tree.join("sub")));
        assert_eq!(mode(&target.join("sub/f")), 0o604);
        let name = CString::new("system.posix_acl_access").unwrap();
        let mut buf = [0u8; 64];
        // SAFETY: valid strings and buffer.
        let len = unsafe {
            libc::getxattr(
                c_path(&target).as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                64,
            )
        };
        assert_eq!(len, -1, "no ACL is stored beside the mode");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unmounting_a_busy_mount_detaches_it_and_keeps_serving_its_users() {
    let mut fx = Fixture::memory();
    let file = fx.path("held");
    let held = io(move || {
        fs::write(&file, b"still here").unwrap();
        fs::File::open(&file).unwrap()
    })
    .await;
    fx.mount.take().unwrap().unmount().unwrap();
    assert!(!fx.path("held").exists(), "the name is gone from the tree");
    let content = io(move || {
        let mut held = held;
        let mut content = String::new();
        held.read_to_string(&mut content).unwrap();
        content
    })
    .await;
    assert_eq!(content, "still here", "the open file is still served");
}

#[tokio::test(flavor = "multi_thread")]
async fn truncating_a_running_executable_is_etxtbsy_and_leaves_it_whole() {
    let fx = Fixture::memory();
    let program = fx.path("sleeper");
    io(move || {
        let original = fs::read("/bin/sleep").unwrap();
        fs::write(&program, &original).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        let mut running = std::process::Command::new(&program)
            .arg("30")
            .spawn()
            .unwrap();
        let err = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_TRUNC)
            .open(&program)
            .unwrap_err();
        running.kill().unwrap();
        running.wait().unwrap();
        assert_eq!(errno_of(err), libc::ETXTBSY);
        assert_eq!(
            fs::read(&program).unwrap(),
            original,
            "nothing was truncated"
        );
    })
    .await;
}
