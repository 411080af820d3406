//! An object store wrapper that counts every request and misbehaves on demand: fails the
//! Nth request or multipart part, delays GETs, cuts or corrupts bodies. The fault tests arm
//! it; the object benchmark leaves it unarmed and reads the request count.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// What the store does wrong, switched at run time.
#[derive(Debug, Default)]
pub struct Faults {
    /// Requests so far.
    pub requests: AtomicUsize,
    /// Fail the request with this number (1-based; 0: none).
    pub fail_at: AtomicUsize,
    /// Delay every GET by this many ms.
    pub delay_gets_ms: AtomicU64,
    /// Cut every GET body short by one byte.
    pub short_bodies: AtomicBool,
    /// Answer every GET with another version's ETag and flipped bytes.
    pub corrupt_bodies: AtomicBool,
    /// Fail the multipart part with this number (1-based; 0: none).
    pub fail_part_at: AtomicUsize,
    pub parts: AtomicUsize,
    pub completes: AtomicUsize,
    pub aborts: AtomicUsize,
}

impl Faults {
    /// Every request made so far, multipart parts, completions and aborts included.
    pub fn total_requests(&self) -> usize {
        [&self.requests, &self.parts, &self.completes, &self.aborts]
            .iter()
            .map(|counter| counter.load(Ordering::SeqCst))
            .sum()
    }

    /// Starts counting requests from zero again.
    pub fn reset_counts(&self) {
        for counter in [&self.requests, &self.parts, &self.completes, &self.aborts] {
            counter.store(0, Ordering::SeqCst);
        }
    }

    fn tick(&self, what: &str) -> object_store::Result<()> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fail_at.load(Ordering::SeqCst) {
            return Err(injected(format!("request {n} ({what})")));
        }
        Ok(())
    }
}

pub fn injected(what: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "faulty",
        source: format!("injected failure of {what}").into(),
    }
}

#[derive(Debug)]
pub struct Faulty {
    pub inner: Arc<dyn ObjectStore>,
    pub faults: Arc<Faults>,
}

impl fmt::Display for Faulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[derive(Debug)]
pub struct FaultyUpload {
    pub inner: Box<dyn MultipartUpload>,
    pub faults: Arc<Faults>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let n = self.faults.parts.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.faults.fail_part_at.load(Ordering::SeqCst) {
            return Box::pin(async move { Err(injected(format!("part {n}"))) });
        }
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.faults.completes.fetch_add(1, Ordering::SeqCst);
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.faults.aborts.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.faults.tick("put")?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.faults.tick("create multipart")?;
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.faults.tick("get")?;
        let delay = self.faults.delay_gets_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let short = self.faults.short_bodies.load(Ordering::SeqCst);
        let corrupt = self.faults.corrupt_bodies.load(Ordering::SeqCst);
        let result = self.inner.get_opts(location, options).await?;
        if !short && !corrupt {
            return Ok(result);
        }
        let mut meta = result.meta.clone();
        let range = result.range.clone();
        let attributes = result.attributes.clone();
        let extensions = result.extensions.clone();
        let mut bytes = result.bytes().await?.to_vec();
        if short {
            bytes.pop();
        }
        if corrupt {
            for byte in &mut bytes {
                *byte ^= 0xff;
            }
            meta.e_tag = Some("\"not-the-version-asked-for\"".to_owned());
        }
        let body = Bytes::from(bytes);
        Ok(GetResult {
            payload: GetResultPayload::Stream(
                futures::stream::once(async move { Ok(body) }).boxed(),
            ),
            meta,
            range,
            attributes,
            extensions,
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if let Err(err) = self.faults.tick("delete") {
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if let Err(err) = self.faults.tick("list") {
            return futures::stream::once(async move { Err(err) }).boxed();
        }
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.faults.tick("list")?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.faults.tick("copy")?;
        self.inner.copy_opts(from, to, options).await
    }
}
