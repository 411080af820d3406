//! FUSE frontend that serves any `FileSystem` to real processes.
//!
//! Not implemented yet: the FUSE issue builds this crate. It exists now so the
//! workspace has its final shape and the facade can depend on it.
