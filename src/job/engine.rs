//! `[engine]`: checks the session settings the engine's own [`EngineSection`] deserializes.

use super::error::{At, Invalid, Problem};
use crate::engine::{EngineSection, parse_memory_limit};

pub(super) fn check_engine(engine: &EngineSection) -> Result<(), Invalid> {
    for (key, v) in [("engine.target_partitions", engine.target_partitions), ("engine.batch_size", engine.batch_size)] {
        if v == Some(0) {
            return Err(Invalid::new(key, Problem::AtLeastOne));
        }
    }
    if let Some(v) = &engine.memory_limit {
        parse_memory_limit(v).at("engine.memory_limit")?;
    }
    Ok(())
}
