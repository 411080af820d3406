//! `st_ino` through a real FUSE mount stays the same for a file while the mount lives,
//! also after the kernel forgets the file's inode, and hard links share one number.
//!
//! The kernel is made to forget with `echo 2 > /proc/sys/vm/drop_caches` (needs root,
//! as all the FUSE tests do), and the test checks that it did: with the entry and
//! attribute caches set to an hour, only a forgotten name reaches the driver again.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use vfs_core::conformance::Forward;
use vfs_drivers::MemoryFs;
use vfs_fuse::FuseOptions;

/// How often each path was stat'ed through the driver: a lookup or an attribute refresh
/// reaching it.
#[derive(Clone, Default)]
struct StatCounts(Arc<Mutex<HashMap<String, u64>>>);

impl StatCounts {
    fn of(&self, path: &str) -> u64 {
        self.0.lock().get(path).copied().unwrap_or(0)
    }

    /// A memory filesystem whose stats this counts.
    fn memory(&self) -> Forward {
        let counts = self.clone();
        Forward::new(Arc::new(MemoryFs::new()), "counting").before_stat(move |path| {
            *counts.0.lock().entry(path.as_str().to_owned()).or_default() += 1;
            std::future::ready(())
        })
    }
}

/// Drops the kernel's unused dentries and inodes, so it forgets the mount's files.
fn drop_kernel_caches() {
    fs::write("/proc/sys/vm/drop_caches", "2")
        .expect("writing /proc/sys/vm/drop_caches (the FUSE tests run as root)");
}

fn inode_numbers(root: &Path, names: &[&str]) -> Vec<u64> {
    names
        .iter()
        .map(|name| fs::symlink_metadata(root.join(name)).unwrap().ino())
        .collect()
}

fn listed_inode_numbers(dir: &Path) -> HashMap<PathBuf, u64> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.path(), entry.ino())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn inode_numbers_outlive_the_kernels_cache_and_hard_links_share_one() {
    let dir = tempfile::tempdir().unwrap();
    let counted = StatCounts::default();
    let fs = Arc::new(counted.memory());
    let hour = Duration::from_secs(3600);
    let options = FuseOptions {
        attr_ttl: hour,
        entry_ttl: hour,
        // One reader: the kernel queues a forget before any later request, so the
        // table has dropped the node before the next lookup of it arrives.
        reader_threads: 1,
        ..FuseOptions::default()
    };
    let mount = vfs_fuse::mount(fs.clone(), dir.path(), options).unwrap();
    let root = dir.path().to_owned();
    let names = ["a", "b", "d", "d/f", "d/g"];
    tokio::task::spawn_blocking(move || {
        fs::write(root.join("a"), "one file, two names").unwrap();
        fs::hard_link(root.join("a"), root.join("b")).unwrap();
        fs::create_dir(root.join("d")).unwrap();
        fs::write(root.join("d/f"), "f").unwrap();
        fs::write(root.join("d/g"), "g").unwrap();

        let first = inode_numbers(&root, &names);
        assert_eq!(first[0], first[1], "hard links show one st_ino");
        assert_eq!(fs::metadata(root.join("b")).unwrap().nlink(), 2);
        let mut distinct = first[1..].to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), names.len() - 1, "{first:?}");

        for round in 0..2 {
            // Everything is cached now, for an hour: only a forgotten name is looked up.
            inode_numbers(&root, &names);
            let before = counted.of("/d/f");
            drop_kernel_caches();
            // The other name first: the file comes back by its hard link.
            let again = inode_numbers(&root, &["b", "a", "d", "d/f", "d/g"]);
            assert!(
                counted.of("/d/f") > before,
                "round {round}: the kernel did not forget /d/f"
            );
            assert_eq!([again[1], again[0]], [first[0], first[1]], "round {round}");
            assert_eq!(again[2..], first[2..], "round {round}");
        }

        // A listing (nothing looked up: caches just dropped) shows the same numbers.
        drop_kernel_caches();
        let listed = listed_inode_numbers(&root.join("d"));
        assert_eq!(listed[&root.join("d/f")], first[3]);
        assert_eq!(listed[&root.join("d/g")], first[4]);

        // A new file under an old name is another file, with another number.
        fs::remove_file(root.join("d/f")).unwrap();
        fs::write(root.join("d/f"), "new").unwrap();
        assert_ne!(inode_numbers(&root, &["d/f"])[0], first[3]);
    })
    .await
    .unwrap();
    mount.unmount().unwrap();
}
