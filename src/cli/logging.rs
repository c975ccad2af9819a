//! Logging on stderr as the flags ask: text or JSON, the level from `-v`/`-q` (or `RUST_LOG`),
//! and on a terminal the progress spinner.

use std::io::Write;

use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;

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
            let fmt = tracing_subscriber::fmt::layer().with_writer(OneLine(p.clone())).with_ansi(true).with_target(false);
            // The spinner sees the run's events at info level whatever -v says.
            let bar = p.clone().with_filter(EnvFilter::new("warn,segvalue=info"));
            tracing_subscriber::registry().with(fmt.with_filter(filter())).with(bar).init();
            Some(p)
        }
        LogFormat::Text => {
            tracing_subscriber::fmt().with_env_filter(filter()).with_writer(OneLine(std::io::stderr)).with_ansi(terminal).with_target(false).init();
            None
        }
    }
}

/// Text log events one per line whatever their fields quote: a value with a newline (a name
/// from a job file, a dependency's multi-line error) would otherwise split an event, and
/// cron and Airflow read the last line as the run's outcome. The formatter writes each event
/// in one call, ending in its newline; newlines and carriage returns before it are written
/// as `\n` and `\r`. (JSON events escape them already.)
struct OneLine<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for OneLine<M> {
    type Writer = OneLine<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        OneLine(self.0.make_writer())
    }
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, &b"\n"[..]),
            None => (buf, &b""[..]),
        };
        if !body.iter().any(|b| matches!(b, b'\n' | b'\r')) {
            self.0.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut line = Vec::with_capacity(buf.len() + 8);
        for &b in body {
            match b {
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\r' => line.extend_from_slice(b"\\r"),
                _ => line.push(b),
            }
        }
        line.extend_from_slice(end);
        self.0.write_all(&line)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_with_newlines_is_written_on_one_line() {
        let mut out = OneLine(Vec::new());
        out.write_all(b"ERROR view 'a\nb': bad\r\n").unwrap();
        out.write_all(b"INFO plain\n").unwrap();
        assert_eq!(String::from_utf8(out.0).unwrap(), "ERROR view 'a\\nb': bad\\r\nINFO plain\n");
    }
}
