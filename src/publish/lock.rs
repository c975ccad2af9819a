//! One commit at a time per run date: a leased lock under `_manifests/run_date=D/_commit/`.
//!
//! Without it, two runs of one date committing at once (an Airflow retry beside a zombie
//! attempt, a backfill beside a manual rerun) could interleave per table: one run's data file
//! under the other's `_SUCCESS`, or its tables under the other's manifest. With it, a run's
//! tables, markers, model, report and manifest land together, and the next run's land after.
//!
//! The lock is the object `lock-<n>` with the highest `n`, created with a create-if-absent put
//! (`PutMode::Create`: a hard link locally, `If-None-Match: *` on S3), so of two runs that
//! want it at once exactly one gets it. It is free when its holder released it, when its lease
//! ran out (the holder renews it while committing), or when its holder was a process on this
//! machine that no longer runs (kill -9: the next run takes over at once instead of waiting for
//! the lease). A waiting run polls until then; taking over means creating `lock-<n+1>`, so two
//! runs that find the same stale lock still cannot both win.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions};
use serde::{Deserialize, Serialize};

use super::PublishError;
use crate::location::redact;
use crate::text::one_line;

/// How long a holder keeps the lock without renewing it. A commit renews before every table,
/// so only a single table's move (an object copy on S3) has to fit in it.
const LEASE: chrono::Duration = chrono::Duration::seconds(120);
/// How often a waiting run looks again.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Holder {
    run_id: String,
    host: String,
    pid: u32,
    /// The holder's start time (seconds since the epoch): a reused pid is another process.
    process_start: u64,
    expires_at: chrono::DateTime<chrono::Utc>,
    released: bool,
}

impl Holder {
    fn this_process(run_id: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            run_id: run_id.to_string(),
            host: sysinfo::System::host_name().unwrap_or_default(),
            pid,
            process_start: process_start(pid).unwrap_or(0),
            expires_at: chrono::Utc::now() + LEASE,
            released: false,
        }
    }

    /// Whether another run must still wait for this holder.
    fn holds(&self, here: &str) -> bool {
        if self.released || chrono::Utc::now() > self.expires_at {
            return false;
        }
        // A process of this machine is asked directly: a killed run frees the lock at once.
        self.host != here || process_start(self.pid) == Some(self.process_start)
    }
}

/// The start time of a running (not zombie) process, None when there is none with that pid.
fn process_start(pid: u32) -> Option<u64> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};
    let pid = Pid::from_u32(pid);
    let mut sys = System::new();
    sys.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, ProcessRefreshKind::nothing());
    sys.process(pid)
        .filter(|p| !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead))
        .map(|p| p.start_time())
}

/// The commit lock of one run date, held until [`CommitLock::release`] (or its lease runs out).
pub struct CommitLock {
    store: Arc<dyn ObjectStore>,
    /// None on a store that cannot create an object only if absent: the run commits unlocked,
    /// as every run did before the lock (logged).
    path: Option<ObjectPath>,
    /// The lock's URL (redacted), for errors.
    url: String,
    holder: Holder,
    renewed: Instant,
}

impl CommitLock {
    /// Waits for, then takes, the lock in `dir` for `run_id`. `url` names an object for errors.
    pub(super) async fn acquire(
        store: Arc<dyn ObjectStore>,
        dir: ObjectPath,
        run_id: &str,
        url: impl Fn(&ObjectPath) -> String,
    ) -> Result<CommitLock, PublishError> {
        let err = |p: &ObjectPath, e: &dyn std::fmt::Display| PublishError::Store { location: redact(&url(p)), message: one_line(e) };
        let held = |path: ObjectPath, holder: Holder| CommitLock { store: store.clone(), url: redact(&url(&path)), path: Some(path), holder, renewed: Instant::now() };
        let me = Holder::this_process(run_id);
        let mut waiting_for: Option<String> = None;
        loop {
            let locks = locks(store.as_ref(), &dir).await.map_err(|e| err(&dir, &e))?;
            let latest = locks.last().cloned();
            let next = match &latest {
                None => 0,
                Some((n, path)) => match read(store.as_ref(), path).await {
                    // Removed since the listing (its successor's cleanup): look again.
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(err(path, &e)),
                    // Our own create, whose answer was lost and whose retry found it there.
                    Ok(Some(h)) if h.run_id == me.run_id && h.pid == me.pid && h.host == me.host && !h.released => {
                        return Ok(held(path.clone(), h));
                    }
                    Ok(Some(h)) if h.holds(&me.host) => {
                        if waiting_for.as_deref() != Some(h.run_id.as_str()) {
                            tracing::info!(run_id = h.run_id, host = h.host, pid = h.pid, "waiting for another run of this date to finish committing");
                            waiting_for = Some(h.run_id.clone());
                        }
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                    // Released, expired, its process gone, or not a lock we can read.
                    Ok(_) => n + 1,
                },
            };
            let path = dir.clone().join(format!("lock-{next:020}"));
            let mut holder = me.clone();
            holder.expires_at = chrono::Utc::now() + LEASE;
            let body = serde_json::to_vec(&holder).expect("a lock serializes");
            // Where a test widens the race between two runs that listed the same locks
            // (`SEGVALUE_FAILPOINTS=lock-create=sleep(…)`): only one create may succeed.
            fail::fail_point!("lock-create");
            match store.put_opts(&path, body.into(), PutOptions { mode: PutMode::Create, ..Default::default() }).await {
                Ok(_) => {
                    // Earlier locks are history now.
                    for (_, old) in &locks {
                        let _ = store.delete(old).await;
                    }
                    return Ok(held(path, holder));
                }
                Err(object_store::Error::AlreadyExists { .. }) => continue,
                Err(object_store::Error::NotImplemented { .. }) => {
                    tracing::warn!(store = %store, "this store cannot create an object only if absent: committing without the run-date lock");
                    return Ok(CommitLock { store: store.clone(), path: None, url: String::new(), holder, renewed: Instant::now() });
                }
                Err(e) => return Err(err(&path, &e)),
            }
        }
    }

    /// Extends the lease when a quarter of it has passed.
    pub async fn renew(&mut self) -> Result<(), PublishError> {
        let Some(path) = &self.path else { return Ok(()) };
        if self.renewed.elapsed() < LEASE.to_std().expect("a positive lease") / 4 {
            return Ok(());
        }
        self.holder.expires_at = chrono::Utc::now() + LEASE;
        let body = serde_json::to_vec(&self.holder).expect("a lock serializes");
        self.store.put(path, body.into()).await.map_err(|e| PublishError::Store { location: self.url.clone(), message: one_line(&e) })?;
        self.renewed = Instant::now();
        Ok(())
    }

    /// Frees the lock for the next run of this date. A failure only delays it to the lease's end.
    pub async fn release(mut self) {
        let Some(path) = self.path.take() else { return };
        self.holder.released = true;
        let body = serde_json::to_vec(&self.holder).expect("a lock serializes");
        if let Err(e) = self.store.put(&path, body.into()).await {
            tracing::warn!(error = %one_line(&e), "could not release the run-date lock; it expires with its lease");
        }
    }
}

/// The lock objects in `dir`, by number (the last one is the lock).
async fn locks(store: &dyn ObjectStore, dir: &ObjectPath) -> object_store::Result<Vec<(u64, ObjectPath)>> {
    use futures::TryStreamExt;
    let listed: Vec<object_store::ObjectMeta> = match store.list(Some(dir)).try_collect().await {
        Ok(v) => v,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut locks: Vec<(u64, ObjectPath)> = listed
        .into_iter()
        .filter_map(|m| {
            let n = m.location.filename()?.strip_prefix("lock-")?.parse::<u64>().ok()?;
            Some((n, m.location))
        })
        .collect();
    locks.sort_by_key(|(n, _)| *n);
    Ok(locks)
}

/// A lock's holder; `Ok(None)` for an object that is not a lock segvalue wrote.
async fn read(store: &dyn ObjectStore, path: &ObjectPath) -> object_store::Result<Option<Holder>> {
    let bytes = store.get(path).await?.bytes().await?;
    Ok(serde_json::from_slice(&bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::local::LocalFileSystem;

    fn store(dir: &std::path::Path) -> Arc<dyn ObjectStore> {
        Arc::new(LocalFileSystem::new_with_prefix(dir).unwrap())
    }

    #[tokio::test]
    async fn a_second_run_waits_until_the_first_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let dir = ObjectPath::from("_commit");
        let first = CommitLock::acquire(s.clone(), dir.clone(), "a", |p| p.to_string()).await.unwrap();
        let waiter = tokio::spawn({
            let (s, dir) = (s.clone(), dir.clone());
            async move { CommitLock::acquire(s, dir, "b", |p| p.to_string()).await.unwrap() }
        });
        tokio::time::sleep(3 * POLL).await;
        assert!(!waiter.is_finished(), "the second run took a held lock");
        first.release().await;
        let second = tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(second.holder.run_id, "b");
        assert!(second.path.as_ref().unwrap().as_ref().ends_with("lock-00000000000000000001"));
    }

    #[tokio::test]
    async fn a_lock_whose_process_is_gone_is_taken_over_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let dir = ObjectPath::from("_commit");
        // A holder on this machine with a live lease but no such process (kill -9).
        let mut dead = Holder::this_process("dead");
        dead.pid = u32::MAX - 1;
        s.put(&dir.clone().join("lock-00000000000000000007"), serde_json::to_vec(&dead).unwrap().into()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), CommitLock::acquire(s.clone(), dir.clone(), "next", |p| p.to_string()))
            .await
            .expect("waited for a dead process")
            .unwrap();
        assert!(got.path.as_ref().unwrap().as_ref().ends_with("lock-00000000000000000008"));
        // Another machine's live lease is waited for.
        let mut remote = Holder::this_process("remote");
        remote.host = "elsewhere".into();
        s.put(&dir.clone().join("lock-00000000000000000009"), serde_json::to_vec(&remote).unwrap().into()).await.unwrap();
        assert!(tokio::time::timeout(3 * POLL, CommitLock::acquire(s, dir, "third", |p| p.to_string())).await.is_err());
    }
}
