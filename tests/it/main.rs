//! Integration tests: one binary, one module per topic. They drive the real `segvalue`
//! binary and read its output back with the parquet crate and with DuckDB (an outside reader).

mod actions;
mod bad_input;
mod ballista;
mod clv;
mod common;
mod delta;
mod e2e;
mod functions;
mod errors;
mod history;
mod params;
mod privacy;
mod publish;
mod quality;
mod report;
mod s3;
mod sample;
mod segmentation;
mod sql_engine;
mod validate;
