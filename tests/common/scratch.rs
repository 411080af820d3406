//! A per-process scratch directory on tmpfs for tests that leave directories behind for
//! inspection; each run removes what finished runs left.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// `/dev/shm/<prefix><pid>`, created on first use, after removing the directories of
/// earlier runs (with the same prefix) whose process is gone.
pub fn scratch(prefix: &str) -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        if let Ok(entries) = std::fs::read_dir("/dev/shm") {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(pid) = name.strip_prefix(prefix) else {
                    continue;
                };
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = PathBuf::from(format!("/dev/shm/{prefix}{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the scratch directory on /dev/shm");
        dir
    })
}
