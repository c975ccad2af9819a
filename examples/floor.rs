//! The floor for the whole-job benchmark (`bench/harness.py`): the least work any job over the
//! orders has to do, with DataFusion's defaults and nothing of segvalue.
//!
//!     floor ORDERS_PARQUET_DIR
//!
//! Registers the directory in a plain `SessionContext`, runs one per-customer aggregate, counts
//! the rows of the result stream without keeping them and prints `{"seconds", "groups"}`.

use std::time::Instant;

use datafusion::prelude::{ParquetReadOptions, SessionContext};
// Already a dependency of segvalue; DataFusion does not re-export the `Stream` trait.
use futures::StreamExt;

const QUERY: &str =
    "SELECT customer_id, count(*), sum(amount), min(order_ts), max(order_ts) FROM orders GROUP BY customer_id";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir] = args.as_slice() else {
        return Err("usage: floor ORDERS_PARQUET_DIR".into());
    };
    let t = Instant::now();
    let ctx = SessionContext::new();
    ctx.register_parquet("orders", dir, ParquetReadOptions::default()).await?;
    let mut stream = ctx.sql(QUERY).await?.execute_stream().await?;
    let mut groups = 0usize;
    while let Some(batch) = stream.next().await {
        groups += batch?.num_rows();
    }
    let seconds = t.elapsed().as_secs_f64();
    println!(r#"{{"seconds": {seconds}, "groups": {groups}}}"#);
    Ok(())
}
