//! `segvalue runs ROOT`: the published run dates under an output root and whether each is
//! complete, read from the manifests and `_SUCCESS` markers (README "Output tables").
//!
//! A run date is complete when its manifest exists and every table the manifest lists has a
//! `_SUCCESS` written by that same run. A run that died after committing some tables (so
//! their markers carry a newer run id than the manifest), or tables without any manifest,
//! make the date incomplete, with the reason. A Delta table (`format = "delta"`) has no
//! markers: there the newest commit for the date, in the table's log, must be the manifest's
//! run's, and its version is listed.

use std::collections::BTreeMap;

use datafusion::execution::context::SessionContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::{ObjectStore, ObjectStoreExt};
use object_store::path::Path as ObjectPath;
use serde::Deserialize;

use crate::engine::{StoreError, register_stores, store_base};
use crate::publish::delta;
use crate::text::one_line;
use crate::engine::StorageSection;
use crate::location::{redact, resolve_location};

/// One run date under the root.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStatus {
    pub run_date: String,
    pub run_id: Option<String>,
    pub tables: usize,
    pub rows: u64,
    /// `None` when complete, else why not.
    pub incomplete: Option<String>,
    /// Delta tables: each table's version holding this date's rows (its newest commit for it).
    pub delta_versions: Vec<(String, u64)>,
}

#[derive(Deserialize)]
struct Manifest {
    run_id: String,
    tables: Vec<ManifestTable>,
}

#[derive(Deserialize)]
struct ManifestTable {
    table: String,
    rows: u64,
    #[serde(default)]
    delta_version: Option<u64>,
}

/// A Delta table's commits by segvalue runs (newest first) and the oldest version its log holds.
type DeltaLog = (Vec<delta::RunCommit>, u64);

/// Lists every run date found under `root` (a path or an object-store URL), oldest first.
pub async fn list_runs(root: &str) -> Result<Vec<RunStatus>, StoreError> {
    let cwd = std::path::absolute(".").unwrap_or_default();
    let err = |message: String| StoreError {
        url: redact(root),
        message,
    };
    let url = resolve_location(&cwd, root, true).map_err(err)?;
    let ctx = SessionContext::new();
    register_stores(&ctx, std::iter::once(&url), &StorageSection::default())?;
    let base = ObjectStoreUrl::parse(store_base(&url).as_str()).map_err(|e| err(one_line(&e)))?;
    let store = ctx.runtime_env().object_store(&base).map_err(|e| err(one_line(&e)))?;
    let prefix = ObjectPath::from_url_path(url.path()).map_err(|e| err(one_line(&e)))?;
    let child = |parts: &[&str]| parts.iter().fold(prefix.clone(), |p, s| p.join(*s));
    let dirs = |p: ObjectPath| {
        let store = store.clone();
        async move {
            match store.list_with_delimiter(Some(&p)).await {
                Ok(l) => Ok(l.common_prefixes.into_iter().filter_map(|d| d.filename().map(str::to_string)).collect()),
                Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        }
    };
    let list_err = |e: object_store::Error| err(one_line(&e));

    // Run dates with table partitions, by table.
    let mut partitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let tables: Vec<String> = dirs(prefix.clone()).await.map_err(list_err)?;
    let mut delta_logs: BTreeMap<String, DeltaLog> = BTreeMap::new();
    for table in tables.iter().filter(|t| !t.starts_with('_')) {
        let parts = dirs(child(&[table])).await.map_err(list_err)?;
        if parts.iter().any(|p| p == delta::LOG_DIR) {
            let table_url = url.join(&format!("{table}/")).map_err(|e| err(one_line(&e)))?;
            let log = delta::run_commits(store.clone(), &table_url).await.map_err(|e| err(format!("table '{table}': {}", one_line(&e))))?;
            if let Some((commits, oldest)) = log {
                // Each date the table holds, once however many runs committed it.
                let dates: std::collections::BTreeSet<&str> = commits.iter().map(|c| c.run_date.as_str()).collect();
                for date in dates {
                    partitions.entry(date.to_string()).or_default().push(table.clone());
                }
                delta_logs.insert(table.clone(), (commits, oldest));
            }
            continue;
        }
        for part in parts {
            if let Some(date) = part.strip_prefix("run_date=") {
                partitions.entry(date.to_string()).or_default().push(table.clone());
            }
        }
    }
    let mut dates: BTreeMap<String, Option<ObjectPath>> = partitions.keys().map(|d| (d.clone(), None)).collect();
    for part in dirs(child(&["_manifests"])).await.map_err(list_err)? {
        if let Some(date) = part.strip_prefix("run_date=") {
            dates.insert(date.to_string(), Some(child(&["_manifests", &part, "manifest.json"])));
        }
    }

    let mut out = Vec::with_capacity(dates.len());
    for (date, manifest) in dates {
        let manifest: Option<Manifest> = match manifest {
            Some(p) => match read(store.as_ref(), &p).await {
                Some(bytes) => serde_json::from_slice(&bytes).ok(),
                None => None,
            },
            None => None,
        };
        let Some(m) = manifest else {
            out.push(RunStatus {
                run_date: date.clone(),
                run_id: None,
                tables: partitions.get(&date).map_or(0, Vec::len),
                rows: 0,
                incomplete: Some("no readable manifest".into()),
                delta_versions: Vec::new(),
            });
            continue;
        };
        let mut incomplete = None;
        let mut delta_versions = Vec::new();
        for t in &m.tables {
            if let Some((commits, oldest)) = delta_logs.get(&t.table) {
                match delta_state(&t.table, &date, &m.run_id, t.delta_version, commits, *oldest) {
                    Ok(version) => delta_versions.push((t.table.clone(), version)),
                    Err(reason) => {
                        incomplete = Some(reason);
                        break;
                    }
                }
                continue;
            }
            let success = child(&[&t.table, &format!("run_date={date}"), "_SUCCESS"]);
            let marker = read(store.as_ref(), &success).await.map(|b| String::from_utf8_lossy(&b).into_owned());
            let writer = marker.as_deref().and_then(|s| s.lines().find_map(|l| l.strip_prefix("run_id=")).map(str::to_string));
            incomplete = match writer {
                None => Some(format!("table '{}' has no _SUCCESS", t.table)),
                Some(id) if id != m.run_id => Some(format!("table '{}' was written by run {id}, not the manifest's", t.table)),
                Some(_) => continue,
            };
            break;
        }
        out.push(RunStatus {
            run_date: date,
            tables: m.tables.len(),
            rows: m.tables.iter().map(|t| t.rows).sum(),
            run_id: Some(m.run_id),
            incomplete,
            delta_versions,
        });
    }
    Ok(out)
}

/// The version of a Delta table holding `date`'s rows when the manifest's run wrote them, else
/// why not. The newest commit for the date decides; when the log no longer holds one (entries
/// older than the log retention go), the manifest's version stands if it is older than the log.
fn delta_state(table: &str, date: &str, run_id: &str, manifest_version: Option<u64>, commits: &[delta::RunCommit], oldest: u64) -> Result<u64, String> {
    match commits.iter().find(|c| c.run_date == date) {
        Some(c) if c.run_id == run_id => Ok(c.version),
        Some(c) => Err(format!("table '{table}' was written by run {} (Delta version {}), not the manifest's", c.run_id, c.version)),
        None => match manifest_version {
            Some(v) if v < oldest => Ok(v),
            _ => Err(format!("table '{table}' has no Delta commit for this date")),
        },
    }
}

async fn read(store: &dyn ObjectStore, path: &ObjectPath) -> Option<Vec<u8>> {
    let got = store.get(path).await.ok()?;
    got.bytes().await.ok().map(|b| b.to_vec())
}
