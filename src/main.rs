//! The `segvalue` command line: parse arguments, call the library, map the result to an exit
//! code (see `segvalue::error` and the README).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::Layer;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::util::pretty::pretty_format_batches;
use segvalue::error::EXIT_RUN_FAILED;
use segvalue::params::{ParamValue, parse_cli_param};
use segvalue::engine::{EngineMode, cluster};
use segvalue::{Error, Job, generate, job, pipeline};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "segvalue", version, about = "Customer segmentation and lifetime value on DataFusion")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format on stderr: human-readable text or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// More log output (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Arguments every job command shares.
#[derive(clap::Args)]
struct JobArgs {
    /// The job file, e.g. jobs/retail.toml.
    job: PathBuf,
    /// Observation end (UTC), YYYY-MM-DD. Nothing after this date is read. Default: today.
    #[arg(long)]
    run_date: Option<String>,
    /// A view parameter, usable as $NAME in SQL; repeatable. VALUE is read as a TOML value
    /// (10, 2.5, true, 2025-01-01), anything else is a string.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Where the SQL runs: local (embedded DataFusion), ballista://HOST:PORT (a Ballista
    /// scheduler) or ballista-standalone (scheduler and executor in this process).
    /// Default: `[engine] mode`, else local.
    #[arg(long, value_parser = EngineMode::parse)]
    engine: Option<EngineMode>,
}

#[derive(Subcommand)]
enum Command {
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
    },
}

mod progress;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress = init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let result = runtime.block_on(run(cli.command));
    if let Some(p) = progress {
        p.finish();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our errors already carry their causes in one line; others get anyhow's chain.
            let (code, message) = match e.downcast_ref::<Error>() {
                Some(err) => (err.exit_code(), err.to_string()),
                None => (EXIT_RUN_FAILED, format!("{e:#}")),
            };
            tracing::error!(exit_code = code, "{message}");
            ExitCode::from(code)
        }
    }
}

/// Text or JSON logs on stderr; on a terminal (text, not `-q`) also a progress spinner,
/// returned so it can be cleared at the end.
fn init_logging(cli: &Cli) -> Option<progress::Progress> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (_, 0) => "info",
        (_, 1) => "debug",
        _ => "trace",
    };
    // Our own crate at the chosen level; dependencies stay at warn unless RUST_LOG says otherwise.
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,segvalue={level}")));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cli.log_format {
        LogFormat::Json => {
            tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).with_ansi(false).json().flatten_event(true).init();
            None
        }
        LogFormat::Text if terminal && !cli.quiet => {
            let p = progress::Progress::new();
            let fmt = tracing_subscriber::fmt::layer().with_writer(p.clone()).with_ansi(true).with_target(false);
            // The spinner sees the run's events at info level whatever -v says.
            let bar = p.clone().with_filter(EnvFilter::new("warn,segvalue=info"));
            tracing_subscriber::registry().with(fmt.with_filter(filter())).with(bar).init();
            Some(p)
        }
        LogFormat::Text => {
            tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).with_ansi(terminal).with_target(false).init();
            None
        }
    }
}

/// Loads the job and the parameters; every failure here is a bad job or argument (exit 2).
fn load(args: &JobArgs) -> Result<(Job, chrono::NaiveDate, Vec<(String, ParamValue)>), Error> {
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

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run { job, output_root } => {
            let (mut spec, run_date, params) = load(&job)?;
            if let Some(root) = output_root {
                spec.set_output_root(&root).map_err(Error::from)?;
            }
            let manifest = pipeline::run(&spec, run_date, &params).await?;
            for t in &manifest.tables {
                println!("{}\t{} rows\t{}", t.table, t.rows, t.location);
            }
        }
        Command::Validate { job } => {
            let (spec, run_date, params) = load(&job)?;
            let session = pipeline::open(&spec, run_date, &params).await?;
            for v in &session.views {
                let cols: Vec<String> = v.schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
                println!("{}\t{}\t{}", v.name, v.path.display(), cols.join(", "));
            }
            eprintln!("ok: {} views planned", session.views.len());
        }
        Command::Sql { job } => {
            let (spec, run_date, params) = load(&job)?;
            print!("{}", pipeline::script(&spec, run_date, &params).await?);
        }
        Command::Preview { job, view, limit } => {
            let (spec, run_date, params) = load(&job)?;
            let session = pipeline::open(&spec, run_date, &params).await?;
            segvalue::views::find(&session.views, &view).map_err(Error::from)?;
            let batches = session
                .ctx
                .table(view.as_str())
                .await
                .and_then(|df| df.limit(0, Some(limit)))
                .map_err(|e| Error::query(format!("view '{view}'"), e))?
                .collect()
                .await
                .map_err(|e| Error::query(format!("view '{view}'"), e))?;
            println!("{}", pretty_format_batches(&batches).context("formatting rows")?);
        }
        Command::Explain { job, view } => {
            let (spec, run_date, params) = load(&job)?;
            let session = pipeline::open(&spec, run_date, &params).await?;
            let names: Vec<String> = match view {
                Some(v) => vec![segvalue::views::find(&session.views, &v).map_err(Error::from)?.name.clone()],
                None => session.views.iter().map(|v| v.name.clone()).collect(),
            };
            for name in names {
                let plans = session
                    .ctx
                    .sql(&format!("EXPLAIN SELECT * FROM \"{name}\""))
                    .await
                    .map_err(|e| Error::query(format!("view '{name}'"), e))?
                    .collect()
                    .await
                    .map_err(|e| Error::query(format!("view '{name}'"), e))?;
                println!("-- view {name}");
                for b in &plans {
                    let (kinds, texts) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
                    for i in 0..b.num_rows() {
                        println!("{}:\n{}", kinds.value(i), texts.value(i));
                    }
                }
            }
        }
        Command::Runs { root } => {
            let runs = segvalue::runs::list_runs(&root).await.map_err(Error::from)?;
            if runs.is_empty() {
                eprintln!("no runs under {}", segvalue::location::redact(&root));
            }
            println!("run_date\tstatus\ttables\trows\trun_id\treason");
            for r in runs {
                let status = if r.incomplete.is_some() { "incomplete" } else { "complete" };
                println!(
                    "{}\t{status}\t{}\t{}\t{}\t{}",
                    r.run_date,
                    r.tables,
                    r.rows,
                    r.run_id.unwrap_or_default(),
                    r.incomplete.unwrap_or_default()
                );
            }
        }
        Command::Scheduler { bind, external_host } => {
            cluster::run_scheduler(bind, external_host).await.map_err(Error::from)?;
        }
        Command::Executor {
            scheduler,
            bind_host,
            external_host,
            port,
            grpc_port,
            concurrent_tasks,
            work_dir,
        } => {
            let (host, sport) = segvalue::engine::parse_host_port(&scheduler)
                .ok_or_else(|| Error::Usage(format!("--scheduler '{scheduler}': expected HOST:PORT")))?;
            cluster::run_executor(cluster::ExecutorArgs {
                scheduler_host: host,
                scheduler_port: sport,
                bind_host,
                external_host,
                port,
                grpc_port,
                concurrent_tasks,
                work_dir,
            })
            .await
            .map_err(Error::from)?;
        }
        Command::Generate { out, customers, seed } => {
            if customers == 0 {
                return Err(Error::Usage("--customers must be at least 1".into()).into());
            }
            let n = generate::write_dataset(&out, &generate::TruthParams::new(customers, seed))
                .with_context(|| format!("writing {}", out.display()))?;
            println!("customers\t{}\norders\t{}\nsessions\t{}", n.customers, n.orders, n.sessions);
        }
    }
    Ok(())
}
