//! Export to tar and tar.zst: deterministic, readable by the tar crate and GNU tar, with
//! pax times, xattrs, long names, symlinks and hard links.

mod common;

use std::collections::BTreeMap;
use std::io::Read;

use common::*;
use vfs_core::{FileSystem, VfsPath};
use vfs_snapshot::{Repository, SnapshotOptions};

/// One entry as read back: kind, data, link name, pax records.
type Seen = (
    tar::EntryType,
    Vec<u8>,
    Option<String>,
    Vec<(String, Vec<u8>)>,
);

#[tokio::test]
async fn export_is_deterministic_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(dir.path()).await.unwrap();
    let fs = populated().await;
    let long_dir = format!("/{}", "d".repeat(120));
    fs.create_dir(&p(&long_dir), 0o755).await.unwrap();
    let long_file = format!("{long_dir}/{}", "é".repeat(60));
    write(fs.as_ref(), &long_file, "long").await;
    let (id, snap) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();

    let mut tar_bytes = Vec::new();
    let stats = repo.export_tar(&id, &mut tar_bytes).await.unwrap();
    assert_eq!(stats.entries, snap.files + snap.dirs + snap.symlinks);
    assert_eq!(
        stats.bytes,
        snap.bytes_total - 2 * 20,
        "hard links carry no data"
    );
    let mut again = Vec::new();
    repo.export_tar(&id, &mut again).await.unwrap();
    assert_eq!(tar_bytes, again);

    let mut zst = Vec::new();
    repo.export_tar_zst(&id, &mut zst, 3).await.unwrap();
    assert!(zst.len() < tar_bytes.len());
    assert_eq!(zstd::stream::decode_all(zst.as_slice()).unwrap(), tar_bytes);

    // Read back with the tar crate: names, kinds, content, links, pax fields.
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut order = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8(entry.path_bytes().to_vec()).unwrap();
        let link = entry
            .link_name_bytes()
            .map(|l| String::from_utf8(l.to_vec()).unwrap());
        let mut pax = Vec::new();
        if let Some(exts) = entry.pax_extensions().unwrap() {
            for ext in exts {
                let ext = ext.unwrap();
                pax.push((ext.key().unwrap().to_owned(), ext.value_bytes().to_vec()));
            }
        }
        let kind = entry.header().entry_type();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        order.push(name.clone());
        seen.insert(name, (kind, data, link, pax));
    }
    assert_eq!(order[0], "./");
    assert_eq!(seen["etc/hosts"].1, b"127.0.0.1 localhost\n");
    assert_eq!(seen["srv/hosts.hard"].0, tar::EntryType::Link);
    assert_eq!(seen["srv/hosts.hard"].2.as_deref(), Some("etc/hosts"));
    assert_eq!(seen["srv/user"].0, tar::EntryType::Symlink);
    assert_eq!(seen["srv/user"].2.as_deref(), Some("/home/user"));
    assert_eq!(seen["etc/"].0, tar::EntryType::Directory);
    let big = fs.read_file(&p("/home/user/big.bin")).await.unwrap();
    assert_eq!(seen["home/user/big.bin"].1, big.to_vec());
    let hosts_pax = &seen["etc/hosts"].3;
    assert!(hosts_pax.contains(&("SCHILY.xattr.user.origin".to_owned(), b"test".to_vec())));
    let mtime = fs.lstat(&p("/etc/hosts")).await.unwrap().mtime.to_parts();
    let expected = format!("{}.{:09}", mtime.0, mtime.1);
    assert!(hosts_pax.contains(&("mtime".to_owned(), expected.into_bytes())));
    let long_rel = long_file.trim_start_matches('/');
    assert_eq!(seen[long_rel].1, b"long");
}

#[tokio::test]
async fn gnu_tar_extracts_the_export() {
    if std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no tar on this machine; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::open_local(&dir.path().join("store"))
        .await
        .unwrap();
    let fs = populated().await;
    let (id, _) = repo
        .snapshot(fs.as_ref(), &VfsPath::root(), &SnapshotOptions::default())
        .await
        .unwrap();
    let archive = dir.path().join("out.tar");
    let file = std::fs::File::create(&archive).unwrap();
    repo.export_tar(&id, std::io::BufWriter::new(file))
        .await
        .unwrap();
    let out = dir.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(out.join("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(
        std::fs::read_link(out.join("srv/user")).unwrap(),
        std::path::Path::new("/home/user")
    );
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(out.join("etc/hosts")).unwrap();
    let b = std::fs::metadata(out.join("home/hosts.hard")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hard link kept");
    assert_eq!(
        a.mtime_nsec(),
        fs.lstat(&p("/etc/hosts")).await.unwrap().mtime.to_parts().1 as i64
    );
    let big = std::fs::read(out.join("home/user/big.bin")).unwrap();
    assert_eq!(
        big,
        fs.read_file(&p("/home/user/big.bin"))
            .await
            .unwrap()
            .to_vec()
    );
}
