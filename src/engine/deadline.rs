//! A limit on how long one query may run on a Ballista cluster (`[engine] query_timeout_secs`).
//!
//! Ballista 55's scheduler can lose a job when an executor dies at the wrong moment: a task
//! status that arrives after its stage was rolled back is rejected ("Can't find active stage to
//! update stage outputs"), the surviving executor's slots are not given back, and the job stays
//! "running" with nothing left to schedule it on, so the client waits for ever (the family of
//! apache/datafusion-ballista#2029, #2063 and #2418). A batch job has to end, so every query
//! sent to a cluster carries a deadline: past it the driver cancels the job on the scheduler and
//! the run fails with exit 1, naming the setting, and publishes nothing.
//!
//! The limit wraps Ballista's own query planner, so it covers every statement of a run (views,
//! quality checks, model stages, publishing) without the pipeline knowing about it.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::serde::protobuf::CancelJobParams;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties};
use datafusion_proto::protobuf::LogicalPlanNode;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream};
use std::future::Future;

/// How long the driver waits for the scheduler to take a cancellation.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// Plans through `inner` (Ballista's planner) and puts a [`DeadlineExec`] on top of each plan.
#[derive(Debug)]
pub struct DeadlinePlanner {
    pub inner: Arc<dyn QueryPlanner + Send + Sync>,
    pub limit: Duration,
    pub scheduler_url: String,
}

#[async_trait::async_trait]
impl QueryPlanner for DeadlinePlanner {
    async fn create_physical_plan(&self, plan: &LogicalPlan, state: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        let input = self.inner.create_physical_plan(plan, state).await?;
        Ok(Arc::new(DeadlineExec {
            input,
            limit: self.limit,
            scheduler_url: self.scheduler_url.clone(),
        }))
    }
}

/// Runs `input` and fails its stream once `limit` has passed since it was started, after asking
/// the scheduler to cancel the cluster's job.
#[derive(Debug)]
pub struct DeadlineExec {
    input: Arc<dyn ExecutionPlan>,
    limit: Duration,
    scheduler_url: String,
}

impl DisplayAs for DeadlineExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "DeadlineExec: limit={}s", self.limit.as_secs())
    }
}

impl ExecutionPlan for DeadlineExec {
    fn name(&self) -> &str {
        "DeadlineExec"
    }

    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// Owns no expressions: its child does the work.
    fn apply_expressions(&self, _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().filter(|_| children.is_empty()).ok_or_else(|| DataFusionError::Internal("DeadlineExec takes one child".into()))?;
        Ok(Arc::new(DeadlineExec {
            input,
            limit: self.limit,
            scheduler_url: self.scheduler_url.clone(),
        }))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let inner = self.input.execute(partition, context)?;
        Ok(Box::pin(DeadlineStream {
            schema: inner.schema(),
            inner,
            plan: Arc::clone(&self.input),
            sleep: Box::pin(tokio::time::sleep(self.limit)),
            cancelling: None,
            done: false,
            limit: self.limit,
            scheduler_url: self.scheduler_url.clone(),
        }))
    }
}

/// The batches of a cluster query until its deadline; then, once the scheduler has been asked
/// to cancel the job, one error and the end.
struct DeadlineStream {
    schema: SchemaRef,
    inner: SendableRecordBatchStream,
    /// The plan that submitted the job, for its job id.
    plan: Arc<dyn ExecutionPlan>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    cancelling: Option<BoxFuture<'static, String>>,
    done: bool,
    limit: Duration,
    scheduler_url: String,
}

impl DeadlineStream {
    /// Asks the scheduler to cancel the job `plan` submitted; returns the error's text.
    fn cancel(&self) -> BoxFuture<'static, String> {
        let job = self.plan.downcast_ref::<DistributedQueryExec<LogicalPlanNode>>().and_then(|d| d.job_id()).map(|id| id.to_string());
        let (url, limit) = (self.scheduler_url.clone(), self.limit.as_secs());
        async move {
            let outcome = match &job {
                None => "it had not reached the scheduler".to_string(),
                Some(id) => match tokio::time::timeout(CANCEL_WAIT, cancel_job(&url, id)).await {
                    Ok(Ok(())) => format!("job {id} cancelled"),
                    Ok(Err(e)) => format!("cancelling job {id} failed: {}", crate::text::one_line(&e)),
                    Err(_) => format!("the scheduler did not answer the cancellation of job {id} in {} s", CANCEL_WAIT.as_secs()),
                },
            };
            tracing::warn!(scheduler = url, job = job.as_deref().unwrap_or(""), "query over its time limit: {outcome}");
            format!("the Ballista cluster at {url} did not finish a query within {limit} s ({outcome}); see [engine] query_timeout_secs")
        }
        .boxed()
    }
}

async fn cancel_job(url: &str, job_id: &str) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut client = SchedulerGrpcClient::connect(url.to_string()).await?;
    client.cancel_job(CancelJobParams { job_id: job_id.to_string() }).await?;
    Ok(())
}

impl Stream for DeadlineStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelling.is_none() {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return self.inner.as_mut().poll_next(cx);
            }
            let cancel = self.cancel();
            self.cancelling = Some(cancel);
        }
        let message = std::task::ready!(self.cancelling.as_mut().expect("set above").as_mut().poll(cx));
        self.done = true;
        Poll::Ready(Some(Err(DataFusionError::Execution(message))))
    }
}

impl RecordBatchStream for DeadlineStream {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use futures::StreamExt;

    use super::*;

    fn stream(inner: impl Stream<Item = Result<RecordBatch>> + Send + 'static, limit: Duration) -> DeadlineStream {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        DeadlineStream {
            schema: Arc::clone(&schema),
            inner: Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&schema), inner)),
            plan: Arc::new(EmptyExec::new(schema)),
            sleep: Box::pin(tokio::time::sleep(limit)),
            cancelling: None,
            done: false,
            limit,
            scheduler_url: "http://127.0.0.1:1".into(),
        }
    }

    #[tokio::test]
    async fn a_query_within_its_limit_passes_its_batches_through() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();
        let got: Vec<_> = stream(futures::stream::iter([Ok(batch.clone()), Ok(batch.clone())]), Duration::from_secs(60)).collect().await;
        assert_eq!(got.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [batch.clone(), batch]);
    }

    #[tokio::test]
    async fn a_query_past_its_limit_ends_with_one_error_naming_the_setting() {
        let started = std::time::Instant::now();
        let got: Vec<_> = stream(futures::stream::pending(), Duration::from_millis(200)).collect().await;
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(got.len(), 1, "one error, then the end");
        let message = got[0].as_ref().unwrap_err().to_string();
        assert!(message.contains("did not finish a query within 0 s") && message.contains("[engine] query_timeout_secs"), "{message}");
        // No job had been accepted (the plan is not a cluster query), so nothing to cancel.
        assert!(message.contains("it had not reached the scheduler"), "{message}");
    }
}
