//! The binary's own modules: arguments, logging and the progress display, and the printing of
//! what the inspection commands return. The library knows nothing of terminals.

pub mod args;
pub mod failpoints;
pub mod inspect;
pub mod logging;
mod progress;
