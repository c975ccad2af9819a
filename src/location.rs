//! Source and output locations: paths and URLs resolved, checked and shown without
//! credentials (a leaf module: every stage that names a location uses it).

use std::path::{Component, Path, PathBuf};

use url::Url;

/// Schemes a source or output URL may use; each maps to an `object_store` backend.
pub const SUPPORTED_SCHEMES: &[&str] = &["file", "s3", "s3a", "gs", "az", "abfs", "abfss", "http", "https"];

/// Resolves a source or output location to a URL. Local paths are relative to `base`.
/// `dir` adds the trailing slash object stores need to treat the location as a prefix.
pub fn resolve_location(base: &Path, s: &str, dir: bool) -> Result<Url, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("location is empty".into());
    }
    // No store or file system takes a path with a control character (object_store refuses
    // NUL only when it first lists, mid-run).
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!("location contains the control character U+{:04X}", c as u32));
    }
    if s.contains("://") {
        let mut url = Url::parse(s).map_err(|e| format!("invalid URL '{}': {e}", redact(s)))?;
        if !SUPPORTED_SCHEMES.contains(&url.scheme()) {
            return Err(format!(
                "unsupported scheme '{}' (expected one of {})",
                url.scheme(),
                SUPPORTED_SCHEMES.join(", ")
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials must not be written in URLs; use the AWS_*/GOOGLE_*/AZURE_* environment".into());
        }
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|_| format!("invalid file URL '{s}'"))?;
            return resolve_location(base, &path.to_string_lossy(), dir || s.ends_with('/'));
        }
        if dir && !url.path().ends_with('/') {
            let p = format!("{}/", url.path());
            url.set_path(&p);
        }
        return Ok(url);
    }
    let path = normalize(&base.join(s));
    let as_dir = dir && (s.ends_with('/') || path.is_dir() || path.extension().is_none());
    let url = if as_dir {
        Url::from_directory_path(&path)
    } else {
        Url::from_file_path(&path)
    };
    url.map_err(|_| format!("invalid path '{}'", path.display()))
}

/// Removes user-info from a URL-like string before it is shown anywhere.
pub fn redact(s: &str) -> String {
    match Url::parse(s) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        _ => s.to_string(),
    }
}

pub fn absolute(p: &Path) -> PathBuf {
    let p = if p.as_os_str().is_empty() { Path::new(".") } else { p };
    normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// Lexical normalisation (`a/b/../c` → `a/c`) without touching the filesystem, so paths that
/// do not exist yet (output roots) resolve too.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_with_a_control_character_is_refused() {
        for bad in ["\u{0}", "data/\u{0}/x", "s3://b/a\u{7}b/"] {
            let err = resolve_location(Path::new("/tmp"), bad, true).unwrap_err();
            assert!(err.starts_with("location contains the control character U+"), "{bad:?}: {err}");
        }
        assert!(resolve_location(Path::new("/tmp"), "data/sample/", true).is_ok());
    }
}
