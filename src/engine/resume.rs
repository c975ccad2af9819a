//! Remote reads that survive a connection cut in the middle of an answer.
//!
//! object_store retries a request that fails (`[storage]` retries), but not an answer whose
//! body breaks off after its headers (a reset connection, a proxy or load balancer timing
//! out): the bytes of a GET or a page of a LIST then end in an error and the run fails,
//! although asking again would have worked. [`ResumingStore`] wraps a remote store and asks
//! again: a GET's stream continues from the first byte it has not delivered (pinned to the
//! same object version by its ETag), a listing starts over and skips what it already gave,
//! a delimiter listing is repeated. Writes are passed through: object_store retries them
//! itself and each of them is whole or absent.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
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

/// The rest of a GET whose body broke: the next byte on, same version.
struct Resume {
    store: Arc<dyn ObjectStore>,
    location: Path,
    options: GetOptions,
    next: u64,
    end: u64,
    stream: BoxStream<'static, Result<Bytes>>,
    attempt: usize,
}

fn resuming_body(r: Resume) -> BoxStream<'static, Result<Bytes>> {
    futures::stream::unfold(Some(r), |state| async move {
        let mut s = state?;
        loop {
            match s.stream.next().await {
                None => return None,
                Some(Ok(b)) => {
                    s.next += b.len() as u64;
                    return Some((Ok(b), Some(s)));
                }
                Some(Err(e)) if broken(&e) && s.attempt < RESUMES && s.next < s.end => {
                    tracing::debug!(location = %s.location, from = s.next, error = %e, "resuming a broken read");
                    tokio::time::sleep(backoff(s.attempt)).await;
                    s.attempt += 1;
                    let options = GetOptions { range: Some((s.next..s.end).into()), ..s.options.clone() };
                    match s.store.get_opts(&s.location, options).await {
                        Ok(GetResult { payload: GetResultPayload::Stream(rest), .. }) => s.stream = rest,
                        Ok(_) => return Some((Err(e), None)),
                        Err(again) => return Some((Err(again), None)),
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
            }
        }
    })
    .boxed()
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
        let r = self.inner.get_opts(location, options.clone()).await?;
        let GetResultPayload::Stream(stream) = r.payload else { return Ok(r) };
        // The rest must come from the version this answer began with.
        let if_match = options.if_match.clone().or_else(|| r.meta.e_tag.clone());
        let resume = Resume {
            store: self.inner.clone(),
            location: location.clone(),
            options: GetOptions { if_match, ..options },
            next: r.range.start,
            end: r.range.end,
            stream,
            attempt: 0,
        };
        Ok(GetResult { payload: GetResultPayload::Stream(resuming_body(resume)), ..r })
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
    use object_store::{GetRange, ObjectStoreExt};
    use futures::TryStreamExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store whose every `cut_every`-th GET body breaks after its first byte, and whose
    /// listings break after their first entry the first `list_breaks` times.
    #[derive(Debug)]
    struct Cutting {
        inner: InMemory,
        gets: AtomicUsize,
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
            let r = self.inner.get_opts(l, o).await?;
            if self.gets.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                return Ok(r);
            }
            let range = r.range.clone();
            let bytes = r.bytes().await?;
            let meta = self.inner.head(l).await?;
            let first = bytes.slice(0..1);
            let stream = futures::stream::iter(vec![Ok(first), Err(cut())]).boxed();
            Ok(GetResult { payload: GetResultPayload::Stream(stream), meta, range, attributes: Default::default() })
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
    async fn broken_bodies_and_listings_are_resumed_whole() {
        let cutting = Arc::new(Cutting { inner: InMemory::new(), gets: AtomicUsize::new(0), lists: AtomicUsize::new(0) });
        for i in 0..3 {
            cutting.put(&Path::from(format!("d/f{i}")), format!("file number {i}").into_bytes().into()).await.unwrap();
        }
        // Unwrapped, the cut shows.
        assert!(cutting.get(&Path::from("d/f0")).await.unwrap().bytes().await.is_err());
        let store = ResumingStore::new(cutting.clone());
        for i in 0..3 {
            let got = store.get(&Path::from(format!("d/f{i}"))).await.unwrap().bytes().await.unwrap();
            assert_eq!(&got[..], format!("file number {i}").as_bytes());
        }
        let ranged = store
            .get_opts(&Path::from("d/f2"), GetOptions { range: Some(GetRange::Bounded(5..11)), ..Default::default() })
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&ranged[..], b"number");
        let mut listed: Vec<String> = store.list(Some(&Path::from("d"))).map_ok(|m| m.location.to_string()).try_collect().await.unwrap();
        listed.sort();
        assert_eq!(listed, ["d/f0", "d/f1", "d/f2"]);
    }
}
