//! The shared conformance suite against the memory driver: used directly with `/` as the
//! base, and mounted inside a `MountTable` at a non-root path beside other mounts.

use std::sync::Arc;

use vfs_core::conformance::Fixture;
use vfs_core::{MountOptions, MountTable, VfsPath};
use vfs_drivers::memory::MemoryFs;

mod direct {
    use super::*;

    async fn make() -> Fixture {
        Fixture::new(Arc::new(MemoryFs::new()), VfsPath::root())
    }

    vfs_core::conformance_suite!(make);
}

mod in_mount_table {
    use super::*;

    async fn make() -> Fixture {
        let table = MountTable::new();
        let mount = |path: &str| VfsPath::new(path).expect("valid mount path");
        table
            .mount(
                &VfsPath::root(),
                Arc::new(MemoryFs::new()),
                MountOptions::default(),
            )
            .await
            .expect("mount the root");
        table
            .mount(
                &mount("/mnt/data"),
                Arc::new(MemoryFs::new()),
                MountOptions::default(),
            )
            .await
            .expect("mount the driver under test");
        // A sibling and a read-only neighbour, so resolution has to pick the right mount.
        table
            .mount(
                &mount("/mnt/other"),
                Arc::new(MemoryFs::new()),
                MountOptions::default(),
            )
            .await
            .expect("mount a sibling");
        table
            .mount(
                &mount("/mnt/data-ro"),
                Arc::new(MemoryFs::new()),
                MountOptions { read_only: true },
            )
            .await
            .expect("mount a read-only neighbour");
        Fixture::mounted(Arc::new(table), mount("/mnt/data"), mount("/mnt/data"))
    }

    vfs_core::conformance_suite!(make);
}
