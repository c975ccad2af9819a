//! What `preview` and `explain` compute over an opened session: a view's first rows and its
//! plans. Printing them is the binary's job.

use datafusion::arrow::array::{AsArray, RecordBatch};

use super::session::Session;
use crate::error::Error;
use crate::views;

/// The logical and physical plans of one view, as DataFusion's `EXPLAIN` gives them.
#[derive(Debug, Clone)]
pub struct ViewPlan {
    pub view: String,
    /// (plan type, plan text), e.g. ("logical_plan", "Projection: …").
    pub plans: Vec<(String, String)>,
}

/// The first `limit` rows of `view`.
pub async fn preview(session: &Session, view: &str, limit: usize) -> Result<Vec<RecordBatch>, Error> {
    views::find(&session.views, view)?;
    let batches = session
        .ctx
        .table(view)
        .await
        .and_then(|df| df.limit(0, Some(limit)))
        .map_err(|e| Error::query(format!("view '{view}'"), e))?
        .collect()
        .await
        .map_err(|e| Error::query(format!("view '{view}'"), e))?;
    Ok(batches)
}

/// The views `explain` shows: `view` (checked to exist) or every view in dependency order.
pub fn explain_targets(session: &Session, view: Option<&str>) -> Result<Vec<String>, Error> {
    Ok(match view {
        Some(v) => vec![views::find(&session.views, v)?.name.clone()],
        None => session.views.iter().map(|v| v.name.clone()).collect(),
    })
}

/// The plans of the view `name`.
pub async fn explain(session: &Session, name: &str) -> Result<ViewPlan, Error> {
    let batches = session
        .ctx
        .sql(&format!("EXPLAIN SELECT * FROM \"{name}\""))
        .await
        .map_err(|e| Error::query(format!("view '{name}'"), e))?
        .collect()
        .await
        .map_err(|e| Error::query(format!("view '{name}'"), e))?;
    let mut plans = Vec::new();
    for b in &batches {
        let (kinds, texts) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
        for i in 0..b.num_rows() {
            plans.push((kinds.value(i).to_string(), texts.value(i).to_string()));
        }
    }
    Ok(ViewPlan { view: name.to_string(), plans })
}
