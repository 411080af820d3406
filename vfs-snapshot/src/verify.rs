//! Re-hashing everything a snapshot reaches.

use std::collections::HashSet;

use vfs_core::{Result, VfsError};

use crate::digest::{Digest, SnapshotId};
use crate::store::{pack_key, Repository};
use crate::tree::{Node, Tree};

/// What is wrong with a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// No index names it, or its pack is gone.
    Missing,
    /// Its bytes do not decompress, do not match its digest, or (a tree) do not parse.
    Corrupt,
}

/// One bad blob, where it should be and the first path that needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The blob's digest.
    pub blob: Digest,
    /// The store object that holds (or should hold) it, when an index names one.
    pub object: Option<String>,
    /// The first path in the snapshot found needing it (`/` for the root tree).
    pub path: String,
    /// Missing or corrupt.
    pub kind: ProblemKind,
    /// The error met, on one line.
    pub message: String,
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Trees read and checked.
    pub trees: u64,
    /// Chunks read and checked.
    pub chunks: u64,
    /// Bad blobs; empty means the snapshot is whole.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether every reachable blob is present and intact.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Repository {
    /// Reads every blob snapshot `id` reaches, checks that it decompresses to bytes with
    /// its digest (and, for trees, that it parses), and reports each one that does not.
    /// Each blob is checked once, however many files share it; every blob that cannot be
    /// read is reported (a store that fails outright shows as problems, not as an error).
    ///
    /// ```
    /// # async fn demo(repo: &vfs_snapshot::Repository, id: vfs_snapshot::SnapshotId) -> vfs_core::Result<()> {
    /// let report = repo.verify(&id).await?;
    /// for p in &report.problems {
    ///     eprintln!("{:?} blob {} ({:?}) needed by {}", p.kind, p.blob, p.object, p.path);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn verify(&self, id: &SnapshotId) -> Result<VerifyReport> {
        let mut report = VerifyReport::default();
        let mut seen: HashSet<Digest> = HashSet::new();
        let mut pending: Vec<(String, Digest)> = vec![("/".to_owned(), *id)];
        while let Some((path, tree_id)) = pending.pop() {
            if !seen.insert(tree_id) {
                continue;
            }
            report.trees += 1;
            let tree = match self.fetch_blob(&tree_id).await {
                Ok(data) => match Tree::decode(&tree_id, &data) {
                    Ok(tree) => tree,
                    Err(err) => {
                        self.note(&mut report, tree_id, &path, false, &err);
                        continue;
                    }
                },
                Err((missing, err)) => {
                    self.note(&mut report, tree_id, &path, missing, &err);
                    continue;
                }
            };
            for entry in &tree.entries {
                let at = if path == "/" {
                    format!("/{}", entry.name)
                } else {
                    format!("{path}/{}", entry.name)
                };
                match &entry.node {
                    Node::Directory { tree } => pending.push((at, *tree)),
                    Node::File { chunks, .. } => {
                        for chunk in chunks {
                            if !seen.insert(chunk.id) {
                                continue;
                            }
                            report.chunks += 1;
                            if let Err((missing, err)) = self.fetch_blob(&chunk.id).await {
                                self.note(&mut report, chunk.id, &at, missing, &err);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(report)
    }

    fn note(
        &self,
        report: &mut VerifyReport,
        blob: Digest,
        path: &str,
        missing: bool,
        err: &VfsError,
    ) {
        let location = self.locate(&blob);
        report.problems.push(Problem {
            blob,
            object: location.map(|l| pack_key(&l.pack)),
            path: path.to_owned(),
            kind: if missing {
                ProblemKind::Missing
            } else {
                ProblemKind::Corrupt
            },
            message: err.to_string(),
        });
    }
}
