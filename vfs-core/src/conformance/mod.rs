//! The shared conformance suite: one set of async cases every [`FileSystem`] must pass.
//!
//! Each case is a plain `pub async fn case_name(fx: Fixture)` that works only beneath
//! [`Fixture::base`], an existing, empty, writable directory of [`Fixture::fs`] (`/` for a
//! bare driver, `/mnt/data` for a driver mounted inside a mount table). Cases assert values
//! *and* errnos, following the semantics documented on [`FileSystem`]: Linux on tmpfs
//! unless a method says otherwise.
//!
//! # Running it
//!
//! A driver's test file builds a fixture in an `async fn` and invokes
//! [`conformance_suite!`](crate::conformance_suite) once per module; it expands to one
//! `#[test]` per case, named after the case, each on its own multi-threaded tokio runtime
//! (the caller needs no tokio dependency of its own):
//!
//! ```ignore
//! use std::sync::Arc;
//! use vfs_core::conformance::Fixture;
//! use vfs_core::VfsPath;
//!
//! async fn make() -> Fixture {
//!     Fixture::new(Arc::new(vfs_drivers::memory::MemoryFs::new()), VfsPath::root())
//! }
//!
//! vfs_core::conformance_suite!(make);
//! ```
//!
//! The argument is any expression callable with no arguments that returns a future of a
//! [`Fixture`]: the path of an `async fn`, or a closure such as `|| async { ... }`.
//!
//! # Capabilities
//!
//! Every case reads [`FileSystem::capabilities`]. Where a capability it needs is `false`,
//! the case asserts the documented errno instead of the behaviour (`ENOTSUP`, or `EPERM`
//! for hard links as Linux answers on filesystems without them) and ends there; nothing is
//! skipped silently. Specifically:
//!
//! - `symlinks`: `symlink` fails with `ENOTSUP`; `hard_links`: `hard_link` fails with
//!   `EPERM`; `xattrs`: every xattr call fails with `ENOTSUP`; `permissions`, `ownership`,
//!   `set_times`: `set_permissions`, `set_owner`, `set_times` fail with `ENOTSUP` (and the
//!   cases that need `set_times` to age a timestamp assert that instead);
//! - `random_writes`: `write_at` anywhere but the end of the file fails with `ENOTSUP`;
//! - `open_unlinked`: reading through a handle whose file was unlinked fails with `ENOTSUP`;
//! - `atomic_append`: the concurrent-appenders case runs its appenders one after the other
//!   instead of at once, and still checks every record;
//! - `sparse_files`: holes must still read as zeros; only the allocated-blocks check is
//!   dropped;
//! - `atomic_rename` and `empty_directories` change nothing yet: atomicity cannot be
//!   observed deterministically, and the suite assumes empty directories persist.
//!
//! Read-only filesystems (`caps.read_only`) are out of scope: the cases create what they
//! inspect, and a read-only driver would need a pre-filled tree. Every case fails at once
//! with a clear message when given one.
//!
//! # Determinism
//!
//! No case sleeps or measures time. Timestamp cases age a time with an explicit
//! `set_times` first and check that the operation moved it; the few ctime checks, where
//! ctime cannot be set, wait (yielding, without sleeping) until the wall clock has moved
//! past the current ctime, which assumes the driver stamps times from a clock at least as
//! fine as [`SystemTime`](std::time::SystemTime).

use std::fmt::{self, Debug, Display};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

use crate::{
    Capabilities, ErrorKind, FileKind, FileSystem, Metadata, OpenOptions, Result, SetTime,
    Timestamp, VfsPath,
};

/// The tokio the generated tests run on, re-exported so callers need no dependency of their
/// own.
pub use tokio;

pub use forward::Forward;

pub mod dirs;
pub mod files;
mod forward;
pub mod handles;
pub mod hard_links;
pub mod limits;
pub mod metadata;
pub mod open;
pub mod rename;
pub mod symlinks;
pub mod xattrs;

/// Lists every case exactly once, as `module::case`, and hands the list to
/// `__vfs_conformance_expand!` with the selector it was given. Adding a case is one line
/// here.
#[doc(hidden)]
#[macro_export]
macro_rules! __vfs_conformance_for_each_case {
    ($($selector:tt)*) => {
        $crate::__vfs_conformance_expand! {
            [$($selector)*]
            // files
            files::write_file_then_read_file_round_trips
            files::write_file_replaces_longer_content
            files::write_file_of_nothing_creates_an_empty_file
            files::large_file_round_trips
            files::read_file_of_missing_is_enoent
            files::read_file_of_dir_is_eisdir
            files::write_file_onto_dir_is_eisdir
            files::write_file_in_missing_dir_is_enoent
            files::path_through_a_file_is_enotdir
            files::trailing_slash_on_a_file_is_enotdir
            files::trailing_slash_on_a_dir_is_accepted
            files::create_with_trailing_slash_is_eisdir
            files::remove_file_removes_the_name
            files::remove_file_of_missing_is_enoent
            files::remove_file_of_dir_is_eisdir
            files::pread_and_pwrite_work_at_offsets
            files::pread_past_eof_is_empty
            files::pwrite_past_eof_leaves_a_zero_hole
            files::pwrite_on_missing_is_enoent
            files::sparse_write_at_one_mib_reads_zeros_in_the_hole
            files::truncate_up_reads_zeros
            files::truncate_down_then_up_reads_zeros_not_old_data
            files::truncate_of_dir_is_eisdir
            files::truncate_of_missing_is_enoent
            files::exists_reports_files_dirs_and_missing
            files::unicode_and_odd_names_round_trip
            // dirs
            dirs::create_dir_makes_an_empty_directory
            dirs::create_dir_of_existing_is_eexist
            dirs::create_dir_in_missing_parent_is_enoent
            dirs::create_dir_under_a_file_is_enotdir
            dirs::create_dir_all_creates_every_missing_level
            dirs::create_dir_all_is_idempotent
            dirs::create_dir_all_over_a_file_fails
            dirs::read_dir_lists_names_kinds_and_inos
            dirs::read_dir_plus_matches_read_dir_and_lstat
            dirs::read_dir_of_file_is_enotdir
            dirs::read_dir_of_missing_is_enoent
            dirs::remove_dir_removes_an_empty_dir
            dirs::remove_dir_of_non_empty_is_enotempty
            dirs::remove_dir_of_file_is_enotdir
            dirs::remove_dir_of_missing_is_enoent
            dirs::remove_dir_all_removes_a_deep_tree_but_not_symlink_targets
            dirs::remove_dir_all_of_a_file_removes_it
            dirs::dir_nlink_counts_subdirectories
            dirs::inos_are_distinct
            // rename
            rename::rename_file_moves_content_and_inode
            rename::rename_file_over_file_replaces_it
            rename::rename_across_directories
            rename::rename_dir_moves_its_subtree
            rename::rename_dir_over_empty_dir_replaces_it
            rename::rename_over_non_empty_dir_is_enotempty
            rename::rename_file_over_dir_is_eisdir
            rename::rename_dir_over_file_is_enotdir
            rename::rename_dir_into_own_subtree_is_einval
            rename::rename_onto_itself_is_a_no_op
            rename::rename_onto_another_link_of_the_same_file_is_a_no_op
            rename::rename_of_missing_is_enoent
            rename::rename_into_missing_dir_is_enoent
            rename::rename_file_with_trailing_slash_is_enotdir
            rename::rename_dir_with_trailing_slashes_works
            rename::rename_symlink_moves_the_link_not_the_target
            // symlinks
            symlinks::symlink_and_read_link_round_trip_verbatim
            symlinks::stat_follows_symlinks_and_lstat_does_not
            symlinks::dangling_symlink_stat_is_enoent_but_lstat_works
            symlinks::exists_is_false_for_a_dangling_symlink
            symlinks::symlink_loop_is_eloop
            symlinks::symlink_chain_of_max_hops_resolves
            symlinks::symlink_chain_over_max_hops_is_eloop
            symlinks::relative_symlink_resolves_from_its_directory
            symlinks::absolute_symlink_resolves_from_the_fs_root
            symlinks::symlink_in_the_middle_of_a_path_is_followed
            symlinks::read_link_of_non_symlink_is_einval
            symlinks::symlink_over_existing_is_eexist
            symlinks::realpath_resolves_every_symlink
            symlinks::realpath_of_missing_or_looping_fails
            symlinks::create_through_a_dangling_symlink_creates_its_target
            symlinks::create_new_on_a_dangling_symlink_is_eexist
            symlinks::trailing_slash_follows_a_symlink_to_a_dir
            symlinks::remove_file_of_a_symlink_removes_only_the_link
            symlinks::remove_dir_of_a_symlink_to_a_dir_is_enotdir
            symlinks::remove_dir_all_of_a_symlink_removes_only_the_link
            symlinks::create_dir_all_through_a_symlink_to_a_dir
            symlinks::metadata_calls_follow_symlinks
            // hard links
            hard_links::hard_link_shares_content_and_inode
            hard_links::unlinking_one_hard_link_keeps_the_other
            hard_links::hard_link_to_dir_is_eperm
            hard_links::hard_link_over_existing_is_eexist
            hard_links::hard_link_of_missing_is_enoent
            hard_links::hard_link_to_a_symlink_links_the_symlink_itself
            // open options
            open::create_new_creates_a_missing_file
            open::create_new_on_existing_is_eexist
            open::open_missing_without_create_is_enoent
            open::open_with_create_keeps_existing_content
            open::open_with_truncate_empties_the_file
            open::write_without_truncate_overwrites_in_place
            open::append_writes_go_to_the_end_whatever_the_offset
            open::open_dir_for_write_is_eisdir
            open::read_on_write_only_handle_is_ebadf
            open::write_on_read_only_handle_is_ebadf
            open::set_len_on_read_only_handle_fails
            open::empty_write_past_eof_does_not_extend
            // handles
            handles::handle_reads_after_unlink
            handles::handle_writes_after_unlink
            handles::handle_reads_old_content_after_rename_replaces_the_name
            handles::handle_follows_its_file_across_rename
            handles::handle_stat_tracks_changes
            handles::handles_on_one_file_see_each_other
            handles::concurrent_appenders_lose_no_record
            handles::concurrent_creates_in_one_dir_all_land
            handles::concurrent_create_new_has_one_winner
            // metadata
            metadata::st_mode_has_the_type_bits
            metadata::new_file_mode_comes_from_open_options
            metadata::write_file_creates_mode_0644
            metadata::create_dir_keeps_its_mode
            metadata::set_permissions_keeps_all_twelve_bits
            metadata::set_owner_changes_uid_and_gid
            metadata::set_owner_clears_setuid_and_setgid
            metadata::set_times_sets_exact_nanoseconds
            metadata::set_times_omit_leaves_the_time
            metadata::set_times_now_uses_the_current_time
            metadata::write_updates_mtime_and_ctime
            metadata::truncate_updates_mtime_and_ctime
            metadata::set_permissions_updates_ctime_only
            metadata::hard_link_updates_ctime
            metadata::create_and_remove_update_parent_mtime
            metadata::rename_updates_both_parents_mtime
            metadata::metadata_calls_on_missing_are_enoent
            // xattrs
            xattrs::xattr_set_get_list_remove
            xattrs::handle_xattrs_match_the_path_calls
            xattrs::xattr_upsert_replaces_the_value
            xattrs::xattr_create_only_on_existing_is_eexist
            xattrs::xattr_replace_only_on_missing_is_enodata
            xattrs::xattr_get_and_remove_of_missing_are_enodata
            xattrs::xattr_on_missing_path_is_enoent
            // limits
            limits::name_of_255_bytes_works
            limits::name_of_256_bytes_is_enametoolong
            limits::path_over_4095_bytes_is_enametoolong
            limits::statfs_reports_sane_numbers
            limits::statfs_of_missing_is_enoent
            limits::many_entries_are_listed_exactly_once
            limits::extreme_offsets_and_lengths_fail_cleanly
        }
    };
}

/// Turns the case list into tests or into the list of names.
#[doc(hidden)]
#[macro_export]
macro_rules! __vfs_conformance_expand {
    ([tests $make:expr] $($module:ident :: $case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_case(
                    stringify!($case),
                    $make,
                    $crate::conformance::$module::$case,
                );
            }
        )*
    };
    ([names] $($module:ident :: $case:ident)*) => {
        &[$(stringify!($case)),*]
    };
}

/// Expands to one `#[test]` per conformance case, named after the case, each running the
/// case on a fixture made by `$make`.
///
/// `$make` is anything callable with no arguments that returns a future of a
/// [`Fixture`](crate::conformance::Fixture): usually the path of an `async fn make() ->
/// Fixture`. Invoke it once per module; the tests need no tokio dependency of the caller.
///
/// ```ignore
/// async fn make() -> vfs_core::conformance::Fixture { /* ... */ }
/// vfs_core::conformance_suite!(make);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr $(,)?) => {
        $crate::__vfs_conformance_for_each_case!(tests $make);
    };
}

/// The name of every case, in the order they run in.
pub const CASE_NAMES: &[&str] = crate::__vfs_conformance_for_each_case!(names);

/// Runs one case on a fresh fixture, on a multi-threaded tokio runtime of its own; what the
/// tests generated by [`conformance_suite!`](crate::conformance_suite) call.
///
/// Panics (failing the test) when the fixture is unusable or the case fails.
pub fn run_case<M, MF, C, CF>(name: &str, make: M, case: C)
where
    M: FnOnce() -> MF,
    MF: Future<Output = Fixture>,
    C: FnOnce(Fixture) -> CF,
    CF: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("conformance: cannot build a tokio runtime");
    runtime.block_on(async move {
        let fx = make().await;
        fx.check_preconditions(name).await;
        case(fx).await;
    });
}

/// What every case runs against: a filesystem and the directory the case may use.
#[derive(Clone)]
pub struct Fixture {
    /// The filesystem under test.
    pub fs: Arc<dyn FileSystem>,
    /// An existing, empty, writable directory of `fs`; cases touch nothing outside it.
    pub base: VfsPath,
    /// Where absolute symlink targets start, as a path of `fs`: `/` for a driver, the
    /// mount point for a driver inside a mount table (symlinks resolve within their mount).
    pub symlink_root: VfsPath,
    /// Whatever must live as long as the case (a scratch directory on the host, a server).
    keep_alive: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Debug for Fixture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fixture")
            .field("fs", &self.fs.kind())
            .field("base", &self.base)
            .field("symlink_root", &self.symlink_root)
            .finish()
    }
}

/// A time long ago (2001-09-09, with nanoseconds) that cases set before an operation to see
/// whether the operation moves it.
pub const OLD_TIME: Timestamp = Timestamp(1_000_000_000_123_456_789);

impl Fixture {
    /// A fixture over `fs`, working beneath `base`.
    pub fn new(fs: Arc<dyn FileSystem>, base: VfsPath) -> Fixture {
        Fixture {
            fs,
            base,
            symlink_root: VfsPath::root(),
            keep_alive: None,
        }
    }

    /// Keeps `guard` alive until the case ends: a `tempfile::TempDir` the driver works in
    /// is removed when the case is done with it.
    pub fn keeping(mut self, guard: impl std::any::Any + Send + Sync) -> Fixture {
        self.keep_alive = Some(Arc::new(guard));
        self
    }

    /// A fixture over a mount table `fs` whose driver under test is mounted at
    /// `mount_point`, working beneath `base` (at or below the mount point).
    pub fn mounted(fs: Arc<dyn FileSystem>, base: VfsPath, mount_point: VfsPath) -> Fixture {
        assert!(
            base.starts_with(&mount_point),
            "the base {base} must lie within the mount point {mount_point}"
        );
        Fixture {
            fs,
            base,
            symlink_root: mount_point,
            keep_alive: None,
        }
    }

    /// `relative` placed beneath the base: `fx.path("a/b")`; `""` is the base itself, and a
    /// trailing slash is kept (`fx.path("d/")`).
    pub fn path(&self, relative: &str) -> VfsPath {
        if relative.is_empty() {
            return self.base.clone();
        }
        let joined = format!("{}/{}", self.base.as_str(), relative);
        VfsPath::new(&joined).unwrap_or_else(|err| panic!("bad case path {joined:?}: {err}"))
    }

    /// The absolute symlink target that names `relative` beneath the base, as seen from
    /// where absolute targets start ([`Fixture::symlink_root`]).
    pub fn target(&self, relative: &str) -> String {
        let path = self.path(relative);
        match path.strip_prefix(&self.symlink_root) {
            Some(inside) => inside.as_str().to_owned(),
            None => path.as_str().to_owned(),
        }
    }

    /// The filesystem's capabilities; fails the case for a read-only filesystem, which the
    /// suite does not cover.
    #[track_caller]
    pub fn caps(&self) -> Capabilities {
        let caps = self.fs.capabilities();
        assert!(
            !caps.read_only,
            "the conformance suite needs a writable filesystem; {} declares read_only",
            self.fs.kind()
        );
        caps
    }

    async fn check_preconditions(&self, case: &str) {
        let caps = self.fs.capabilities();
        assert!(
            !caps.read_only,
            "{case}: the conformance suite needs a writable filesystem, {} is read-only",
            self.fs.kind()
        );
        let meta = self
            .fs
            .stat(&self.base)
            .await
            .unwrap_or_else(|err| panic!("{case}: the fixture base is unusable: {err}"));
        assert!(
            meta.is_dir(),
            "{case}: the fixture base {} is not a directory",
            self.base
        );
        let entries = self
            .fs
            .read_dir(&self.base)
            .await
            .unwrap_or_else(|err| panic!("{case}: cannot list the fixture base: {err}"));
        assert!(
            entries.is_empty(),
            "{case}: the fixture base {} is not empty: {entries:?}",
            self.base
        );
    }

    /// Writes a whole file, failing the case on error.
    pub async fn write(&self, relative: &str, data: impl Into<Bytes>) {
        let path = self.path(relative);
        self.fs
            .write_file(&path, data.into())
            .await
            .must(format_args!("write_file {path}"));
    }

    /// Reads a whole file, failing the case on error.
    pub async fn read(&self, relative: &str) -> Bytes {
        let path = self.path(relative);
        self.fs
            .read_file(&path)
            .await
            .must(format_args!("read_file {path}"))
    }

    /// Creates one directory (mode `0o755`), failing the case on error.
    pub async fn mkdir(&self, relative: &str) {
        let path = self.path(relative);
        self.fs
            .create_dir(&path, 0o755)
            .await
            .must(format_args!("create_dir {path}"));
    }

    /// Creates a symlink, failing the case on error.
    pub async fn symlink(&self, target: &str, relative: &str) {
        let path = self.path(relative);
        self.fs
            .symlink(target, &path)
            .await
            .must(format_args!("symlink {path} -> {target}"));
    }

    /// Stats (following symlinks), failing the case on error.
    pub async fn stat(&self, relative: &str) -> Metadata {
        let path = self.path(relative);
        self.fs.stat(&path).await.must(format_args!("stat {path}"))
    }

    /// Lstats, failing the case on error.
    pub async fn lstat(&self, relative: &str) -> Metadata {
        let path = self.path(relative);
        self.fs
            .lstat(&path)
            .await
            .must(format_args!("lstat {path}"))
    }

    /// The sorted names in a directory, failing the case on error.
    pub async fn names(&self, relative: &str) -> Vec<String> {
        let path = self.path(relative);
        let mut names: Vec<String> = self
            .fs
            .read_dir(&path)
            .await
            .must(format_args!("read_dir {path}"))
            .into_iter()
            .map(|entry| entry.name)
            .collect();
        names.sort();
        names
    }

    /// Whether anything (a dangling symlink included) is at `relative`.
    pub async fn is_there(&self, relative: &str) -> bool {
        let path = self.path(relative);
        match self.fs.lstat(&path).await {
            Ok(_) => true,
            Err(err) if err.kind() == ErrorKind::NotFound => false,
            Err(err) => panic!("lstat {path}: {err}"),
        }
    }

    /// Sets both atime and mtime of `relative` to [`OLD_TIME`], failing the case on error.
    pub async fn age(&self, relative: &str) {
        let path = self.path(relative);
        self.fs
            .set_times(&path, SetTime::At(OLD_TIME), SetTime::At(OLD_TIME))
            .await
            .must(format_args!("set_times {path}"));
    }

    /// Opens `relative`, failing the case on error.
    pub async fn open(&self, relative: &str, options: OpenOptions) -> Box<dyn crate::FileHandle> {
        let path = self.path(relative);
        self.fs
            .open(&path, options)
            .await
            .must(format_args!("open {path} {options:?}"))
    }

    /// When symlinks are not supported, asserts that creating one fails with `ENOTSUP` and
    /// returns `false`; the case then ends.
    pub async fn supports_symlinks(&self) -> bool {
        if self.caps().symlinks {
            return true;
        }
        let path = self.path("unsupported-symlink");
        assert_errno(
            self.fs.symlink("target", &path).await,
            ErrorKind::Unsupported,
            format_args!("symlink {path} on a driver without symlinks"),
        );
        false
    }

    /// When hard links are not supported, asserts that creating one fails with `EPERM`
    /// (as Linux answers) and returns `false`.
    pub async fn supports_hard_links(&self) -> bool {
        if self.caps().hard_links {
            return true;
        }
        self.write("unsupported-link-source", "x").await;
        let (from, to) = (
            self.path("unsupported-link-source"),
            self.path("unsupported-link"),
        );
        assert_errno(
            self.fs.hard_link(&from, &to).await,
            ErrorKind::NotPermitted,
            format_args!("hard_link {from} {to} on a driver without hard links"),
        );
        false
    }

    /// When `set_times` is not supported, asserts that it fails with `ENOTSUP` and returns
    /// `false`.
    pub async fn supports_set_times(&self) -> bool {
        if self.caps().set_times {
            return true;
        }
        let path = self.path("");
        assert_errno(
            self.fs
                .set_times(&path, SetTime::At(OLD_TIME), SetTime::At(OLD_TIME))
                .await,
            ErrorKind::Unsupported,
            format_args!("set_times {path} on a driver without set_times"),
        );
        false
    }

    /// When permission bits are not stored, asserts that `set_permissions` fails with
    /// `ENOTSUP` and returns `false`.
    pub async fn supports_permissions(&self) -> bool {
        if self.caps().permissions {
            return true;
        }
        let path = self.path("");
        assert_errno(
            self.fs.set_permissions(&path, 0o700).await,
            ErrorKind::Unsupported,
            format_args!("set_permissions {path} on a driver without permissions"),
        );
        false
    }

    /// When ownership is not stored, asserts that `set_owner` fails with `ENOTSUP` and
    /// returns `false`.
    pub async fn supports_ownership(&self) -> bool {
        if self.caps().ownership {
            return true;
        }
        let path = self.path("");
        assert_errno(
            self.fs.set_owner(&path, Some(1000), Some(1000)).await,
            ErrorKind::Unsupported,
            format_args!("set_owner {path} on a driver without ownership"),
        );
        false
    }

    /// When random writes are not supported, asserts that writing before the end of a
    /// file fails with `ENOTSUP` and returns `false`.
    pub async fn supports_random_writes(&self) -> bool {
        if self.caps().random_writes {
            return true;
        }
        self.write("unsupported-random-write", "0123456789").await;
        let path = self.path("unsupported-random-write");
        assert_errno(
            self.fs.pwrite(&path, 2, Bytes::from_static(b"xx")).await,
            ErrorKind::Unsupported,
            format_args!("pwrite {path} at 2 on a driver without random writes"),
        );
        false
    }
}

/// Unwraps a result, failing the case with what was being done and the error (whose
/// display names the operation and the path).
pub trait Must<T> {
    /// The value, or a panic naming `what` and the error.
    fn must(self, what: impl Display) -> T;
}

impl<T> Must<T> for Result<T> {
    #[track_caller]
    fn must(self, what: impl Display) -> T {
        match self {
            Ok(value) => value,
            Err(err) => panic!("{what}: unexpected error: {err}"),
        }
    }
}

/// Asserts that `result` failed with `expected`; `what` names the operation and path for
/// the failure message.
#[track_caller]
pub fn assert_errno<T>(result: Result<T>, expected: ErrorKind, what: impl Display) {
    assert_errno_any(result, &[expected], what);
}

/// Asserts that `result` failed with one of `expected` (for the few places where POSIX or
/// the contract leaves the choice to the implementation).
#[track_caller]
pub fn assert_errno_any<T>(result: Result<T>, expected: &[ErrorKind], what: impl Display) {
    let codes: Vec<&str> = expected.iter().map(|kind| kind.code()).collect();
    let codes = codes.join(" or ");
    match result {
        Ok(_) => panic!(
            "{what}: expected {codes}, but it succeeded (returning {})",
            std::any::type_name::<T>()
        ),
        Err(err) => assert!(
            expected.contains(&err.kind()),
            "{what}: expected {codes}, got {err}"
        ),
    }
}

/// Asserts the metadata's kind.
#[track_caller]
pub fn assert_kind(meta: &Metadata, kind: FileKind, what: impl Display) {
    assert_eq!(meta.kind, kind, "{what}: wrong kind in {meta:?}");
}

/// Waits, yielding to the runtime without sleeping, until the wall clock has moved past
/// `time`, so that a timestamp stamped afterwards must be later.
pub async fn wait_for_clock_past(time: Timestamp) {
    while Timestamp::now() <= time {
        tokio::task::yield_now().await;
    }
}

/// Bytes made of a repeating, position-dependent pattern (no runs of zeros), for checking
/// that content is neither shifted nor torn.
pub fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| ((i % 251) as u8 ^ seed) | 1)
        .collect::<Vec<u8>>()
        .into()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::CASE_NAMES;

    #[test]
    fn every_case_is_listed_once() {
        let unique: HashSet<_> = CASE_NAMES.iter().collect();
        assert_eq!(unique.len(), CASE_NAMES.len(), "a case is listed twice");
        assert!(CASE_NAMES.len() >= 100);
    }

    /// A case written in a topic module but missing from the list would never run.
    #[test]
    fn every_case_function_is_listed() {
        let sources = [
            include_str!("dirs.rs"),
            include_str!("files.rs"),
            include_str!("handles.rs"),
            include_str!("hard_links.rs"),
            include_str!("limits.rs"),
            include_str!("metadata.rs"),
            include_str!("open.rs"),
            include_str!("rename.rs"),
            include_str!("symlinks.rs"),
            include_str!("xattrs.rs"),
        ];
        let defined: Vec<&str> = sources
            .iter()
            .flat_map(|source| source.lines())
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .collect();
        for name in &defined {
            assert!(CASE_NAMES.contains(name), "case {name} is not listed");
        }
        assert_eq!(defined.len(), CASE_NAMES.len());
    }
}
