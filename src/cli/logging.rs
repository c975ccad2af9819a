//! Logging on stderr as the flags ask: text or JSON, the level from `-v`/`-q` (or `RUST_LOG`),
//! and on a terminal the progress spinner.

use tracing_subscriber::Layer;

use super::args::{Cli, LogFormat};
use super::progress::Progress;

/// Text or JSON logs on stderr; on a terminal (text, not `-q`) also a progress spinner,
/// returned so it can be cleared at the end.
pub fn init(cli: &Cli) -> Option<Progress> {
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
    // Ballista's client logs a failed cluster job as an error of its own, which the run then
    // reports as its one error line: at -v it shows, at the default it would be a second line.
    // delta-rs likewise logs the errors its operations return (a failed Delta commit), and its
    // kernel logs opening a table not created yet (which a first commit does) as an error.
    let quiet_client =
        if level == "info" || level == "warn" { ",ballista_core::execution_plans::distributed_query=off,deltalake_core=off,buoyant_kernel=off" } else { "" };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,segvalue={level}{quiet_client}")));
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cli.log_format {
        LogFormat::Json => {
            tracing_subscriber::fmt().with_env_filter(filter()).with_writer(std::io::stderr).with_ansi(false).json().flatten_event(true).init();
            None
        }
        LogFormat::Text if terminal && !cli.quiet => {
            let p = Progress::new();
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
