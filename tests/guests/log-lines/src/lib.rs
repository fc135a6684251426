//! Writes what its query asks, in order, for the tests of kept logs:
//! `out=TEXT` a line on stdout, `err=TEXT` a line on stderr, `warn=TEXT`
//! a `wasi:logging` warning and `info=TEXT` an info message from the
//! context `ctx`. TEXT is taken as it is (no percent-decoding). Answers
//! `ok`.

use std::io::Write as _;

use gust_sdk::{Request, log};

fn log_lines(req: Request) -> &'static str {
    let query = req.uri().query().unwrap_or("");
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("out", text)) => println!("{text}"),
            Some(("err", text)) => eprintln!("{text}"),
            Some(("warn", text)) => log::warn(text),
            Some(("info", text)) => log::log(log::Level::Info, "ctx", text),
            _ => {}
        }
    }
    let _ = std::io::stdout().flush();
    "ok\n"
}

gust_sdk::export!(log_lines);
