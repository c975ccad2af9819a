//! `[params]`: user parameters for the SQL views, checked into [`ParamValue`]s.

use std::collections::BTreeMap;

use super::error::{At, Invalid};
use crate::params::{ParamValue, check_user_name};

pub(super) fn validate_params(raw: BTreeMap<String, toml::Value>) -> Result<BTreeMap<String, ParamValue>, Invalid> {
    let mut params = BTreeMap::new();
    for (name, value) in raw {
        let key = format!("params.{name}");
        check_user_name(&name).at(&key)?;
        let value = ParamValue::from_toml(&value).at(&key)?;
        params.insert(name, value);
    }
    Ok(params)
}
