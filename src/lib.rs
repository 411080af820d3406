pub use vfs_core;
