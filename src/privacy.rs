//! Privacy: keyed pseudonyms for customer ids and data minimisation in published tables.
//!
//! With `[privacy] pseudonymize_ids = true`, every id column (`id_columns`) of every
//! published table is replaced by `hex(HMAC-SHA256(key, id))`, the key read from the
//! environment variable `key_env`. The same key gives the same pseudonym in every table and
//! every run, so BI joins keep working; another key gives unrelated pseudonyms. The key lives
//! only inside [`Pseudonymizer`], whose `Debug` output is redacted, and is never logged.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, ident};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

pub const DEFAULT_KEY_ENV: &str = "SEGVALUE_PSEUDONYM_KEY";

/// `[privacy]` as written in the job file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySpec {
    #[serde(default)]
    pub pseudonymize_ids: bool,
    pub key_env: Option<String>,
    /// Columns holding customer ids; default: the segmentation id, else `customer_id`.
    pub id_columns: Option<Vec<String>>,
    #[serde(default)]
    pub drop_columns: Vec<String>,
}

impl PrivacySpec {
    /// Whether published tables keep their values as computed: no pseudonyms and no dropped
    /// columns (what [`Privacy::is_identity`] then reports once resolved).
    pub fn is_identity(&self) -> bool {
        !self.pseudonymize_ids && self.drop_columns.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("[privacy] pseudonymize_ids is on but the environment variable {var} is missing or empty")]
    MissingKey { var: String },
    #[error("view '{view}' is published but has column '{column}', which [privacy] drop_columns forbids")]
    ForbiddenColumn { view: String, column: String },
}

/// HMAC-SHA256 with a secret key. `Debug` never shows the key.
///
/// The HMAC is keyed once here and cloned for each id: keying hashes the key into the inner
/// and outer pads, work a clone skips. Equality and hashing go by the key (the keyed state
/// has neither).
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Vec<u8>,
    keyed: Hmac<Sha256>,
}

impl PartialEq for Pseudonymizer {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Pseudonymizer {}

impl std::hash::Hash for Pseudonymizer {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer { key: <redacted> }")
    }
}

impl Pseudonymizer {
    pub fn new(key: &[u8]) -> Pseudonymizer {
        Pseudonymizer {
            key: key.to_vec(),
            keyed: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }

    /// Reads the key from `var`; a missing or empty variable is an error naming it.
    pub fn from_env(var: &str) -> Result<Pseudonymizer, PrivacyError> {
        match std::env::var_os(var) {
            Some(v) if !v.is_empty() => Ok(Pseudonymizer::new(v.as_encoded_bytes())),
            _ => Err(PrivacyError::MissingKey { var: var.to_string() }),
        }
    }

    /// `hex(HMAC-SHA256(key, id))`, 64 lower-case hex digits.
    pub fn pseudonym(&self, id: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The `pseudonymize(id)` SQL function used when publishing.
#[derive(Debug, PartialEq, Eq, Hash)]
struct PseudonymizeUdf {
    signature: Signature,
    inner: Pseudonymizer,
}

impl ScalarUDFImpl for PseudonymizeUdf {
    fn name(&self) -> &str {
        "pseudonymize"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("pseudonymize takes one argument");
        };
        let ids: ArrayRef = cast(&arg.to_array(args.number_rows)?, &DataType::Utf8)?;
        let ids = ids.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(ids.len(), ids.len() * 64);
        for i in 0..ids.len() {
            if ids.is_null(i) {
                out.append_null();
            } else {
                out.append_value(self.inner.pseudonym(ids.value(i)));
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// What the publisher applies to every table it writes.
#[derive(Debug, Clone)]
pub struct Privacy {
    udf: Option<ScalarUDF>,
    key: Option<Pseudonymizer>,
    id_columns: Vec<String>,
    drop_columns: Vec<String>,
}

impl Privacy {
    /// Resolves the spec; reads the key when pseudonyms are on.
    pub fn new(spec: &PrivacySpec, default_id: &str) -> Result<Privacy, PrivacyError> {
        let key = if spec.pseudonymize_ids {
            Some(Pseudonymizer::from_env(spec.key_env.as_deref().unwrap_or(DEFAULT_KEY_ENV))?)
        } else {
            None
        };
        let udf = key.clone().map(|inner| {
            ScalarUDF::new_from_impl(PseudonymizeUdf {
                signature: Signature::any(1, Volatility::Immutable),
                inner,
            })
        });
        Ok(Privacy {
            udf,
            key,
            id_columns: spec.id_columns.clone().unwrap_or_else(|| vec![default_id.to_string()]),
            drop_columns: spec.drop_columns.clone(),
        })
    }

    /// No pseudonyms, nothing dropped.
    pub fn off() -> Privacy {
        Privacy {
            udf: None,
            key: None,
            id_columns: Vec::new(),
            drop_columns: Vec::new(),
        }
    }

    pub fn drop_columns(&self) -> &[String] {
        &self.drop_columns
    }

    /// The customer id columns (pseudonymised when pseudonyms are on).
    pub fn id_columns(&self) -> &[String] {
        &self.id_columns
    }

    /// `id` of column `column` as published tables show it (its pseudonym when pseudonyms are on).
    pub fn published_id<'a>(&self, column: &str, id: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.key {
            Some(k) if self.id_columns.iter().any(|c| c == column) => k.pseudonym(id).into(),
            _ => id.into(),
        }
    }

    /// Whether [`Self::apply`] leaves tables as they are (no pseudonyms, no dropped columns).
    pub fn is_identity(&self) -> bool {
        self.udf.is_none() && self.drop_columns.is_empty()
    }

    /// Drops forbidden columns and replaces id columns by their pseudonyms.
    pub fn apply(&self, df: DataFrame) -> DfResult<DataFrame> {
        if self.is_identity() {
            return Ok(df);
        }
        let exprs: Vec<Expr> = df
            .schema()
            .fields()
            .iter()
            .filter(|f| !self.drop_columns.contains(f.name()))
            .map(|f| {
                let c = ident(f.name());
                match &self.udf {
                    Some(udf) if self.id_columns.contains(f.name()) => udf.call(vec![c]).alias(f.name()),
                    _ => c,
                }
            })
            .collect();
        df.select(exprs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonym_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        let p = Pseudonymizer::new(b"Jefe");
        assert_eq!(
            p.pseudonym("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn one_key_gives_the_same_pseudonym_every_time() {
        let p = Pseudonymizer::new(b"Jefe");
        let first = p.pseudonym("what do ya want for nothing?");
        assert_eq!(p.pseudonym("another id").len(), 64);
        assert_eq!(p.pseudonym("what do ya want for nothing?"), first);
        assert_eq!(p, Pseudonymizer::new(b"Jefe"));
        assert_ne!(p, Pseudonymizer::new(b"other"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let p = Pseudonymizer::new(b"canary-key-123");
        assert!(!format!("{p:?}").contains("canary"));
    }

    #[test]
    fn missing_key_names_the_variable() {
        let err = Pseudonymizer::from_env("SEGVALUE_TEST_SURELY_UNSET_VAR").unwrap_err();
        assert_eq!(
            err.to_string(),
            "[privacy] pseudonymize_ids is on but the environment variable SEGVALUE_TEST_SURELY_UNSET_VAR is missing or empty"
        );
    }
}
