//! Guest stdout and stderr: kept per invocation, bounded, and logged with
//! the invocation's app, function and request id when it ends.
//!
//! (Long because it is one piece: the capability, the kept stream with its
//! four wasmtime-wasi stream traits, and the log budget they share; a third
//! of it is tests.)
//!
//! Inheriting the process's stdout (as `wasmtime serve` does) would let an
//! untrusted guest write without bound and interleave its lines with other
//! guests'. Here each stream keeps its first [`GuestOutput::CAPACITY`]
//! bytes; the rest is counted and dropped, never refused (a guest must not
//! fail because it logs too much).
//!
//! What a guest writes is untrusted text in the operator's log, so:
//!
//! - It is logged as the value of one field, `output`, never as the
//!   message: the log formatter quotes it and escapes newlines, carriage
//!   returns, ESC and every other control character (gust's default format
//!   prints it as Rust's `{:?}` of a string; a JSON formatter as a JSON
//!   string), so guest output can neither end a log line nor start one that
//!   passes for gust's own (`gust::invocation` records included).
//! - What one function's guests get logged is rate limited: a token bucket
//!   per function of [`LOG_RATE`] log bytes per second with a burst of
//!   [`LOG_BURST`], the cost of an output being its escaped length plus
//!   [`LINE_COST`] for the rest of its line. An output that finds the
//!   bucket empty is dropped whole; the bytes dropped are counted, reported
//!   in a `warn` line at most once per [`REPORT_INTERVAL`] per function
//!   (a first drop at once, later ones when the interval is over), and
//!   added to a process-wide total.
//!
//! With a [`LogBook`] in the operator's settings
//! (`CapabilitySettings::logs`), the output is also kept there line by line
//! for the admin API, whatever the tracing filter and rate limit: the
//! book bounds each function's lines itself. What came through
//! `wasi:logging` (see `logging`) is marked in the kept stderr, so its
//! lines are kept as stream `log` with their level.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::Capability;
use crate::logs::{LogBook, LogStream};
use crate::manifest::{AppSpec, CapabilitySettings, FunctionId};

/// The guest-output capability: every instance gets its own kept
/// stdout and stderr (nothing to grant: a guest may always write them).
pub(crate) struct GuestOutputs;

/// An instance's standard streams.
#[derive(Default)]
pub(crate) struct Streams {
    pub(crate) stdout: GuestOutput,
    pub(crate) stderr: GuestOutput,
}

impl Streams {
    /// The output of the request that just ended, split off the streams
    /// a reused instance keeps.
    pub(crate) fn split_off(&self) -> (GuestOutput, GuestOutput) {
        (self.stdout.split_off(), self.stderr.split_off())
    }

    /// The streams' output so far (of an instance that is going away).
    pub(crate) fn taken(&self) -> (GuestOutput, GuestOutput) {
        (self.stdout.clone(), self.stderr.clone())
    }
}

impl Capability for GuestOutputs {
    /// Where the app's output is kept line by line, if anywhere.
    type App = Option<LogBook>;
    type Instance = Streams;

    fn open(_app: &AppSpec, settings: &CapabilitySettings) -> anyhow::Result<Option<LogBook>> {
        Ok(settings.logs.clone())
    }

    fn instance(book: &Option<LogBook>, _function: &FunctionId) -> Streams {
        Streams {
            stdout: GuestOutput::kept_in(book.clone()),
            stderr: GuestOutput::kept_in(book.clone()),
        }
    }

    fn configure_wasi(streams: &Streams, wasi: &mut wasmtime_wasi::WasiCtxBuilder) {
        // Kept (bounded) and logged with the request: a trapping guest's
        // panic message is the first thing a developer needs to see.
        wasi.stdout(streams.stdout.clone())
            .stderr(streams.stderr.clone());
    }
}

/// Log bytes per second the guest output of one function may produce,
/// sustained: 64 KiB, about 300 short lines a second.
pub(crate) const LOG_RATE: u64 = 64 << 10;

/// Log bytes the guest output of one function may produce at once: 256 KiB,
/// four invocations' worth of a full [`GuestOutput::CAPACITY`] stream.
pub(crate) const LOG_BURST: u64 = 256 << 10;

/// What a logged output costs besides its own bytes: the timestamp, level,
/// target, message, app, function, request id and stream of its line.
pub(crate) const LINE_COST: u64 = 192;

/// A function's dropped guest output is reported at most this often.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// Guest output bytes written but not logged, process-wide: past a
/// stream's [`GuestOutput::CAPACITY`] or over a function's log rate limit.
static DROPPED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Every function's log budget, by app and function. An entry is a few
/// dozen bytes and lives as long as the process: there are as many as
/// functions ever loaded.
static BUDGETS: Mutex<BTreeMap<FunctionId, BTreeMap<FunctionId, LogBudget>>> =
    Mutex::new(BTreeMap::new());

/// Guest output bytes written but not logged since the process started
/// (`gust_guest_log_bytes_dropped_total`).
pub(crate) fn log_bytes_dropped_total() -> u64 {
    DROPPED_TOTAL.load(Ordering::Relaxed)
}

/// One function's token bucket of log bytes.
#[derive(Debug)]
struct LogBudget {
    /// Log bytes that may still be produced; negative after an output that
    /// cost more than was left (it is logged whole, and paid back first).
    tokens: f64,
    refilled: Instant,
    /// Output bytes dropped since the last report.
    dropped: u64,
    dropped_total: u64,
    reported: Option<Instant>,
    /// A report is scheduled for then (see [`LogBudget::flush`]).
    flush_at: Option<Instant>,
}

/// What [`LogBudget::charge`] decided.
#[derive(Debug, PartialEq, Eq)]
struct Charged {
    /// The output is logged.
    logged: bool,
    /// Report now: the bytes dropped since the last report, and in all.
    report: Option<(u64, u64)>,
    /// Report then what is dropped until then ([`LogBudget::flush`]).
    flush_at: Option<Instant>,
}

impl LogBudget {
    fn new(now: Instant) -> LogBudget {
        LogBudget {
            tokens: LOG_BURST as f64,
            refilled: now,
            dropped: 0,
            dropped_total: 0,
            reported: None,
            flush_at: None,
        }
    }

    /// Whether an output that costs `cost` log bytes is logged; if not, the
    /// `bytes` the guest wrote are counted as dropped. A first drop is
    /// reported at once; later ones when [`REPORT_INTERVAL`] has passed
    /// since the last report: with the next output then, or, if the caller
    /// `can_schedule` it, by a flush at that time.
    fn charge(&mut self, now: Instant, bytes: u64, cost: u64, can_schedule: bool) -> Charged {
        let refill = now.saturating_duration_since(self.refilled).as_secs_f64() * LOG_RATE as f64;
        self.tokens = (self.tokens + refill).min(LOG_BURST as f64);
        self.refilled = self.refilled.max(now);
        let logged = self.tokens > 0.0;
        if logged {
            self.tokens -= cost as f64;
        } else {
            self.dropped += bytes;
            self.dropped_total += bytes;
        }
        let mut charged = Charged {
            logged,
            report: None,
            flush_at: None,
        };
        // A flush an interval late is lost (its runtime shut down): report
        // without it.
        if self
            .flush_at
            .is_some_and(|at| now.saturating_duration_since(at) >= REPORT_INTERVAL)
        {
            self.flush_at = None;
        }
        if self.dropped == 0 || self.flush_at.is_some() {
            return charged;
        }
        match self.reported.map(|at| at + REPORT_INTERVAL) {
            Some(next) if now < next => {
                if can_schedule {
                    self.flush_at = Some(next);
                    charged.flush_at = Some(next);
                }
            }
            _ => charged.report = Some(self.report(now)),
        }
        charged
    }

    /// The scheduled report: what was dropped since the last one, if
    /// anything.
    fn flush(&mut self, now: Instant) -> Option<(u64, u64)> {
        self.flush_at = None;
        (self.dropped > 0).then(|| self.report(now))
    }

    fn report(&mut self, now: Instant) -> (u64, u64) {
        self.reported = Some(now);
        (std::mem::take(&mut self.dropped), self.dropped_total)
    }
}

/// Runs `f` on the budget of `function` of `app`.
fn with_budget<T>(
    app: &FunctionId,
    function: &FunctionId,
    f: impl FnOnce(&mut LogBudget, Instant) -> T,
) -> T {
    let mut budgets = BUDGETS.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if !budgets.contains_key(app) {
        budgets.insert(app.clone(), BTreeMap::new());
    }
    let functions = budgets.get_mut(app).expect("just inserted");
    if !functions.contains_key(function) {
        functions.insert(function.clone(), LogBudget::new(now));
    }
    f(functions.get_mut(function).expect("just inserted"), now)
}

/// The `warn` line for output of `function` dropped over its rate limit.
fn report_dropped(
    app: &FunctionId,
    function: &FunctionId,
    (dropped_bytes, dropped_bytes_total): (u64, u64),
) {
    tracing::warn!(
        target: "gust::guest",
        %app,
        %function,
        dropped_bytes,
        dropped_bytes_total,
        "guest output over the function's log rate limit was dropped"
    );
}

/// The log bytes `output` takes once escaped, as `{:?}` escapes it (less
/// its quotes).
fn escaped_len(output: &str) -> u64 {
    output
        .chars()
        .map(|c| match c.escape_debug().len() {
            // Not escaped (`{:?}` of a string leaves `'` as it is).
            _ if c == '\'' => 1,
            1 => c.len_utf8() as u64,
            // An escape is ASCII.
            n => n as u64,
        })
        .sum()
}

/// One guest output stream (stdout or stderr) of one invocation, and the
/// book its lines are also kept in, if any.
#[derive(Clone, Default)]
pub(crate) struct GuestOutput(Arc<Mutex<Kept>>, Option<LogBook>);

#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    dropped: u64,
    /// The spans of `bytes` `wasi:logging` wrote, in order, with their
    /// levels.
    logged: Vec<(std::ops::Range<usize>, &'static str)>,
}

impl GuestOutput {
    /// Bytes kept per stream per invocation: 64 KiB.
    pub(crate) const CAPACITY: usize = 64 << 10;

    /// An empty stream whose lines are also kept in `book`.
    fn kept_in(book: Option<LogBook>) -> GuestOutput {
        GuestOutput(Arc::default(), book)
    }

    /// Keeps what fits of `data`, counts the rest as dropped.
    pub(crate) fn push(&self, data: &[u8]) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Self::keep(&mut kept, data);
    }

    /// Keeps what fits of a `wasi:logging` line at `level`, marked as such.
    pub(crate) fn push_logged(&self, level: &'static str, line: &[u8]) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let start = kept.bytes.len();
        Self::keep(&mut kept, line);
        let end = kept.bytes.len();
        if end > start {
            kept.logged.push((start..end, level));
        }
    }

    fn keep(kept: &mut Kept, data: &[u8]) {
        let room = Self::CAPACITY.saturating_sub(kept.bytes.len());
        let take = room.min(data.len());
        kept.bytes.extend_from_slice(&data[..take]);
        kept.dropped += (data.len() - take) as u64;
    }

    /// Moves what was kept so far into a new `GuestOutput`, leaving this
    /// one empty for the next invocation of a reused instance.
    pub(crate) fn split_off(&self) -> GuestOutput {
        let kept = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        GuestOutput(Arc::new(Mutex::new(kept)), self.1.clone())
    }

    /// Keeps what the guest wrote in the book, line by line: printed
    /// lines as `stream`, `wasi:logging` lines as `log` with their level
    /// (without the level the kept text starts with).
    fn keep_lines(
        &self,
        kept: &Kept,
        stream: LogStream,
        app: &FunctionId,
        function: &FunctionId,
        request_id: &str,
    ) {
        let Some(book) = &self.1 else { return };
        let printed = |bytes: &[u8]| {
            for line in String::from_utf8_lossy(bytes).lines() {
                if !line.trim().is_empty() {
                    book.push(app, function, Some(request_id), stream, None, line);
                }
            }
        };
        let mut at = 0;
        for (span, level) in &kept.logged {
            printed(kept.bytes.get(at..span.start).unwrap_or_default());
            let text = String::from_utf8_lossy(kept.bytes.get(span.clone()).unwrap_or_default());
            let text = text
                .strip_prefix(level)
                .unwrap_or(&text)
                .trim_start_matches(' ');
            let text = text.strip_suffix('\n').unwrap_or(text);
            book.push(
                app,
                function,
                Some(request_id),
                LogStream::Log,
                Some(level),
                text,
            );
            at = span.end;
        }
        printed(kept.bytes.get(at..).unwrap_or_default());
        if kept.dropped > 0 {
            let note = format!(
                "[gust: {} more bytes dropped: past {} KiB of {stream} in one request]",
                kept.dropped,
                Self::CAPACITY >> 10
            );
            book.push(app, function, Some(request_id), stream, None, &note);
        }
    }

    /// Logs what the guest wrote, if anything, as one quoted and escaped
    /// field, within the function's log rate limit.
    pub(crate) fn log(
        &self,
        stream: &'static str,
        app: &FunctionId,
        function: &FunctionId,
        request_id: &str,
    ) {
        let kept = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        let book_stream = if stream == "stdout" {
            LogStream::Stdout
        } else {
            LogStream::Stderr
        };
        self.keep_lines(&kept, book_stream, app, function, request_id);
        if kept.bytes.is_empty() || !tracing::enabled!(target: "gust::guest", tracing::Level::INFO)
        {
            return;
        }
        let text = String::from_utf8_lossy(&kept.bytes);
        let output = text.trim_start_matches(['\n', '\r']).trim_end();
        // Dropped whole, the output takes what was past the capacity with it
        // into the function's count: no `info` line reports it.
        let written = kept.bytes.len() as u64 + kept.dropped;
        let cost = LINE_COST + escaped_len(output);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let charged = with_budget(app, function, |budget, now| {
            budget.charge(now, written, cost, runtime.is_some())
        });
        let dropped = if charged.logged {
            kept.dropped
        } else {
            written
        };
        if dropped > 0 {
            DROPPED_TOTAL.fetch_add(dropped, Ordering::Relaxed);
        }
        if let Some(report) = charged.report {
            report_dropped(app, function, report);
        }
        if let (Some(at), Some(runtime)) = (charged.flush_at, runtime) {
            let (app, function) = (app.clone(), function.clone());
            runtime.spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                if let Some(report) = with_budget(&app, &function, |budget, now| budget.flush(now))
                {
                    report_dropped(&app, &function, report);
                }
            });
        }
        let logged = charged.logged;
        if logged {
            // `output` as a field, not the message: formatters quote and
            // escape field values (see the module docs).
            tracing::info!(
                target: "gust::guest",
                %app,
                %function,
                request_id,
                stream,
                dropped_bytes = kept.dropped,
                output,
                "guest output"
            );
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    // Writes complete at once, so no adapter task is needed.
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(Self::CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> FunctionId {
        FunctionId::try_from(name).unwrap()
    }

    #[test]
    fn keeps_the_first_capacity_bytes_and_counts_the_rest() {
        let out = GuestOutput::default();
        out.push(&vec![b'a'; GuestOutput::CAPACITY - 1]);
        out.push(b"bcd");
        let kept = out.0.lock().unwrap();
        assert_eq!(kept.bytes.len(), GuestOutput::CAPACITY);
        assert_eq!(kept.bytes.last(), Some(&b'b'));
        assert_eq!(kept.dropped, 2);
    }

    /// What `log` writes through a subscriber set up as `gust`'s `main`
    /// sets it up (default format, no colours), for a function of its own.
    fn logged(function: &str, writes: &[&[u8]]) -> String {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            for bytes in writes {
                let out = GuestOutput::default();
                out.push(bytes);
                out.log("stderr", &id("test"), &id(function), "req-1");
            }
        });
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn guest_output_is_one_escaped_field_of_one_line() {
        let forged =
            "INFO gust::invocation: invocation request_id=x function=victim fuel=999999999999";
        let written = format!(
            "ok\n{forged}\r\n\r\x1b[2K{forged}\ttab\0nul\u{7f}\u{2028}{forged}\u{85}\"\\ \n\n"
        );
        let log = logged("escaping", &[written.as_bytes(), b"\xff\xfe bad utf-8\n"]);
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(
            !log.chars()
                .any(|c| c != '\n' && (c.is_control() || c == '\u{2028}')),
            "{log:?}"
        );
        let line = lines[0];
        assert!(line.contains(" INFO gust::guest: guest output "), "{line}");
        // Everything the guest wrote is one quoted field value, exactly as
        // `{:?}` prints it.
        let output = format!("output={:?}", written.trim_end());
        assert!(line.ends_with(&output), "{line}\n{output}");
        assert!(
            line.contains(r#"\u{1b}[2K"#) && line.contains(r"\r\n\r"),
            "{line}"
        );
        assert_eq!(line.matches("function=").count(), 4, "{line}");
        assert!(line.contains(" function=escaping "), "{line}");
        assert!(
            lines[1].ends_with("output=\"\u{fffd}\u{fffd} bad utf-8\""),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn a_flood_is_cut_to_the_burst_and_the_drop_reported_once() {
        let flood = vec![b'x'; GuestOutput::CAPACITY];
        let started = Instant::now();
        let log = logged("flood", &[flood.as_slice(); 20]);
        let refilled = started.elapsed().as_secs_f64() * LOG_RATE as f64;
        let outputs = log.lines().filter(|l| l.contains(" INFO ")).count();
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains(" WARN ")).collect();
        // The burst holds four, less the line costs: the fourth is logged
        // on what is left, in debt. Then what refilled while this ran.
        let cost = (GuestOutput::CAPACITY as u64 + LINE_COST) as f64;
        let most = 4 + (refilled / cost).ceil() as usize;
        assert!((4..=most).contains(&outputs), "{outputs} > {most}: {log}");
        assert_eq!(warnings.len(), 1, "{log}");
        let dropped = GuestOutput::CAPACITY as u64;
        assert!(
            warnings[0].ends_with(&format!(
                "guest output over the function's log rate limit was dropped app=test function=flood dropped_bytes={dropped} dropped_bytes_total={dropped}"
            )),
            "{}",
            warnings[0]
        );
        assert!(log_bytes_dropped_total() >= (20 - most as u64) * dropped);
    }

    #[test]
    fn the_budget_refills_at_the_rate_and_reports_at_most_once_per_interval() {
        let charged = |logged, report, flush_at| Charged {
            logged,
            report,
            flush_at,
        };
        let start = Instant::now();
        let next = start + REPORT_INTERVAL;
        let mut budget = LogBudget::new(start);
        assert_eq!(
            budget.charge(start, 10, LOG_BURST, true),
            charged(true, None, None)
        );
        // The first drop is reported at once.
        assert_eq!(
            budget.charge(start, 10, 1, true),
            charged(false, Some((10, 10)), None)
        );
        // The next, when the interval is over: by a flush, scheduled once.
        assert_eq!(
            budget.charge(start, 5, 1, true),
            charged(false, None, Some(next))
        );
        // Half a second refills half the rate.
        let later = start + Duration::from_millis(500);
        assert_eq!(
            budget.charge(later, 1, LOG_RATE / 2, true),
            charged(true, None, None)
        );
        assert_eq!(budget.charge(later, 7, 1, true), charged(false, None, None));
        assert_eq!(budget.flush(next), Some((12, 22)));
        assert_eq!(budget.flush(next), None);
        // Never more than the burst, however long it waited.
        let much_later = next + Duration::from_secs(3600);
        assert_eq!(
            budget.charge(much_later, 1, LOG_BURST - 1, true),
            charged(true, None, None)
        );
        assert_eq!(
            budget.charge(much_later, 1, 1, true),
            charged(true, None, None)
        );
        // Without a flush to schedule, the drops wait for the next output
        // after the interval, logged or not.
        assert_eq!(
            budget.charge(much_later, 3, 1, false),
            charged(false, Some((3, 25)), None)
        );
        assert_eq!(
            budget.charge(much_later, 4, 1, false),
            charged(false, None, None)
        );
        let after = much_later + REPORT_INTERVAL + Duration::from_secs(1);
        assert_eq!(
            budget.charge(after, 1, 1, false),
            charged(true, Some((4, 29)), None)
        );
        // A flush that never ran (its runtime is gone) holds no report back
        // for longer than an interval.
        budget.tokens = -1.0e12;
        let flush = after + REPORT_INTERVAL;
        assert_eq!(
            budget.charge(after, 6, 1, true),
            charged(false, None, Some(flush))
        );
        let lost = flush + REPORT_INTERVAL;
        assert_eq!(
            budget.charge(lost, 1, 1, true),
            charged(false, Some((7, 36)), None)
        );
    }

    #[test]
    fn lines_are_kept_in_the_book_with_logging_marked() {
        let book = LogBook::new(100);
        let (app, function) = (id("book"), id("f"));
        let err = GuestOutput::kept_in(Some(book.clone()));
        err.push(b"\nfirst\r\nsecond\n\n");
        err.push_logged("WARN", b"WARN ctx: careful\n");
        err.push(b"third");
        err.log("stderr", &app, &function, "req-9");
        let out = GuestOutput::kept_in(Some(book.clone()));
        out.push(&vec![b'x'; GuestOutput::CAPACITY + 5]);
        out.log("stdout", &app, &function, "req-9");
        let lines = book.query(&app, None, None, 100);
        let got: Vec<_> = lines
            .iter()
            .map(|l| (l.stream, l.level.as_deref(), l.message.as_str()))
            .collect();
        let cut = format!(
            "{}{}",
            "x".repeat(LogBook::MAX_LINE_BYTES),
            LogBook::TRUNCATED
        );
        assert_eq!(
            got,
            [
                (LogStream::Stderr, None, "first"),
                (LogStream::Stderr, None, "second"),
                (LogStream::Log, Some("WARN"), "ctx: careful"),
                (LogStream::Stderr, None, "third"),
                (LogStream::Stdout, None, cut.as_str()),
                (
                    LogStream::Stdout,
                    None,
                    "[gust: 5 more bytes dropped: past 64 KiB of stdout in one request]"
                ),
            ]
        );
        assert!(
            lines
                .iter()
                .all(|l| l.request_id.as_deref() == Some("req-9")
                    && l.app == "book"
                    && l.function == "f")
        );
        // Split off for the next request, a stream keeps its book.
        err.push(b"next");
        err.split_off().log("stderr", &app, &function, "req-10");
        assert_eq!(book.query(&app, None, None, 1)[0].message, "next");
    }

    #[test]
    fn escaped_len_is_what_debug_adds_to_the_quotes() {
        let text = "a\n\r\x1b\t\0\u{7f}\u{2028}\"\\é'";
        assert_eq!(escaped_len(text) as usize, format!("{text:?}").len() - 2);
    }
}
