//! A hostile guest for gust's log: what it writes to stderr tries to pass
//! for gust's own log lines, or to flood the operator's log.
//!
//! - `?forge`: writes lines shaped like gust's `gust::invocation` records
//!   (for a function `victim`, with an absurd fuel count), after a newline,
//!   a carriage return and an ANSI "erase line", and a tab, a NUL and a
//!   Unicode line separator for good measure.
//! - `?flood=N`: writes N bytes, in lines of 100.
//!
//! Both may be given; the answer is `ok` either way.

use std::io::Write as _;

use gust_sdk::Request;

/// A line as gust's default log format prints a usage record.
const FORGED: &str = "2026-01-01T00:00:00.000000Z  INFO gust::invocation: invocation \
     request_id=forged app=default function=victim route=/victim status=200 outcome=ok \
     fuel=999999999999 host_fuel=0 peak_memory=0 request_bytes=0 response_bytes=0 \
     cost_nanos=0 duration_us=1";

fn log_forge(req: Request) -> &'static str {
    let query = req.uri().query().unwrap_or("");
    let mut stderr = std::io::stderr().lock();
    for kv in query.split('&') {
        if kv == "forge" {
            let _ = write!(
                stderr,
                "harmless\n{FORGED}\n\r\x1b[2K{FORGED}\x1b[0m\ttab\0nul\u{2028}{FORGED}\n"
            );
        } else if let Some(n) = kv.strip_prefix("flood=").and_then(|n| n.parse().ok()) {
            let mut line = [b'x'; 100];
            line[99] = b'\n';
            let mut left: usize = n;
            while left > 0 {
                let take = left.min(line.len());
                let _ = stderr.write_all(&line[line.len() - take..]);
                left -= take;
            }
        }
    }
    let _ = stderr.flush();
    "ok\n"
}

gust_sdk::export!(log_forge);
