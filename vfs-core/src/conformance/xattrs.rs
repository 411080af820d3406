//! Extended attributes: set, get, list, remove, and the create/replace flags.

use bytes::Bytes;

use super::{assert_errno, Fixture, Must};
use crate::{ErrorKind, XattrMode};

/// When xattrs are not supported, asserts that every xattr call fails with `ENOTSUP` and
/// returns `false`; otherwise creates `f` and `d` to work on.
async fn prepare(fx: &Fixture) -> bool {
    fx.write("f", "x").await;
    fx.mkdir("d").await;
    if fx.caps().xattrs {
        return true;
    }
    let path = fx.path("f");
    let what = |op: &str| format!("{op} {path} on a driver without xattrs");
    assert_errno(
        fx.fs
            .set_xattr(&path, "user.a", Bytes::from_static(b"v"), XattrMode::Upsert)
            .await,
        ErrorKind::Unsupported,
        what("set_xattr"),
    );
    assert_errno(
        fx.fs.get_xattr(&path, "user.a").await,
        ErrorKind::Unsupported,
        what("get_xattr"),
    );
    assert_errno(
        fx.fs.list_xattrs(&path).await,
        ErrorKind::Unsupported,
        what("list_xattrs"),
    );
    assert_errno(
        fx.fs.remove_xattr(&path, "user.a").await,
        ErrorKind::Unsupported,
        what("remove_xattr"),
    );
    false
}

async fn set(fx: &Fixture, name: &str, attr: &str, value: &'static [u8], mode: XattrMode) {
    let path = fx.path(name);
    fx.fs
        .set_xattr(&path, attr, Bytes::from_static(value), mode)
        .await
        .must(format_args!("set_xattr {path} {attr} {mode:?}"));
}

async fn listed(fx: &Fixture, name: &str) -> Vec<String> {
    let path = fx.path(name);
    let mut names = fx
        .fs
        .list_xattrs(&path)
        .await
        .must(format_args!("list_xattrs {path}"));
    names.sort();
    names
}

/// Attributes on files and directories: set, read back (binary and empty values), list,
/// remove.
pub async fn xattr_set_get_list_remove(fx: Fixture) {
    if !prepare(&fx).await {
        return;
    }
    for name in ["f", "d"] {
        let path = fx.path(name);
        assert!(listed(&fx, name).await.is_empty(), "{name} starts bare");
        set(&fx, name, "user.text", b"hello", XattrMode::Upsert).await;
        set(&fx, name, "user.binary", b"\0\xff\x01\n", XattrMode::Upsert).await;
        set(&fx, name, "user.empty", b"", XattrMode::CreateOnly).await;
        for (attr, value) in [
            ("user.text", &b"hello"[..]),
            ("user.binary", &b"\0\xff\x01\n"[..]),
            ("user.empty", &b""[..]),
        ] {
            assert_eq!(
                fx.fs
                    .get_xattr(&path, attr)
                    .await
                    .must(format_args!("get_xattr {path} {attr}")),
                value,
                "{path} {attr}"
            );
        }
        assert_eq!(
            listed(&fx, name).await,
            ["user.binary", "user.empty", "user.text"]
        );
        fx.fs
            .remove_xattr(&path, "user.text")
            .await
            .must("remove_xattr");
        assert_eq!(listed(&fx, name).await, ["user.binary", "user.empty"]);
        assert_errno(
            fx.fs.get_xattr(&path, "user.text").await,
            ErrorKind::NoAttribute,
            format_args!("get_xattr {path} user.text after removal"),
        );
    }
    assert_eq!(fx.read("f").await, "x", "xattrs are not content");
}

/// An open file's `xattrs()` are what the path calls give, values included, or `ENOTSUP`
/// (the handle leaves them to the path calls); never something else.
pub async fn handle_xattrs_match_the_path_calls(fx: Fixture) {
    let supported = prepare(&fx).await;
    let mut expected: Vec<(String, Bytes)> = Vec::new();
    if supported {
        set(&fx, "f", "user.text", b"hello", XattrMode::Upsert).await;
        set(&fx, "f", "user.binary", b"\0\xff\x01\n", XattrMode::Upsert).await;
        set(&fx, "f", "user.empty", b"", XattrMode::Upsert).await;
        let path = fx.path("f");
        for name in listed(&fx, "f").await {
            let value = fx.fs.get_xattr(&path, &name).await.must("get_xattr");
            expected.push((name, value));
        }
    }
    let handle = fx.open("f", crate::OpenOptions::read_only()).await;
    match handle.xattrs().await {
        Err(err) if err.kind() == ErrorKind::Unsupported => {}
        Err(err) => panic!("xattrs() of an open f: {err}"),
        Ok(mut got) => {
            assert!(
                supported,
                "a driver without xattrs lists some through a handle"
            );
            got.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(got, expected, "xattrs() of an open f");
        }
    }
}

/// `Upsert` and `ReplaceOnly` replace an existing value.
pub async fn xattr_upsert_replaces_the_value(fx: Fixture) {
    if !prepare(&fx).await {
        return;
    }
    let path = fx.path("f");
    set(&fx, "f", "user.a", b"first", XattrMode::Upsert).await;
    set(&fx, "f", "user.a", b"second", XattrMode::Upsert).await;
    assert_eq!(fx.fs.get_xattr(&path, "user.a").await.must("get"), "second");
    set(&fx, "f", "user.a", b"third", XattrMode::ReplaceOnly).await;
    assert_eq!(fx.fs.get_xattr(&path, "user.a").await.must("get"), "third");
    assert_eq!(listed(&fx, "f").await, ["user.a"]);
}

/// `CreateOnly` on an existing attribute is `EEXIST` and keeps the value.
pub async fn xattr_create_only_on_existing_is_eexist(fx: Fixture) {
    if !prepare(&fx).await {
        return;
    }
    let path = fx.path("f");
    set(&fx, "f", "user.a", b"kept", XattrMode::Upsert).await;
    assert_errno(
        fx.fs
            .set_xattr(
                &path,
                "user.a",
                Bytes::from_static(b"new"),
                XattrMode::CreateOnly,
            )
            .await,
        ErrorKind::AlreadyExists,
        format_args!("set_xattr {path} user.a CreateOnly"),
    );
    assert_eq!(fx.fs.get_xattr(&path, "user.a").await.must("get"), "kept");
}

/// `ReplaceOnly` on a missing attribute is `ENODATA` and creates nothing.
pub async fn xattr_replace_only_on_missing_is_enodata(fx: Fixture) {
    if !prepare(&fx).await {
        return;
    }
    let path = fx.path("f");
    assert_errno(
        fx.fs
            .set_xattr(
                &path,
                "user.a",
                Bytes::from_static(b"v"),
                XattrMode::ReplaceOnly,
            )
            .await,
        ErrorKind::NoAttribute,
        format_args!("set_xattr {path} user.a ReplaceOnly"),
    );
    assert!(listed(&fx, "f").await.is_empty());
}

/// Reading or removing a missing attribute is `ENODATA`.
pub async fn xattr_get_and_remove_of_missing_are_enodata(fx: Fixture) {
    if !prepare(&fx).await {
        return;
    }
    set(&fx, "f", "user.other", b"v", XattrMode::Upsert).await;
    for name in ["f", "d"] {
        let path = fx.path(name);
        assert_errno(
            fx.fs.get_xattr(&path, "user.missing").await,
            ErrorKind::NoAttribute,
            format_args!("get_xattr {path} user.missing"),
        );
        assert_errno(
            fx.fs.remove_xattr(&path, "user.missing").await,
            ErrorKind::NoAttribute,
            format_args!("remove_xattr {path} user.missing"),
        );
    }
    assert_eq!(listed(&fx, "f").await, ["user.other"]);
}

/// Xattr calls on a missing path are `ENOENT`.
pub async fn xattr_on_missing_path_is_enoent(fx: Fixture) {
    if !prepare(&fx).await {
        return;
    }
    let path = fx.path("missing");
    let what = |op: &str| format!("{op} {path}");
    assert_errno(
        fx.fs
            .set_xattr(&path, "user.a", Bytes::from_static(b"v"), XattrMode::Upsert)
            .await,
        ErrorKind::NotFound,
        what("set_xattr"),
    );
    assert_errno(
        fx.fs.get_xattr(&path, "user.a").await,
        ErrorKind::NotFound,
        what("get_xattr"),
    );
    assert_errno(
        fx.fs.list_xattrs(&path).await,
        ErrorKind::NotFound,
        what("list_xattrs"),
    );
    assert_errno(
        fx.fs.remove_xattr(&path, "user.a").await,
        ErrorKind::NotFound,
        what("remove_xattr"),
    );
    assert!(!fx.is_there("missing").await);
}
