//! The `segvalue` command line: parse arguments, call the library, map the result to an exit
//! code (see `segvalue::error` and the README). Argument definitions, logging and printing
//! are in [`cli`].

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use segvalue::engine::cluster;
use segvalue::error::{EXIT_BAD_JOB, EXIT_RUN_FAILED};
use segvalue::text::single_line;
use segvalue::{Error, generate, pipeline};

use cli::args::{Cli, Command, Population, load};
use cli::inspect;

mod cli;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Cli::parse();
    let progress = cli::logging::init(&args);
    if let Err(message) = cli::failpoints::configure() {
        tracing::error!(exit_code = EXIT_BAD_JOB, "{}", single_line(&message));
        return ExitCode::from(EXIT_BAD_JOB);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let result = runtime.block_on(run(args.command));
    if let Some(p) = progress {
        p.finish();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our errors already carry their causes in one line; others get anyhow's chain. Either may
            // quote a name with a newline in it: `single_line` escapes it.
            let (code, message) = match e.downcast_ref::<Error>() {
                Some(err) => (err.exit_code(), err.to_string()),
                None => (EXIT_RUN_FAILED, format!("{e:#}")),
            };
            tracing::error!(exit_code = code, "{}", single_line(&message));
            ExitCode::from(code)
        }
    }
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
            inspect::print_views(&session);
        }
        Command::Check { job, output_root } => {
            let (mut spec, run_date, params) = load(&job)?;
            if let Some(root) = output_root {
                spec.set_output_root(&root).map_err(Error::from)?;
            }
            let (checked, session) = pipeline::check(&spec, run_date, &params).await?;
            inspect::print_check(&checked, &session);
        }
        Command::Sql { job } => {
            let (spec, run_date, params) = load(&job)?;
            print!("{}", pipeline::script(&spec, run_date, &params).await?);
        }
        Command::Preview { job, view, limit } => {
            let (spec, run_date, params) = load(&job)?;
            let session = pipeline::open(&spec, run_date, &params).await?;
            inspect::print_rows(&pipeline::preview(&session, &view, limit).await?)?;
        }
        Command::Explain { job, view } => {
            let (spec, run_date, params) = load(&job)?;
            let session = pipeline::open(&spec, run_date, &params).await?;
            for name in pipeline::explain_targets(&session, view.as_deref())? {
                inspect::print_plan(&pipeline::explain(&session, &name).await?);
            }
        }
        Command::Runs { root } => {
            let runs = segvalue::runs::list_runs(&root).await.map_err(Error::from)?;
            inspect::print_runs(&root, runs);
        }
        Command::Scheduler {
            bind,
            external_host,
            executor_timeout_secs,
        } => {
            cluster::run_scheduler(bind, external_host, executor_timeout_secs).await.map_err(Error::from)?;
        }
        Command::Executor {
            scheduler,
            bind_host,
            external_host,
            port,
            grpc_port,
            concurrent_tasks,
            work_dir,
            heartbeat_secs,
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
                heartbeat_secs,
            })
            .await
            .map_err(Error::from)?;
        }
        Command::Generate { out, customers, seed, population } => {
            if customers == 0 {
                return Err(Error::Usage("--customers must be at least 1".into()).into());
            }
            let params = match population {
                Population::Personas => generate::TruthParams::new(customers, seed),
                Population::Single => generate::TruthParams::single(customers, seed),
                Population::Covariates => generate::TruthParams::with_covariates(customers, seed),
            };
            let n = generate::write_dataset(&out, &params)
                .with_context(|| format!("writing {}", out.display()))?;
            println!("customers\t{}\norders\t{}\nsessions\t{}", n.customers, n.orders, n.sessions);
        }
    }
    Ok(())
}
