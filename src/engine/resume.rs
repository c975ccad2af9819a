//! Remote listings that survive a connection cut in the middle of an answer.
//!
//! object_store retries a request that fails (`[storage]` retries) and continues a GET whose
//! body breaks off from its next byte, pinned to the same ETag (its `retry_stream`), but not a
//! LIST page whose body breaks off: the listing then ends in an error and the run fails,
//! although asking again would have worked (the S3 fault test saw it). [`ResumingStore`] wraps
//! a remote store and lists again: a listing starts over and skips what it already gave, a
//! delimiter listing is repeated. Everything else is passed through.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// How many times one answer is resumed before its error is returned.
const RESUMES: usize = 5;

fn backoff(attempt: usize) -> Duration {
    Duration::from_millis(50 << attempt.min(6))
}

/// A broken transfer rather than an answer: only `Generic` errors (transport and body errors);
/// not found, precondition, permission and the like are answers and are returned at once.
fn broken(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::Generic { .. })
}

#[derive(Debug)]
pub struct ResumingStore {
    inner: Arc<dyn ObjectStore>,
}

impl ResumingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> ResumingStore {
        ResumingStore { inner }
    }
}

impl std::fmt::Display for ResumingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.inner)
    }
}

/// A listing that starts over when a page breaks, skipping what it already gave (the order of
/// a listing is not guaranteed, so no offset is trusted).
fn resuming_list(store: Arc<dyn ObjectStore>, prefix: Option<Path>, offset: Option<Path>) -> BoxStream<'static, Result<ObjectMeta>> {
    let start = move |store: &Arc<dyn ObjectStore>| match &offset {
        Some(o) => store.list_with_offset(prefix.as_ref(), o),
        None => store.list(prefix.as_ref()),
    };
    let first = start(&store);
    let state = (store, start, first, HashSet::<Path>::new(), 0usize);
    futures::stream::unfold(Some(state), |state| async move {
        let (store, start, mut stream, mut seen, mut attempt) = state?;
        loop {
            match stream.next().await {
                None => return None,
                Some(Ok(m)) => {
                    if seen.insert(m.location.clone()) {
                        return Some((Ok(m), Some((store, start, stream, seen, attempt))));
                    }
                }
                Some(Err(e)) if broken(&e) && attempt < RESUMES => {
                    tracing::debug!(error = %e, "listing again after a broken page");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    stream = start(&store);
                }
                Some(Err(e)) => return Some((Err(e), None)),
            }
        }
    })
    .boxed()
}

#[async_trait]
impl ObjectStore for ResumingStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(&self, location: &Path, opts: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        resuming_list(self.inner.clone(), prefix.cloned(), None)
    }

    fn list_with_offset(&self, prefix: Option<&Path>, offset: &Path) -> BoxStream<'static, Result<ObjectMeta>> {
        resuming_list(self.inner.clone(), prefix.cloned(), Some(offset.clone()))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let mut attempt = 0;
        loop {
            match self.inner.list_with_delimiter(prefix).await {
                Err(e) if broken(&e) && attempt < RESUMES => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;
    use futures::TryStreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose listings break after their first entry the first two times.
    #[derive(Debug)]
    struct Cutting {
        inner: InMemory,
        lists: AtomicUsize,
    }

    impl std::fmt::Display for Cutting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cutting")
        }
    }

    fn cut() -> object_store::Error {
        object_store::Error::Generic { store: "cutting", source: "connection reset mid-body".into() }
    }

    #[async_trait]
    impl ObjectStore for Cutting {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> Result<PutResult> {
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(&self, l: &Path, o: PutMultipartOptions) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> Result<GetResult> {
            self.inner.get_opts(l, o).await
        }
        fn delete_stream(&self, l: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
            self.inner.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
            let all = self.inner.list(p);
            if self.lists.fetch_add(1, Ordering::SeqCst) < 2 {
                all.take(1).chain(futures::stream::once(async { Err(cut()) })).boxed()
            } else {
                all
            }
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> Result<ListResult> {
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> Result<()> {
            self.inner.copy_opts(f, t, o).await
        }
    }

    #[tokio::test]
    async fn broken_listings_are_resumed_whole() {
        let cutting = Arc::new(Cutting { inner: InMemory::new(), lists: AtomicUsize::new(0) });
        for i in 0..3 {
            cutting.put(&Path::from(format!("d/f{i}")), format!("file number {i}").into_bytes().into()).await.unwrap();
        }
        // Unwrapped, the cut shows.
        let cut: Result<Vec<ObjectMeta>> = cutting.list(Some(&Path::from("d"))).try_collect().await;
        assert!(cut.is_err());
        let store = ResumingStore::new(cutting.clone());
        let mut listed: Vec<String> = store.list(Some(&Path::from("d"))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
        listed.sort();
        assert_eq!(listed, ["d/f0", "d/f1", "d/f2"]);
    }
}
