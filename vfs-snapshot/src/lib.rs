//! Content-addressed snapshots of any `FileSystem`.
//!
//! Not implemented yet: the snapshot issue builds this crate. It exists now so the
//! workspace has its final shape and the facade can depend on it.
