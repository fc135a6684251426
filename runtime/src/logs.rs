//! Per-function logs kept in memory: what guests print to stdout and
//! stderr and what they log through `wasi:logging`, for the admin API
//! (`GET /v1/apps/{app}/logs`).
//!
//! A [`LogBook`] is a node's: the embedder makes one and hands it to the
//! apps it loads (`CapabilitySettings::logs`); nothing is kept without one.
//! Each function of each app has a ring of its last lines, bounded in count
//! (`lines_per_function`, the operator's `admin.log_lines`) and in bytes
//! (that many times [`LogBook::BYTES_PER_LINE`]); a line is cut at
//! [`LogBook::MAX_LINE_BYTES`]. A ring is made on a function's first line,
//! so functions that never log cost nothing, and a deleted app's rings go
//! with [`LogBook::forget_app`]. A node's worst case is every function
//! logging long lines without pause: `log_lines` x 256 bytes (256 KiB at
//! the default 1000) per function.
//!
//! The lines are the guest's own text: an app sees only its own, and what
//! serves them must escape them (JSON does).
//!
//! These lines are kept besides the `gust::guest` tracing lines, not
//! instead: the tracing lines are rate limited per function for the
//! operator's log; the rings need no limit, a flood only pushes the
//! flooding function's older lines out.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use crate::manifest::FunctionId;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The guest's standard output.
    Stdout,
    /// The guest's standard error.
    Stderr,
    /// `wasi:logging`.
    Log,
}

impl LogStream {
    /// `stdout`, `stderr` or `log`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Log => "log",
        }
    }
}

impl std::fmt::Display for LogStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One kept line, as the admin API serves it.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// When gust kept it (the end of the guest's invocation for printed
    /// output), RFC 3339 with microseconds.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// Its place among every line of the node's book: increasing, so a
    /// client can tell lines of the same instant apart and in order.
    pub seq: u64,
    /// The app's id.
    pub app: String,
    /// The function's id.
    pub function: String,
    /// Where it came from.
    pub stream: LogStream,
    /// The `wasi:logging` level (`TRACE` .. `CRITICAL`); none for printed
    /// output.
    pub level: Option<String>,
    /// The invocation's request id.
    pub request_id: Option<String>,
    /// The text, without its line ending; at most
    /// [`LogBook::MAX_LINE_BYTES`] of the guest's bytes.
    pub message: String,
    /// The guest's line was longer and was cut (the message ends with
    /// [`LogBook::TRUNCATED`]).
    pub truncated: bool,
}

fn rfc3339<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_micros(*time))
}

/// A line in a ring: what [`LogLine`] has but the ids its ring knows.
#[derive(Debug)]
struct Entry {
    time: SystemTime,
    seq: u64,
    stream: LogStream,
    level: Option<Box<str>>,
    request_id: Option<Box<str>>,
    message: Box<str>,
    truncated: bool,
}

impl Entry {
    /// Bytes the entry holds on the heap, roughly, for the byte bound.
    fn bytes(&self) -> usize {
        std::mem::size_of::<Entry>()
            + self.message.len()
            + self.level.as_ref().map_or(0, |l| l.len())
            + self.request_id.as_ref().map_or(0, |r| r.len())
    }
}

/// One function's last lines.
#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
}

/// One app's rings, by function.
type AppLogs = Mutex<HashMap<FunctionId, Ring>>;

/// A node's kept guest logs: a ring of lines per function of every app.
/// Cheap to clone (one shared book).
#[derive(Clone)]
pub struct LogBook(Arc<Book>);

struct Book {
    lines_per_function: usize,
    bytes_per_function: usize,
    seq: AtomicU64,
    /// One lock per app, so apps logging at once do not wait on each other.
    apps: RwLock<HashMap<FunctionId, Arc<AppLogs>>>,
}

impl std::fmt::Debug for LogBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBook")
            .field("lines_per_function", &self.0.lines_per_function)
            .field("bytes_per_function", &self.0.bytes_per_function)
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they are the same book.
impl PartialEq for LogBook {
    fn eq(&self, other: &LogBook) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LogBook {}

impl LogBook {
    /// Bytes of the guest's text kept per line: 4 KiB. A longer line is
    /// cut at a character boundary and marked.
    pub const MAX_LINE_BYTES: usize = 4 << 10;

    /// What ends a cut line's message.
    pub const TRUNCATED: &'static str = " [truncated]";

    /// Bytes a function's ring may hold per line it keeps, lines and their
    /// bookkeeping (about 100 bytes a line): 256, room for lines of 150
    /// characters. Longer lines are kept too, fewer of them: past the
    /// ring's bytes the oldest lines go, as past its line count (the newest
    /// line always stays).
    pub const BYTES_PER_LINE: usize = 256;

    /// A book keeping the last `lines_per_function` lines of each function
    /// (at least one).
    pub fn new(lines_per_function: usize) -> LogBook {
        LogBook(Arc::new(Book {
            lines_per_function: lines_per_function.max(1),
            bytes_per_function: lines_per_function
                .max(1)
                .saturating_mul(LogBook::BYTES_PER_LINE),
            seq: AtomicU64::new(0),
            apps: RwLock::new(HashMap::new()),
        }))
    }

    /// Lines kept per function, at most.
    pub fn lines_per_function(&self) -> usize {
        self.0.lines_per_function
    }

    /// Bytes kept per function, at most (but the newest line).
    pub fn bytes_per_function(&self) -> usize {
        self.0.bytes_per_function
    }

    /// Keeps a line of `function` of `app`, pushing out its oldest lines
    /// past the bounds. `message` is cut at [`LogBook::MAX_LINE_BYTES`].
    pub fn push(
        &self,
        app: &FunctionId,
        function: &FunctionId,
        request_id: Option<&str>,
        stream: LogStream,
        level: Option<&str>,
        message: &str,
    ) {
        let (message, truncated) = cut(message);
        let app_logs = self.app_logs(app);
        let mut functions = app_logs.lock().unwrap_or_else(|e| e.into_inner());
        if !functions.contains_key(function) {
            functions.insert(function.clone(), Ring::default());
        }
        let Some(ring) = functions.get_mut(function) else {
            return;
        };
        // Taken under the app's lock: a function's lines are in `seq` order.
        let seq = self.0.seq.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            time: SystemTime::now(),
            seq,
            stream,
            level: level.map(Into::into),
            request_id: request_id.map(Into::into),
            message: message.into(),
            truncated,
        };
        ring.bytes += entry.bytes();
        ring.entries.push_back(entry);
        while ring.entries.len() > self.0.lines_per_function
            || (ring.bytes > self.0.bytes_per_function && ring.entries.len() > 1)
        {
            match ring.entries.pop_front() {
                Some(old) => ring.bytes -= old.bytes(),
                None => break,
            }
        }
    }

    /// The last `limit` lines of `app` (of one `function`, or of all of
    /// them) kept at or after `since`, oldest first.
    pub fn query(
        &self,
        app: &FunctionId,
        function: Option<&FunctionId>,
        since: Option<SystemTime>,
        limit: usize,
    ) -> Vec<LogLine> {
        let Some(app_logs) = self.read_apps().get(app).cloned() else {
            return Vec::new();
        };
        let functions = app_logs.lock().unwrap_or_else(|e| e.into_inner());
        let mut found: Vec<(&FunctionId, &Entry)> = functions
            .iter()
            .filter(|(id, _)| function.is_none_or(|f| f == *id))
            .flat_map(|(id, ring)| {
                // A ring is in time order: only its tail is after `since`.
                let after =
                    since.map_or(0, |since| ring.entries.partition_point(|e| e.time < since));
                let from = after.max(ring.entries.len().saturating_sub(limit));
                ring.entries.range(from..).map(move |e| (id, e))
            })
            .collect();
        found.sort_unstable_by_key(|(_, e)| e.seq);
        let skip = found.len().saturating_sub(limit);
        found
            .into_iter()
            .skip(skip)
            .map(|(function, e)| LogLine {
                time: e.time,
                seq: e.seq,
                app: app.to_string(),
                function: function.to_string(),
                stream: e.stream,
                level: e.level.as_deref().map(Into::into),
                request_id: e.request_id.as_deref().map(Into::into),
                message: e.message.to_string(),
                truncated: e.truncated,
            })
            .collect()
    }

    /// Drops every line of `app` (it was deleted).
    pub fn forget_app(&self, app: &FunctionId) {
        self.0
            .apps
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(app);
    }

    fn read_apps(&self) -> std::sync::RwLockReadGuard<'_, HashMap<FunctionId, Arc<AppLogs>>> {
        self.0.apps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn app_logs(&self, app: &FunctionId) -> Arc<AppLogs> {
        if let Some(logs) = self.read_apps().get(app) {
            return logs.clone();
        }
        let mut apps = self.0.apps.write().unwrap_or_else(|e| e.into_inner());
        apps.entry(app.clone()).or_default().clone()
    }
}

/// `message` cut at [`LogBook::MAX_LINE_BYTES`] (on a character boundary)
/// and marked, and whether it was.
fn cut(message: &str) -> (std::borrow::Cow<'_, str>, bool) {
    if message.len() <= LogBook::MAX_LINE_BYTES {
        return (message.into(), false);
    }
    let mut end = LogBook::MAX_LINE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    (
        format!("{}{}", &message[..end], LogBook::TRUNCATED).into(),
        true,
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(name: &str) -> FunctionId {
        FunctionId::try_from(name).unwrap()
    }

    fn messages(lines: &[LogLine]) -> Vec<&str> {
        lines.iter().map(|l| l.message.as_str()).collect()
    }

    #[test]
    fn a_ring_keeps_the_last_lines_of_each_function() {
        let book = LogBook::new(3);
        let (app, a, b) = (id("shop"), id("a"), id("b"));
        for i in 0..5 {
            book.push(
                &app,
                &a,
                Some("r1"),
                LogStream::Stdout,
                None,
                &format!("a{i}"),
            );
        }
        book.push(&app, &b, None, LogStream::Log, Some("WARN"), "b0");
        let all = book.query(&app, None, None, 100);
        assert_eq!(messages(&all), ["a2", "a3", "a4", "b0"]);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(messages(&book.query(&app, Some(&b), None, 100)), ["b0"]);
        let b0 = &all[3];
        assert_eq!(
            (
                b0.function.as_str(),
                b0.stream,
                b0.level.as_deref(),
                b0.request_id.as_deref()
            ),
            ("b", LogStream::Log, Some("WARN"), None)
        );
        assert_eq!(all[0].request_id.as_deref(), Some("r1"));
        // The limit keeps the newest.
        assert_eq!(messages(&book.query(&app, None, None, 2)), ["a4", "b0"]);
        assert!(book.query(&app, Some(&id("c")), None, 100).is_empty());
    }

    #[test]
    fn since_apps_and_forgetting() {
        let book = LogBook::new(10);
        let (shop, blog, f) = (id("shop"), id("blog"), id("f"));
        book.push(&shop, &f, None, LogStream::Stderr, None, "before");
        let all = book.query(&shop, None, None, 10);
        // Strictly after the first line's time, so only later lines.
        let since = all[0].time + Duration::from_nanos(1);
        while SystemTime::now() < since {
            std::thread::yield_now();
        }
        book.push(&shop, &f, None, LogStream::Stderr, None, "after");
        book.push(&blog, &f, None, LogStream::Stdout, None, "blog's");
        assert_eq!(
            messages(&book.query(&shop, None, Some(since), 10)),
            ["after"]
        );
        assert_eq!(messages(&book.query(&blog, None, None, 10)), ["blog's"]);
        book.forget_app(&shop);
        assert!(book.query(&shop, None, None, 10).is_empty());
        assert_eq!(book.query(&blog, Some(&f), None, 10).len(), 1);
    }

    #[test]
    fn long_lines_are_cut_and_rings_bounded_in_bytes() {
        let book = LogBook::new(10_000);
        let (app, f) = (id("app"), id("f"));
        // A multi-byte character across the cut.
        let long = format!(
            "{}é{}",
            "x".repeat(LogBook::MAX_LINE_BYTES - 1),
            "y".repeat(100)
        );
        book.push(&app, &f, None, LogStream::Stdout, None, &long);
        let line = &book.query(&app, None, None, 1)[0];
        assert!(line.truncated);
        assert_eq!(
            line.message,
            format!(
                "{}{}",
                "x".repeat(LogBook::MAX_LINE_BYTES - 1),
                LogBook::TRUNCATED
            )
        );
        for _ in 0..1000 {
            book.push(&app, &f, None, LogStream::Stdout, None, &long);
        }
        let kept = book.query(&app, None, None, usize::MAX).len();
        let per_line = LogBook::MAX_LINE_BYTES + LogBook::TRUNCATED.len();
        assert!(kept < book.bytes_per_function() / per_line + 1, "{kept}");
        assert!(kept > book.bytes_per_function() / (2 * per_line), "{kept}");
        // Over its bytes, a ring still keeps its newest line.
        let small = LogBook::new(1);
        small.push(&app, &f, None, LogStream::Stdout, None, "short");
        small.push(&app, &f, None, LogStream::Stdout, None, &long);
        let kept = small.query(&app, None, None, 10);
        assert_eq!((kept.len(), kept[0].truncated), (1, true));
    }

    #[test]
    fn a_line_serializes_with_an_rfc3339_time() {
        let book = LogBook::new(1);
        book.push(
            &id("a"),
            &id("f"),
            Some("req"),
            LogStream::Log,
            Some("INFO"),
            "hi\n\u{1b}",
        );
        let json = serde_json::to_value(&book.query(&id("a"), None, None, 1)[0]).unwrap();
        let time = json["time"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
        assert_eq!(json["stream"], "log");
        assert_eq!(json["level"], "INFO");
        assert_eq!(json["request_id"], "req");
        assert_eq!(json["message"], "hi\n\u{1b}");
        assert_eq!(json["seq"], 0);
    }
}
