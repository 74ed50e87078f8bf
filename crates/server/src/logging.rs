//! The log lines on standard error: the `WSOAUTH_LOG` filter (`info` by default), as text or as one JSON object
//! per line, each line of a request carrying its request id.
//!
//! Events are `tracing` events; this module formats them itself instead of through `tracing_subscriber::fmt`.
//! Measured on the bench machine, the fmt layer and a `request` span per request cost 3 to 4 µs of every request
//! (a third of what `/healthz` costs): the span's registration and its formatted fields, enter and exit on every
//! poll, and the formatter's generic machinery. Here the request id is a thread-local set while the request's
//! future is polled ([`in_request`]), and a line is written into a reused buffer. The output keeps the shape of
//! the fmt layer's: text `TIMESTAMP LEVEL request{request_id=ID}: TARGET: MESSAGE key=value ...`, and JSON with
//! the event's fields at the top level, then `target`, then `span` (`{"request_id": ID, "name": "request"}`).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderValue;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::config::LogFormat;

thread_local! {
    /// The id of the request whose future this thread is polling.
    static REQUEST: RefCell<Option<HeaderValue>> = const { RefCell::new(None) };
    /// The line being formatted, reused.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

/// Runs `f` with `id` as the request id of the lines it logs (on this thread).
pub fn in_request<T>(id: &HeaderValue, f: impl FnOnce() -> T) -> T {
    let previous = REQUEST.with(|request| request.replace(Some(id.clone())));
    let result = f();
    REQUEST.with(|request| request.replace(previous));
    result
}

/// Sets up the log lines: the `WSOAUTH_LOG` filter, `format`, colours only for text on a terminal.
///
/// `buffered` (the server): lines go through [`LogBuffer`], written out in batches by a thread of their own,
/// instead of one locked write to standard error per line on the thread serving the request. Keep the returned
/// guard until the end: dropping it writes out what is left.
pub fn init_logging(format: LogFormat, buffered: bool) -> LogGuard {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_env("WSOAUTH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let buffer = buffered.then(LogBuffer::start).flatten();
    let sink: Arc<dyn Sink> = match &buffer {
        Some(buffer) => Arc::new(buffer.clone()),
        None => Arc::new(Stderr),
    };
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    let lines = Lines { format, ansi, sink };
    // a second set-up in one process (never in the server) keeps the first
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(filter).with(lines));
    LogGuard(buffer)
}

/// Where finished lines go.
trait Sink: Send + Sync {
    fn write_line(&self, line: &[u8]);
}

struct Stderr;

impl Sink for Stderr {
    fn write_line(&self, line: &[u8]) {
        write_stderr(line);
    }
}

/// The layer that formats every enabled event as one line.
struct Lines {
    format: LogFormat,
    ansi: bool,
    sink: Arc<dyn Sink>,
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let write = |line: &mut String| {
            line.clear();
            match self.format {
                LogFormat::Text => text_line(line, event, self.ansi),
                LogFormat::Json => json_line(line, event),
            }
            line.push('\n');
            self.sink.write_line(line.as_bytes());
        };
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => write(&mut line),
            // an event logged while formatting one (a field's Debug that logs): a line of its own
            Err(_) => write(&mut String::new()),
        });
    }
}

fn text_line(line: &mut String, event: &Event<'_>, ansi: bool) {
    let metadata = event.metadata();
    if ansi {
        line.push_str("\x1b[2m");
    }
    timestamp(line);
    if ansi {
        line.push_str("\x1b[0m");
    }
    line.push(' ');
    let level = *metadata.level();
    let colour = match level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    };
    if ansi {
        line.push_str(colour);
    }
    let _ = write!(line, "{:>5}", level.as_str());
    if ansi {
        line.push_str("\x1b[0m");
    }
    line.push(' ');
    REQUEST.with(|request| {
        if let Some(id) = request.borrow().as_ref() {
            line.push_str("request{request_id=");
            line.push_str(id.to_str().unwrap_or_default());
            line.push_str("}: ");
        }
    });
    line.push_str(metadata.target());
    line.push_str(": ");
    event.record(&mut TextFields { line, first: true });
}

/// Text fields: the message as it is, then ` name=value` (strings quoted).
struct TextFields<'a> {
    line: &'a mut String,
    first: bool,
}

impl TextFields<'_> {
    fn separate(&mut self) {
        if !self.first {
            self.line.push(' ');
        }
        self.first = false;
    }
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.separate();
            self.line.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.separate();
        if field.name() == "message" {
            let _ = write!(self.line, "{value:?}");
        } else {
            let _ = write!(self.line, "{}={value:?}", field.name());
        }
    }
}

fn json_line(line: &mut String, event: &Event<'_>) {
    let metadata = event.metadata();
    line.push_str("{\"timestamp\":\"");
    timestamp(line);
    line.push_str("\",\"level\":\"");
    line.push_str(metadata.level().as_str());
    line.push('"');
    event.record(&mut JsonFields { line, scratch: String::new() });
    line.push_str(",\"target\":");
    json_string(line, metadata.target());
    REQUEST.with(|request| {
        if let Some(id) = request.borrow().as_ref() {
            line.push_str(",\"span\":{\"request_id\":");
            json_string(line, id.to_str().unwrap_or_default());
            line.push_str(",\"name\":\"request\"}");
        }
    });
    line.push('}');
}

/// JSON fields: `,"name":value`, numbers and booleans as such, everything else a string.
struct JsonFields<'a> {
    line: &'a mut String,
    scratch: String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push(',');
        json_string(self.line, field.name());
        self.line.push(':');
    }
}

impl Visit for JsonFields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            self.line.push_str("null");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.line.push_str(if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_string(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        self.scratch.clear();
        let _ = write!(self.scratch, "{value:?}");
        json_string(self.line, &self.scratch);
    }
}

/// `text` as a JSON string.
fn json_string(line: &mut String, text: &str) {
    line.push('"');
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| c == '"' || c == '\\' || c < ' ') {
        line.push_str(&rest[..at]);
        let c = rest.as_bytes()[at];
        match c {
            b'"' => line.push_str("\\\""),
            b'\\' => line.push_str("\\\\"),
            b'\n' => line.push_str("\\n"),
            b'\r' => line.push_str("\\r"),
            b'\t' => line.push_str("\\t"),
            other => {
                let _ = write!(line, "\\u{other:04x}");
            }
        }
        rest = &rest[at + 1..];
    }
    line.push_str(rest);
    line.push('"');
}

/// Now in UTC as `2026-11-28T00:49:13.354856Z`.
fn timestamp(line: &mut String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    write_utc(line, now);
}

fn write_utc(line: &mut String, since_epoch: Duration) {
    let seconds = since_epoch.as_secs();
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // days since 1970-01-01 to a civil date (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let _ = write!(
        line,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60,
        since_epoch.subsec_micros()
    );
}

// ---- the buffer -------------------------------------------------------------------------------------------

/// Writes out the buffered log lines when dropped (see [`init_logging`]).
pub struct LogGuard(Option<LogBuffer>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(buffer) = &self.0 {
            buffer.flush();
        }
    }
}

/// How long the writer thread lets lines gather after the first one of a batch.
const LOG_BATCH_DELAY: Duration = Duration::from_millis(2);
/// Past this many bytes waiting, the thread logging writes them out itself: memory stays bounded and no line is
/// dropped when standard error is slower than the lines come.
const LOG_BUFFER_LIMIT: usize = 256 * 1024;

/// Log lines on their way to standard error: appended to one buffer under a short lock; a thread of its own wakes
/// when a batch starts, waits [`LOG_BATCH_DELAY`] and writes the whole batch in one call. At 10,000 requests a
/// second that is one write for some 20 access lines, and no thread wakes while nothing is logged.
#[derive(Clone)]
pub struct LogBuffer(Arc<LogShared>);

pub struct LogShared {
    lines: Mutex<Vec<u8>>,
    /// Held by whoever writes lines out, taken before `lines`: batches reach standard error in order.
    writing: Mutex<()>,
    started: Condvar,
}

impl LogBuffer {
    /// The buffer and its writer thread; `None` (write directly) if the thread cannot start.
    fn start() -> Option<LogBuffer> {
        let shared = Arc::new(LogShared {
            lines: Mutex::new(Vec::with_capacity(64 * 1024)),
            writing: Mutex::new(()),
            started: Condvar::new(),
        });
        let buffer = LogBuffer(shared.clone());
        let spawned = std::thread::Builder::new().name("wsoauth-log".into()).spawn(move || {
            let mut batch = Vec::with_capacity(64 * 1024);
            loop {
                {
                    let mut lines = shared.lines.lock().unwrap_or_else(PoisonError::into_inner);
                    while lines.is_empty() {
                        lines = shared.started.wait(lines).unwrap_or_else(PoisonError::into_inner);
                    }
                }
                std::thread::sleep(LOG_BATCH_DELAY);
                let _writing = shared.writing.lock().unwrap_or_else(PoisonError::into_inner);
                std::mem::swap(&mut batch, &mut *shared.lines.lock().unwrap_or_else(PoisonError::into_inner));
                write_stderr(&batch);
                batch.clear();
            }
        });
        spawned.is_ok().then_some(buffer)
    }

    /// Writes out every line buffered so far, now.
    pub fn flush(&self) {
        self.0.write_out();
    }
}

impl LogShared {
    /// Writes out every line buffered so far, after any batch being written.
    fn write_out(&self) {
        let _writing = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        write_stderr(&lines);
        lines.clear();
    }
}

impl Sink for LogBuffer {
    fn write_line(&self, line: &[u8]) {
        let shared = &self.0;
        let mut lines = shared.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() + line.len() > LOG_BUFFER_LIMIT {
            drop(lines);
            shared.write_out();
            lines = shared.lines.lock().unwrap_or_else(PoisonError::into_inner);
        }
        let first = lines.is_empty();
        lines.extend_from_slice(line);
        drop(lines);
        if first {
            shared.started.notify_one();
        }
    }
}

fn write_stderr(bytes: &[u8]) {
    use std::io::Write;
    if !bytes.is_empty() {
        // nowhere to report a failed log write
        let _ = std::io::stderr().lock().write_all(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines kept in memory.
    #[derive(Clone, Default)]
    struct Memory(Arc<Mutex<Vec<u8>>>);

    impl Sink for Memory {
        fn write_line(&self, line: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(line);
        }
    }

    /// What `f` logs at `info` and above, in `format`.
    fn logged(format: LogFormat, f: impl FnOnce()) -> Vec<String> {
        let memory = Memory::default();
        let lines = Lines { format, ansi: false, sink: Arc::new(memory.clone()) };
        let subscriber = tracing_subscriber::registry().with(EnvFilter::new("info")).with(lines);
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(memory.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn sample() {
        let id = HeaderValue::from_static("req-1");
        in_request(&id, || {
            tracing::info!(target: "access", method = "GET", status = 200u16, latency_ms = 0.25, "request");
        });
        tracing::warn!(client = %"a\"b\\c", count = -3i64, ok = true, "outside {}", "a request");
        tracing::debug!("filtered out");
    }

    #[test]
    fn json_lines_keep_the_fmt_layout() {
        let lines = logged(LogFormat::Json, sample);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let access: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(access["level"], "INFO");
        assert_eq!(access["target"], "access");
        assert_eq!(access["message"], "request");
        assert_eq!(access["method"], "GET");
        assert_eq!(access["status"], 200);
        assert_eq!(access["latency_ms"], 0.25);
        assert_eq!(access["span"], serde_json::json!({"request_id": "req-1", "name": "request"}));
        let stamp = access["timestamp"].as_str().unwrap();
        assert!(stamp.len() == 27 && stamp.ends_with('Z') && stamp.as_bytes()[10] == b'T', "{stamp}");
        let outside: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(outside["level"], "WARN");
        assert_eq!(outside["message"], "outside a request");
        assert_eq!(outside["client"], "a\"b\\c", "escaped and read back");
        assert_eq!((outside["count"].as_i64(), outside["ok"].as_bool()), (Some(-3), Some(true)));
        assert!(outside.get("span").is_none(), "{outside}");
    }

    #[test]
    fn text_lines_name_the_request() {
        let lines = logged(LogFormat::Text, sample);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (stamp, rest) = lines[0].split_once(' ').unwrap();
        assert!(stamp.ends_with('Z'), "{stamp}");
        assert_eq!(rest, r#" INFO request{request_id=req-1}: access: request method="GET" status=200 latency_ms=0.25"#);
        let want = r#" WARN wsoauth_server::logging::tests: outside a request client=a"b\c count=-3 ok=true"#;
        assert!(lines[1].ends_with(want), "{}", lines[1]);
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let mut line = String::new();
        json_string(&mut line, "a\"b\\c\nd\te\u{1}é");
        assert_eq!(line, r#""a\"b\\c\nd\te\u0001é""#);
        assert_eq!(serde_json::from_str::<String>(&line).unwrap(), "a\"b\\c\nd\te\u{1}é");
    }

    #[test]
    fn utc_dates() {
        for (seconds, want) in [
            (0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"),
            (1_700_000_000, "2023-11-14T22:13:20.000000Z"),
            (4_102_444_799, "2099-12-31T23:59:59.000000Z"),
        ] {
            let mut line = String::new();
            write_utc(&mut line, Duration::from_secs(seconds));
            assert_eq!(line, want);
        }
        let mut line = String::new();
        write_utc(&mut line, Duration::from_micros(1_500_000));
        assert_eq!(line, "1970-01-01T00:00:01.500000Z");
    }
}
