//! `vfs mount`: a mount table booted from a mounts config, served through FUSE at a host
//! directory in the foreground until Ctrl-C or SIGTERM; then the FUSE mount goes first and
//! every mount of the table after it, deepest first, so each driver shuts down.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use vfs_layer::actions::Vfs;
use vfs_layer::core::{ErrorKind, VfsError};
use vfs_layer::fuse::{FuseMount, FuseOptions};
use vfs_layer::snapshot::Repository;

use super::interrupt::EXIT_INTERRUPTED;
use super::output::Failure;
use super::serve::{boot, shutdown_signal, unmount_all};
use super::store::Context;

/// How the kernel sees the mount (`vfs mount`'s FUSE options).
#[derive(Debug, clap::Args)]
pub struct FuseArgs {
    /// Let other users (and root) use the mount; a non-root user needs `user_allow_other`
    /// in /etc/fuse.conf.
    #[arg(long)]
    allow_other: bool,
    /// Do not let the kernel check mode bits and ownership: every caller may do whatever
    /// the drivers allow.
    #[arg(long)]
    no_default_permissions: bool,
    /// How long the kernel caches attributes (500ms, 1s, 0 for never).
    #[arg(long, value_name = "TTL", default_value = "1s", value_parser = parse_ttl)]
    attr_ttl: Duration,
    /// How long the kernel caches a name's lookup (500ms, 1s, 0 for never).
    #[arg(long, value_name = "TTL", default_value = "1s", value_parser = parse_ttl)]
    entry_ttl: Duration,
    /// The name `mount` and /proc/mounts show as the source.
    #[arg(long, value_name = "NAME", default_value = "vfs")]
    fs_name: String,
}

impl FuseArgs {
    fn options(&self) -> FuseOptions {
        FuseOptions {
            allow_other: self.allow_other,
            default_permissions: !self.no_default_permissions,
            attr_ttl: self.attr_ttl,
            entry_ttl: self.entry_ttl,
            fs_name: self.fs_name.clone(),
            ..FuseOptions::default()
        }
    }
}

/// A cache lifetime: whole seconds (`2`, `2s`) or milliseconds (`500ms`).
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 500ms or 1s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(count)),
        "s" => Ok(Duration::from_secs(count)),
        _ => Err(format!("'{text}': the unit is ms or s")),
    }
}

/// `vfs mount <mountpoint> [--config FILE]`: returns once a signal arrived and everything
/// is unmounted; what is mounted where is printed as soon as the mount is live.
pub async fn mount(
    cx: &Context,
    mountpoint: &Path,
    config: Option<&Path>,
    fuse: &FuseArgs,
) -> Result<(), Failure> {
    // Checked before the drivers start, so a wrong mountpoint costs nothing.
    let mountpoint = usable_mountpoint(mountpoint)?;
    // No action here takes a snapshot, so no store is created on disk for one.
    let store = Arc::new(object_store::memory::InMemory::new());
    let vfs = Vfs::new(vfs_layer::registry(), Repository::open(store).await?);
    boot(&vfs, config).await?;
    // From here, before the mount is live and announced, a signal stops the command
    // cleanly (during the boot, nothing being mounted yet, it ends the process).
    let stop = shutdown_signal();
    let served = match attach(&vfs, &mountpoint, fuse.options()) {
        Ok(served) => served,
        Err(failure) => {
            unmount_all(&vfs).await;
            return Err(failure);
        }
    };
    announce(cx, &vfs, &mountpoint, config);

    let unmounted_outside = tokio::select! {
        () = stop => false,
        () = unmounted_from_outside(&mountpoint) => true,
    };
    // Unmounting waits for requests in flight and driver shutdowns can be slow; a
    // second signal is the way out.
    tokio::spawn(async {
        shutdown_signal().await;
        eprintln!("vfs: interrupted again; quitting without unmounting");
        std::process::exit(i32::from(EXIT_INTERRUPTED));
    });
    if unmounted_outside {
        // As a FUSE daemon does after `umount` or `fusermount -u`: the drivers are shut
        // down and the command ends normally. The session's own unmount has nothing
        // left to do (and would fail with EINVAL).
        drop(served);
        unmount_all(&vfs).await;
        eprintln!(
            "vfs: {} was unmounted from outside; the drivers are shut down",
            mountpoint.display()
        );
        return Ok(());
    }
    detach(&vfs, served).await
}

/// Resolves once `mountpoint` is no longer a mount point (someone ran `umount` on it).
/// Checked once a second: soon enough for a command to end, and simpler than waiting
/// for mountinfo's change notifications.
async fn unmounted_from_outside(mountpoint: &Path) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        // An unreadable mountinfo says nothing about the mount: keep serving.
        if let Ok(false) = is_mount_point(mountpoint) {
            return;
        }
    }
}

/// Serves the whole mount table of `vfs` at `mountpoint` (checked with
/// [`usable_mountpoint`]); mounts and unmounts made in the table afterwards show through
/// the kernel at once.
pub fn attach(vfs: &Vfs, mountpoint: &Path, options: FuseOptions) -> Result<FuseMount, Failure> {
    let mountpoint = usable_mountpoint(mountpoint)?;
    Ok(vfs_layer::fuse::mount_table(
        vfs.table().clone(),
        &mountpoint,
        options,
    )?)
}

/// Unmounts the FUSE mount (lazily if a process still uses it), then the table's mounts,
/// so no kernel request reaches a driver being shut down. The FUSE unmount's error, if
/// any, is returned after the drivers are shut down anyway.
pub async fn detach(vfs: &Vfs, served: FuseMount) -> Result<(), Failure> {
    let unmounted = served.unmount();
    unmount_all(vfs).await;
    Ok(unmounted?)
}

/// The absolute form of `path` if FUSE can be mounted there: an existing directory that
/// is not already a mount point (mounting over one would hide it, not fail).
pub fn usable_mountpoint(path: &Path) -> Result<PathBuf, Failure> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|err| VfsError::from_io("mount", err).with_path(shown.clone()))?;
    if !meta.is_dir() {
        return Err(Failure::new(
            ErrorKind::NotADirectory,
            "mount",
            &shown,
            "the mountpoint must be a directory",
        ));
    }
    let absolute = std::fs::canonicalize(path)
        .map_err(|err| VfsError::from_io("mount", err).with_path(shown.clone()))?;
    if is_mount_point(&absolute)? {
        return Err(Failure::new(
            ErrorKind::Busy,
            "mount",
            &absolute.display().to_string(),
            "something is already mounted here; unmount it first (umount PATH)",
        ));
    }
    Ok(absolute)
}

/// Whether the absolute path `path` is listed in `/proc/self/mountinfo`.
fn is_mount_point(path: &Path) -> Result<bool, Failure> {
    let mountinfo = std::fs::read("/proc/self/mountinfo")
        .map_err(|err| VfsError::from_io("read", err).with_path("/proc/self/mountinfo"))?;
    let listed = mount_points(&mountinfo).any(|point| point == path);
    Ok(listed)
}

/// The mount points `/proc/self/mountinfo` lists (its fifth field, with the kernel's
/// octal escapes of space, tab, newline and backslash undone).
fn mount_points(mountinfo: &[u8]) -> impl Iterator<Item = PathBuf> + '_ {
    mountinfo
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split(|&b| b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&first, tail)) = rest.split_first() {
        let octal = tail
            .get(..3)
            .filter(|digits| first == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)))
            .map(|digits| digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        match octal {
            Some(byte) => {
                out.push(byte);
                rest = &tail[3..];
            }
            None => {
                out.push(first);
                rest = tail;
            }
        }
    }
    out
}

/// Says what is mounted where, once the mount is live: a script reading stdout can start
/// using the mountpoint when the line (or the JSON document) arrives.
fn announce(cx: &Context, vfs: &Vfs, mountpoint: &Path, config: Option<&Path>) {
    let mounts = vfs.list_mounts();
    let line = if cx.json {
        json!({
            "mountpoint": mountpoint,
            "config": config,
            "mounts": mounts,
            "pid": std::process::id(),
        })
        .to_string()
    } else {
        let rows: Vec<String> = mounts
            .iter()
            .map(|mount| {
                let access = if mount.read_only { ", read-only" } else { "" };
                format!("{} ({}{access})", mount.path, mount.kind)
            })
            .collect();
        let source = config.map_or_else(
            || "a memory root".to_owned(),
            |path| path.display().to_string(),
        );
        format!(
            "mounted {source} at {}: {}; Ctrl-C or SIGTERM unmounts",
            mountpoint.display(),
            rows.join(", ")
        )
    };
    // A reader that went away must not stop the mount (println! would panic).
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_take_milliseconds_and_seconds() {
        assert_eq!(parse_ttl("0"), Ok(Duration::ZERO));
        assert_eq!(parse_ttl("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_ttl("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_ttl("3"), Ok(Duration::from_secs(3)));
        assert!(parse_ttl("1h").is_err());
        assert!(parse_ttl("ms").is_err());
        assert!(parse_ttl("-1s").is_err());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        let info = b"36 35 98:0 / /mnt/with\\040space rw - ext3 /dev/root rw\n\
                     37 35 0:5 / /back\\134slash rw - tmpfs tmpfs rw\n";
        let points: Vec<PathBuf> = mount_points(info).collect();
        assert_eq!(
            points,
            [
                PathBuf::from("/mnt/with space"),
                PathBuf::from("/back\\slash")
            ]
        );
        // A backslash not followed by three octal digits stays as it is.
        assert_eq!(unescape(b"a\\9b\\"), b"a\\9b\\");
    }

    #[test]
    fn the_root_is_already_a_mount_point() {
        let err = usable_mountpoint(Path::new("/")).unwrap_err();
        assert_eq!(err.code(), "EBUSY");
    }
}
