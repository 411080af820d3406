//! Open files: shared state per object, range reads with readahead, buffered writes that
//! stream into a multipart upload once they outgrow a part.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStoreExt, PutMode, PutPayload};
use parking_lot::Mutex;
use vfs_core::{async_trait, ErrorKind, FileHandle, Metadata, Result, Timestamp, VfsError};

use super::layout::{display, Entry};
use super::store::Inner;

/// What an open file's content is right now.
pub(crate) enum Content {
    /// The object in the store, as of `etag`.
    Remote { size: u64, etag: Option<String> },
    /// The whole content in memory (a small file being changed, or a cache of it).
    Buffered(Vec<u8>),
    /// A large file being written sequentially: everything before `len - tail.len()` is
    /// uploaded in parts, the object appears when the upload completes.
    Streaming(Box<Streaming>),
}

pub(crate) struct Streaming {
    upload: Box<dyn MultipartUpload>,
    len: u64,
    tail: Vec<u8>,
}

pub(crate) struct FileState {
    pub content: Content,
    /// Changed here and not yet published to the store.
    pub dirty: bool,
    /// When the content last changed here.
    pub changed: Option<Timestamp>,
    /// Bumped on every change, so readahead buffers know they are stale.
    pub generation: u64,
    /// Why the file can no longer be used (an upload failed and was aborted).
    pub poisoned: Option<String>,
}

impl FileState {
    fn size(&self) -> u64 {
        match &self.content {
            Content::Remote { size, .. } => *size,
            Content::Buffered(data) => data.len() as u64,
            Content::Streaming(upload) => upload.len,
        }
    }

    fn touch(&mut self) {
        self.dirty = true;
        self.changed = Some(Timestamp::now());
        self.generation += 1;
    }
}

/// One object opened through this driver, shared by all of its handles, so that handles
/// (and path calls) of one driver see each other's writes at once.
pub(crate) struct OpenFile {
    pub key: Mutex<Path>,
    pub comps: Mutex<Vec<String>>,
    pub state: tokio::sync::Mutex<FileState>,
    pub unlinked: AtomicBool,
    pub handles: AtomicUsize,
}

impl OpenFile {
    pub(crate) fn new(key: Path, comps: Vec<String>, content: Content) -> OpenFile {
        OpenFile {
            key: Mutex::new(key),
            comps: Mutex::new(comps),
            state: tokio::sync::Mutex::new(FileState {
                content,
                dirty: false,
                changed: None,
                generation: 0,
                poisoned: None,
            }),
            unlinked: AtomicBool::new(false),
            handles: AtomicUsize::new(0),
        }
    }

    /// Applies unpublished changes (size, times) to metadata read from the store.
    pub(crate) async fn overlay(&self, meta: &mut Metadata) {
        let state = self.state.lock().await;
        if state.poisoned.is_some() {
            return;
        }
        if !matches!(state.content, Content::Remote { .. }) || state.dirty {
            meta.size = state.size();
            meta.blocks = meta.size.div_ceil(512);
        }
        if let Some(changed) = state.changed.filter(|_| state.dirty) {
            meta.mtime = changed;
            meta.ctime = meta.ctime.max(changed);
        }
    }

    /// Replaces the content after a whole-object write through the path.
    pub(crate) async fn replaced(&self, size: u64, etag: Option<String>) {
        let mut state = self.state.lock().await;
        state.content = Content::Remote { size, etag };
        state.dirty = false;
        state.generation += 1;
    }

    fn shown(&self) -> String {
        display(&self.comps.lock())
    }
}

/// Publishes the open file's unpublished changes: a PUT of the buffered content, or the
/// completion of a streaming upload (with `finish`; without it a streaming upload only
/// sends its full parts). Then moves the mtime of the file's stored entry, if it has one.
pub(crate) async fn publish(inner: &Inner, file: &OpenFile, finish: bool) -> Result<()> {
    let mut state = file.state.lock().await;
    if let Some(why) = &state.poisoned {
        return Err(VfsError::new(ErrorKind::Io, "close")
            .with_path(file.shown())
            .with_detail(why.clone()));
    }
    if !state.dirty {
        return Ok(());
    }
    if file.unlinked.load(Ordering::SeqCst) {
        // Publishing would bring the name back.
        if let Content::Streaming(_) = &state.content {
            if let Content::Streaming(upload) =
                std::mem::replace(&mut state.content, Content::Buffered(Vec::new()))
            {
                let mut upload = upload;
                let _ = upload.upload.abort().await;
            }
        }
        state.dirty = false;
        return Ok(());
    }
    let key = file.key.lock().clone();
    let shown = file.shown();
    match &mut state.content {
        Content::Remote { .. } => {}
        Content::Buffered(data) => {
            let body = Bytes::copy_from_slice(data);
            inner
                .put_object(&key, &shown, body, PutMode::Overwrite)
                .await?;
        }
        Content::Streaming(upload) => {
            if !finish {
                return Ok(());
            }
            let tail = Bytes::from(std::mem::take(&mut upload.tail));
            let len = upload.len;
            let mut result = Ok(None);
            if !tail.is_empty() {
                if let Err(err) = inner
                    .call(
                        "close",
                        &shown,
                        upload.upload.put_part(PutPayload::from(tail)),
                    )
                    .await
                {
                    result = Err(err);
                }
            }
            if result.is_ok() {
                result = inner
                    .call("close", &shown, upload.upload.complete())
                    .await
                    .map(|put| put.e_tag);
            }
            match result {
                Ok(etag) => {
                    state.content = Content::Remote { size: len, etag };
                }
                Err(err) => {
                    let _ = inner.call("close", &shown, upload.upload.abort()).await;
                    state.poisoned = Some(format!("the upload failed and was aborted: {err}"));
                    state.dirty = false;
                    return Err(err);
                }
            }
        }
    }
    state.dirty = false;
    drop(state);
    let comps = file.comps.lock().clone();
    if let Some((name, parent)) = comps.split_last() {
        let name = name.clone();
        inner
            .update_manifest(parent, |manifest| match manifest.entries.get_mut(&name) {
                Some(Entry::File { attrs }) => {
                    let now = Timestamp::now().as_nanos();
                    attrs.mtime = now;
                    attrs.ctime = now;
                    Ok(true)
                }
                _ => Ok(false),
            })
            .await?;
    }
    Ok(())
}

/// What a sequential reader fetched ahead.
#[derive(Default)]
struct ReadAhead {
    generation: u64,
    start: u64,
    data: Bytes,
    /// Where the next read starts if the reader is sequential.
    next: u64,
}

/// A handle of the object driver.
pub(crate) struct ObjectHandle {
    pub inner: Arc<Inner>,
    pub file: Arc<OpenFile>,
    pub read: bool,
    pub write: bool,
    pub append: bool,
    closed: AtomicBool,
    ahead: Mutex<ReadAhead>,
}

impl ObjectHandle {
    pub(crate) fn new(
        inner: Arc<Inner>,
        file: Arc<OpenFile>,
        read: bool,
        write: bool,
        append: bool,
    ) -> ObjectHandle {
        ObjectHandle {
            inner,
            file,
            read,
            write,
            append,
            closed: AtomicBool::new(false),
            ahead: Mutex::new(ReadAhead::default()),
        }
    }

    fn error(&self, kind: ErrorKind, operation: &'static str) -> VfsError {
        VfsError::new(kind, operation).with_path(self.file.shown())
    }

    fn check_linked(&self, operation: &'static str) -> Result<()> {
        if self.file.unlinked.load(Ordering::SeqCst) {
            return Err(self.error(ErrorKind::Unsupported, operation).with_detail(
                "the object was removed or replaced; object storage keeps no unlinked files",
            ));
        }
        Ok(())
    }

    /// Turns remote content into buffered content so it can be changed in place; objects
    /// over the rewrite limit cannot be (`ENOTSUP`).
    async fn make_buffered(&self, state: &mut FileState, operation: &'static str) -> Result<()> {
        if let Content::Remote { size, etag } = &state.content {
            let (size, etag) = (*size, etag.clone());
            if size == 0 {
                state.content = Content::Buffered(Vec::new());
                return Ok(());
            }
            if size > self.inner.tuning.rewrite_limit {
                return Err(self
                    .error(ErrorKind::Unsupported, operation)
                    .with_detail(format!(
                        "changing an existing object of {size} bytes other than by rewriting it \
                     whole is limited to {} bytes (rewriteLimit)",
                        self.inner.tuning.rewrite_limit
                    )));
            }
            let key = self.file.key.lock().clone();
            let (bytes, _) = self
                .inner
                .get_checked(&key, &self.file.shown(), None, etag.as_deref())
                .await?;
            state.content = Content::Buffered(bytes.to_vec());
        }
        Ok(())
    }

    /// Sends the full parts at the front of a streaming upload's tail.
    async fn flush_parts(&self, state: &mut FileState) -> Result<()> {
        let part_size = self.inner.tuning.part_size;
        let shown = self.file.shown();
        let Content::Streaming(upload) = &mut state.content else {
            return Ok(());
        };
        while upload.tail.len() >= part_size {
            let rest = upload.tail.split_off(part_size);
            let part = Bytes::from(std::mem::replace(&mut upload.tail, rest));
            if let Err(err) = self
                .inner
                .call(
                    "write",
                    &shown,
                    upload.upload.put_part(PutPayload::from(part)),
                )
                .await
            {
                let _ = self
                    .inner
                    .call("write", &shown, upload.upload.abort())
                    .await;
                state.poisoned = Some(format!("a part upload failed and was aborted: {err}"));
                state.dirty = false;
                state.content = Content::Buffered(Vec::new());
                return Err(err);
            }
        }
        Ok(())
    }

    /// Switches a buffered file that outgrew a part to a streaming upload.
    async fn start_streaming(&self, state: &mut FileState) -> Result<()> {
        let Content::Buffered(data) = &mut state.content else {
            return Ok(());
        };
        let key = self.file.key.lock().clone();
        let upload = self
            .inner
            .call(
                "write",
                &self.file.shown(),
                self.inner.store.put_multipart(&key),
            )
            .await?;
        let tail = std::mem::take(data);
        state.content = Content::Streaming(Box::new(Streaming {
            upload,
            len: tail.len() as u64,
            tail,
        }));
        self.flush_parts(state).await
    }
}

#[async_trait]
impl FileHandle for ObjectHandle {
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        if !self.read {
            return Err(self.error(ErrorKind::BadHandle, "read"));
        }
        self.check_linked("read")?;
        let state = self.file.state.lock().await;
        if let Some(why) = &state.poisoned {
            return Err(self.error(ErrorKind::Io, "read").with_detail(why.clone()));
        }
        let size = state.size();
        if offset >= size || len == 0 {
            return Ok(Bytes::new());
        }
        let end = size.min(offset.saturating_add(len as u64));
        match &state.content {
            Content::Buffered(data) => {
                Ok(Bytes::copy_from_slice(&data[offset as usize..end as usize]))
            }
            Content::Streaming(upload) => {
                let tail_start = upload.len - upload.tail.len() as u64;
                if offset < tail_start {
                    return Err(self.error(ErrorKind::Unsupported, "read").with_detail(
                        "this part of the file is being uploaded; it can be read after close",
                    ));
                }
                Ok(Bytes::copy_from_slice(
                    &upload.tail[(offset - tail_start) as usize..(end - tail_start) as usize],
                ))
            }
            Content::Remote { etag, .. } => {
                let etag = etag.clone();
                let generation = state.generation;
                drop(state);
                {
                    let mut ahead = self.ahead.lock();
                    let have_end = ahead.start + ahead.data.len() as u64;
                    if ahead.generation == generation && offset >= ahead.start && end <= have_end {
                        let from = (offset - ahead.start) as usize;
                        let to = (end - ahead.start) as usize;
                        ahead.next = end;
                        return Ok(ahead.data.slice(from..to));
                    }
                }
                let sequential = {
                    let ahead = self.ahead.lock();
                    // A read at 0 starts a sequential scan as often as not.
                    ahead.next == offset
                };
                let fetch_end = if sequential {
                    size.min(offset.saturating_add(self.inner.tuning.readahead.max(len) as u64))
                } else {
                    end
                };
                let key = self.file.key.lock().clone();
                let (bytes, _) = self
                    .inner
                    .get_checked(
                        &key,
                        &self.file.shown(),
                        Some(offset..fetch_end),
                        etag.as_deref(),
                    )
                    .await?;
                let answer = bytes.slice(0..(end - offset) as usize);
                let mut ahead = self.ahead.lock();
                *ahead = ReadAhead {
                    generation,
                    start: offset,
                    data: bytes,
                    next: end,
                };
                Ok(answer)
            }
        }
    }

    async fn write_at(&self, offset: u64, data: Bytes) -> Result<usize> {
        if !self.write {
            return Err(self.error(ErrorKind::BadHandle, "write"));
        }
        self.check_linked("write")?;
        let mut state = self.file.state.lock().await;
        if let Some(why) = &state.poisoned {
            return Err(self.error(ErrorKind::Io, "write").with_detail(why.clone()));
        }
        if data.is_empty() {
            return Ok(0);
        }
        let offset = if self.append { state.size() } else { offset };
        if let Content::Streaming(upload) = &mut state.content {
            if offset != upload.len {
                return Err(self.error(ErrorKind::Unsupported, "write").with_detail(
                    "a file larger than a part is uploaded as it is written: only appends \
                     at its end are possible until it is closed",
                ));
            }
            upload.tail.extend_from_slice(&data);
            upload.len += data.len() as u64;
            state.touch();
            self.flush_parts(&mut state).await?;
            return Ok(data.len());
        }
        self.make_buffered(&mut state, "write").await?;
        let Content::Buffered(buffer) = &mut state.content else {
            return Err(self.error(ErrorKind::Io, "write"));
        };
        let start =
            usize::try_from(offset).map_err(|_| self.error(ErrorKind::FileTooLarge, "write"))?;
        let end = start
            .checked_add(data.len())
            .ok_or_else(|| self.error(ErrorKind::FileTooLarge, "write"))?;
        let appended = start == buffer.len();
        if end > buffer.len() {
            buffer.resize(end, 0);
        }
        buffer[start..end].copy_from_slice(&data);
        let grown = buffer.len() >= self.inner.tuning.part_size;
        state.touch();
        if grown && appended {
            self.start_streaming(&mut state).await?;
        }
        Ok(data.len())
    }

    async fn set_len(&self, len: u64) -> Result<()> {
        if !self.write {
            return Err(self.error(ErrorKind::InvalidInput, "truncate"));
        }
        self.check_linked("truncate")?;
        let mut state = self.file.state.lock().await;
        if let Some(why) = &state.poisoned {
            return Err(self
                .error(ErrorKind::Io, "truncate")
                .with_detail(why.clone()));
        }
        if let Content::Streaming(upload) = &state.content {
            if len == upload.len {
                return Ok(());
            }
            return Err(self.error(ErrorKind::Unsupported, "truncate").with_detail(
                "a file being uploaded in parts cannot be resized until it is closed",
            ));
        }
        if len == 0 {
            state.content = Content::Buffered(Vec::new());
        } else {
            self.make_buffered(&mut state, "truncate").await?;
        }
        let new_len =
            usize::try_from(len).map_err(|_| self.error(ErrorKind::FileTooLarge, "truncate"))?;
        if new_len as u64 > self.inner.tuning.rewrite_limit.max(state.size()) {
            return Err(self
                .error(ErrorKind::FileTooLarge, "truncate")
                .with_detail(format!(
                    "the object driver buffers files it resizes, up to {} bytes (rewriteLimit)",
                    self.inner.tuning.rewrite_limit
                )));
        }
        if let Content::Buffered(buffer) = &mut state.content {
            buffer.resize(new_len, 0);
        }
        state.touch();
        Ok(())
    }

    async fn sync(&self) -> Result<()> {
        self.check_linked("fsync")
            .or_else(|err| if self.write { Err(err) } else { Ok(()) })?;
        publish(&self.inner, &self.file, false).await
    }

    async fn stat(&self) -> Result<Metadata> {
        self.check_linked("fstat")?;
        let comps = self.file.comps.lock().clone();
        let path = vfs_core::VfsPath::new(&display(&comps))?;
        let (comps, node) = self.inner.existing("fstat", &path, false).await?;
        Ok(self.inner.metadata(&comps, &node).await)
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let result = publish(&self.inner, &self.file, true).await;
        self.inner.detach(&self.file);
        result
    }
}

impl Drop for ObjectHandle {
    fn drop(&mut self) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let inner = self.inner.clone();
        let file = self.file.clone();
        // Dropped without close: publish buffered changes in the background (errors are
        // lost, as the trait warns); a streaming upload is aborted rather than completed,
        // since a drop may be a cancelled write and a half file must not appear.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    // Other handles still open carry on; the last one out publishes.
                    if file.handles.load(Ordering::SeqCst) == 1 {
                        let mut state = file.state.lock().await;
                        if let Content::Streaming(_) = &state.content {
                            if let Content::Streaming(mut upload) =
                                std::mem::replace(&mut state.content, Content::Buffered(Vec::new()))
                            {
                                let _ = upload.upload.abort().await;
                            }
                            state.dirty = false;
                            state.poisoned = Some("the handle was dropped while uploading".into());
                        }
                        drop(state);
                        let _ = publish(&inner, &file, true).await;
                    }
                    inner.detach(&file);
                });
            }
            Err(_) => inner.detach(&file),
        }
    }
}
