//! The committed sample data is exactly what `segvalue generate` draws with its defaults.

use std::path::Path;

use crate::common::*;

#[test]
fn committed_sample_matches_the_generator() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    segvalue_ok(&["generate", "--out", out]);
    let sample = Path::new(ROOT).join("data/sample");
    for f in [
        "customers/part-00000.parquet",
        "orders/part-00000.parquet",
        "sessions/part-00000.parquet",
        "truth/customers.parquet",
        "truth/params.json",
    ] {
        let a = std::fs::read(sample.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        let b = std::fs::read(dir.path().join(f)).unwrap();
        assert!(a == b, "data/sample/{f} differs from `segvalue generate` output; regenerate it");
    }
}
