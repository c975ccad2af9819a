//! Progress on a terminal: a spinner with the current step, fed by the library's tracing
//! events (the library knows nothing of terminals). Log lines are printed above the bar.
//!
//! Events read: `stage done` (field `stage`), `clustering candidate` (`candidate` of
//! `candidates`, `k`) and `fitting` (`model`).

use std::io::Write;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};

/// The spinner shared by the layer and the log writer.
#[derive(Clone)]
pub struct Progress(ProgressBar);

impl Progress {
    pub fn new() -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner:.green} [{elapsed_precise}] {wide_msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message("starting");
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    stage: Option<String>,
    candidate: Option<u64>,
    candidates: Option<u64>,
    k: Option<u64>,
    model: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "stage" => self.stage = Some(value.to_string()),
            "model" => self.model = Some(value.to_string()),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "candidate" => self.candidate = Some(value),
            "candidates" => self.candidates = Some(value),
            "k" => self.k = Some(value),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value.max(0) as u64);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Progress {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let msg = match (&f.stage, f.candidate.zip(f.candidates), &f.model) {
            (Some(stage), _, _) => format!("{stage} done"),
            (_, Some((i, n)), _) => {
                let filled = (i * 20 / n.max(1)) as usize;
                format!("clustering: k = {} [{}{}] {i}/{n}", f.k.unwrap_or(0), "#".repeat(filled), "-".repeat(20 - filled))
            }
            (_, _, Some(model)) => format!("fitting {model}"),
            _ => return,
        };
        self.0.set_message(msg);
    }
}

/// Writes log lines above the spinner.
impl<'a> MakeWriter<'a> for Progress {
    type Writer = SuspendedStderr;

    fn make_writer(&'a self) -> SuspendedStderr {
        SuspendedStderr(self.0.clone())
    }
}

pub struct SuspendedStderr(ProgressBar);

impl Write for SuspendedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.suspend(|| std::io::stderr().write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
