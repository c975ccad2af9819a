//! The command line as the user typed it ([`Cli`]), and [`load`], which turns a job command's
//! arguments into the finished job, run date and parameters the library takes.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use segvalue::engine::EngineMode;
use segvalue::params::{ParamValue, parse_cli_param};
use segvalue::{Error, Job, job};

#[derive(Parser)]
#[command(name = "segvalue", version, about = "Customer segmentation and lifetime value on DataFusion")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: human-readable text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Arguments every job command shares.
#[derive(clap::Args)]
pub struct JobArgs {
    /// The job file, e.g. jobs/retail.toml.
    pub job: PathBuf,
    /// Observation end (UTC), YYYY-MM-DD. Nothing after this date is read. Default: today.
    #[arg(long)]
    pub run_date: Option<String>,
    /// A view parameter, usable as $NAME in SQL; repeatable. VALUE is read as a TOML value
    /// (10, 2.5, true, 2025-01-01), anything else is a string.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Where the SQL runs: local (embedded DataFusion), ballista://HOST:PORT (a Ballista
    /// scheduler) or ballista-standalone (scheduler and executor in this process).
    /// Default: `[engine] mode`, else local.
    #[arg(long, value_parser = EngineMode::parse)]
    pub engine: Option<EngineMode>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a job and publish its tables.
    Run {
        #[command(flatten)]
        job: JobArgs,
        /// Replace `[output] root` (a local path or an object-store URL).
        #[arg(long)]
        output_root: Option<String>,
    },
    /// Parse, resolve and plan every view without running them; print them in dependency order.
    Validate {
        #[command(flatten)]
        job: JobArgs,
    },
    /// Check what a run needs before it computes, without running it: `validate`, plus the
    /// pseudonym key, every source listing files of its format, the output root taking a
    /// write (an object put and deleted under `_staging/`) and a score run's saved model.
    /// Reads no source rows; for an Airflow pre-task or a CI gate.
    Check {
        #[command(flatten)]
        job: JobArgs,
        /// Replace `[output] root` (a local path or an object-store URL).
        #[arg(long)]
        output_root: Option<String>,
    },
    /// Print the SQL a run executes as one script (quality checks, views in dependency order,
    /// parameters substituted), e.g. to run the same queries in DuckDB. Checks the quality rules.
    Sql {
        #[command(flatten)]
        job: JobArgs,
    },
    /// Print the first rows of one view.
    Preview {
        #[command(flatten)]
        job: JobArgs,
        /// The view to show.
        view: String,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Print the logical and physical plans of one view, or of every view.
    Explain {
        #[command(flatten)]
        job: JobArgs,
        /// The view to explain (default: all, in dependency order).
        view: Option<String>,
    },
    /// List the run dates published under an output root: complete or not, tables, rows.
    Runs {
        /// The output root (a local path or an object-store URL).
        root: String,
    },
    /// Serve a Ballista scheduler (same version as this binary's engine) until stopped.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
        /// Host name executors and drivers use to reach this scheduler (default: the bind address).
        #[arg(long)]
        external_host: Option<String>,
        /// Seconds without a heartbeat after which an executor counts as lost and its tasks run
        /// on the others (Ballista's default; keep it above the executors' --heartbeat-secs).
        #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u64).range(1..))]
        executor_timeout_secs: u64,
    },
    /// Serve a Ballista executor registered with a scheduler until stopped.
    Executor {
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind_host: String,
        /// Host name the scheduler, other executors and drivers use to reach this executor.
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (shuffle data and results).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (push-based scheduling).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Tasks run at once; 0 = one per core.
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// Directory for shuffle files (default: a temporary directory).
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Seconds between heartbeats to the scheduler (Ballista's default).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
        heartbeat_secs: u64,
    },
    /// Write a synthetic dataset with known ground truth.
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 3000)]
        customers: usize,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// `personas`: five kinds of customer (the truth segmentation recovers); `single`: one
        /// population sharing one BG/NBD and Gamma-Gamma prior (the truth CLV fits recover);
        /// `covariates`: `single` with the acquisition source shifting the purchase and
        /// drop-out rates (the truth covariate fits recover).
        #[arg(long, value_enum, default_value_t = Population::Personas)]
        population: Population,
    },
}

/// The population `generate` draws customers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Population {
    Personas,
    Single,
    Covariates,
}

/// Loads the job and the parameters; every failure here is a bad job or argument (exit 2).
pub fn load(args: &JobArgs) -> Result<(Job, chrono::NaiveDate, Vec<(String, ParamValue)>), Error> {
    let mut job = Job::load(&args.job)?;
    if let Some(mode) = &args.engine {
        job.engine.mode = mode.clone();
    }
    let run_date = match &args.run_date {
        Some(s) => job::parse_run_date(s).map_err(Error::Usage)?,
        None => chrono::Utc::now().date_naive(),
    };
    let params = args
        .params
        .iter()
        .map(|p| parse_cli_param(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Usage)?;
    Ok((job, run_date, params))
}
