//! Guest stdout/stderr in the operator's log, read as an operator reads it:
//! the stderr of a `gust serve` process, in its default format.

use std::time::{Duration, Instant};

use gust_tests::guests;
use support::{Serving, get};

mod support;

/// Stops gust, which must exit cleanly, and returns the rest of its log.
fn terminated(server: Serving) -> Vec<String> {
    let (exited_cleanly, log) = server.terminate();
    assert!(exited_cleanly, "{}", log.join("\n"));
    log
}

/// A line of gust's default log format: `<time>  <LEVEL> <target>: <rest>`.
struct Record<'a> {
    level: &'a str,
    target: &'a str,
    rest: &'a str,
}

/// The line as a record, if it starts as one of gust's own.
fn record(line: &str) -> Option<Record<'_>> {
    let (time, after) = line.split_once(' ')?;
    let time_like = time.len() >= 20
        && time.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && time.as_bytes()[4] == b'-'
        && time.as_bytes()[10] == b'T'
        && time.ends_with('Z');
    if !time_like {
        return None;
    }
    let (level, after) = after.trim_start().split_once(' ')?;
    let (target, rest) = after.split_once(": ")?;
    Some(Record {
        level,
        target,
        rest,
    })
}

/// The `key=value` fields of a record's rest, after its message: values are
/// bare words or quoted and escaped as Rust's `{:?}` of a string does.
/// Unescaped, roughly (enough to compare).
fn fields(rest: &str, message: &str) -> Vec<(String, String)> {
    let mut rest = rest
        .strip_prefix(message)
        .unwrap_or_else(|| panic!("not `{message}`: {rest}"));
    let mut fields = Vec::new();
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return fields;
        }
        let (key, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("no `=` in {rest}"));
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "not a field name: {key:?}"
        );
        let mut value = String::new();
        if let Some(quoted) = after.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            rest = loop {
                match chars.next() {
                    Some((i, '"')) => break &quoted[i + 1..],
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, 'r')) => value.push('\r'),
                        Some((_, 't')) => value.push('\t'),
                        Some((_, '0')) => value.push('\0'),
                        Some((_, 'u')) => value.push('\u{fffd}'),
                        Some((_, c)) => value.push(c),
                        None => panic!("unterminated escape"),
                    },
                    Some((_, c)) => value.push(c),
                    None => panic!("unterminated quoted value: {after}"),
                }
            };
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            value.push_str(&after[..end]);
            rest = &after[end..];
        }
        fields.push((key.to_owned(), value));
    }
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn guest_output_cannot_forge_an_invocation_record() {
    let server = Serving::start(&[guests::LOG_FORGE_PATH]);
    let (status, body) = get(server.addr, "/?forge");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let log = terminated(server);
    let text = log.join("\n");

    // One usage record, the real one.
    let invocations: Vec<Record> = log
        .iter()
        .filter_map(|line| record(line))
        .filter(|r| r.target == "gust::invocation")
        .collect();
    let forged: Vec<&str> = invocations
        .iter()
        .filter(|r| r.rest.contains("victim"))
        .map(|r| r.rest)
        .collect();
    assert!(forged.is_empty(), "forged usage records: {forged:#?}");
    assert_eq!(invocations.len(), 1, "{text}");
    let usage = fields(invocations[0].rest, "invocation");
    assert_eq!(field(&usage, "function"), ["log_forge"], "{text}");
    // Every line is one of gust's records: none starts with guest text.
    for line in &log {
        assert!(
            record(line).is_some(),
            "not a gust record: {line:?}\n{text}"
        );
    }
    assert!(
        !text
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{2028}'),
        "a control character reached the log: {text:?}"
    );

    // What the guest wrote is there, whole, as one field of one record.
    let guest: Vec<Record> = log
        .iter()
        .filter_map(|line| record(line))
        .filter(|r| r.target == "gust::guest")
        .collect();
    assert_eq!(guest.len(), 1, "{text}");
    assert_eq!(guest[0].level, "INFO");
    let output = fields(guest[0].rest, "guest output");
    for key in ["app", "function", "request_id", "stream", "output"] {
        assert_eq!(field(&output, key).len(), 1, "{key}: {text}");
    }
    assert_eq!(field(&output, "function"), ["log_forge"]);
    assert_eq!(field(&output, "stream"), ["stderr"]);
    let written = field(&output, "output")[0];
    assert!(written.starts_with("harmless\n2026-01-01T00:00:00.000000Z  INFO gust::invocation: invocation request_id=forged app=default function=victim "), "{written:?}");
    assert_eq!(
        written.matches("fuel=999999999999").count(),
        3,
        "{written:?}"
    );
}

/// The `dropped_bytes` of a `warn` line about output over the rate limit.
fn reported_drop(line: &str) -> Option<u64> {
    let r = record(line).filter(|r| r.target == "gust::guest" && r.level == "WARN")?;
    let fields = fields(
        r.rest,
        "guest output over the function's log rate limit was dropped",
    );
    assert_eq!(field(&fields, "function"), ["log_forge"]);
    field(&fields, "dropped_bytes")[0].parse().ok()
}

#[test]
fn a_flooding_guest_is_held_to_its_log_rate_and_every_drop_reported() {
    // The defaults documented in the README (`output::LOG_RATE`,
    // `output::LOG_BURST`, `output::REPORT_INTERVAL`): 64 KiB/s, bursts of
    // 256 KiB, drops reported every 10 s.
    const RATE: f64 = 64.0 * 1024.0;
    const BURST: f64 = 256.0 * 1024.0;
    const INTERVAL: Duration = Duration::from_secs(10);
    const FLOOD: usize = 64 << 10;
    const REQUESTS: usize = 64;

    let server = Serving::start(&[guests::LOG_FORGE_PATH]);
    let started = Instant::now();
    for _ in 0..REQUESTS {
        let (status, body) = get(server.addr, &format!("/?flood={FLOOD}"));
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }
    let elapsed = started.elapsed();
    // The first drop is reported at once, the rest when the interval is
    // over: every byte the guest wrote is then either logged or reported.
    let mut log = server.read_until(INTERVAL + Duration::from_secs(10), {
        let reports = std::cell::Cell::new(0);
        move |line| {
            reports.set(reports.get() + usize::from(reported_drop(line).is_some()));
            reports.get() == 2
        }
    });
    log.extend(terminated(server));
    let text_len: usize = log.iter().map(|l| l.len() + 1).sum();

    let records: Vec<Record> = log.iter().filter_map(|line| record(line)).collect();
    // Every request served and billed: the limit is on the log, never on
    // the guest.
    let ok = records
        .iter()
        .filter(|r| r.target == "gust::invocation" && r.rest.contains(" outcome=ok "))
        .count();
    assert_eq!(ok, REQUESTS);
    // The log less gust's own records (before guest output was quoted,
    // its lines after the first were no records at all).
    let own: usize = log
        .iter()
        .filter(|line| record(line).is_some_and(|r| r.target != "gust::guest"))
        .map(|line| line.len() + 1)
        .sum();
    let guest_bytes = text_len - own;
    let outputs = records
        .iter()
        .filter(|r| r.target == "gust::guest" && r.level == "INFO")
        .count();
    let reports: Vec<u64> = log.iter().filter_map(|line| reported_drop(line)).collect();
    let dropped: u64 = reports.iter().sum();
    eprintln!(
        "{REQUESTS} requests writing {FLOOD} bytes each to stderr in {elapsed:?}: \
         {outputs} outputs logged, {guest_bytes} bytes of log for guest output \
         ({text_len} bytes of log in all), drops reported {reports:?}"
    );
    // The burst, what refilled while the requests ran (plus a second for
    // the last invocations to end), and the one output that may overdraw.
    let most = BURST + RATE * (elapsed.as_secs_f64() + 1.0) + 80.0 * 1024.0;
    assert!(
        (guest_bytes as f64) < most,
        "{guest_bytes} bytes of log for guest output, at most {most} expected"
    );
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(
        reports[0], FLOOD as u64,
        "the first drop is reported at once"
    );
    assert_eq!(
        outputs as u64 * FLOOD as u64 + dropped,
        (REQUESTS * FLOOD) as u64,
        "every byte logged or reported dropped"
    );
}

#[test]
fn wasi_logging_goes_to_the_guest_log_and_secrets_never_reach_the_log() {
    const SECRET: &str = "TOPSECRET-4f1d9a";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.secret"), SECRET).unwrap();
    let manifest = dir.path().join("gust.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[secrets.token]
file = "token.secret"

[functions.settings]
component = "{}"
config = {{ token = "{{{{ secrets.token }}}}" }}
environment = {{ TOKEN = "{{{{ secrets.token }}}}" }}

[[routes]]
path = "/{{*rest}}"
function = "settings"
"#,
            guests::CONFIG_DRAFT_PATH
        ),
    )
    .unwrap();

    // `gust check` lists what is granted, not the values.
    let check = std::process::Command::new(support::GUST)
        .arg("check")
        .arg(&manifest)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{stdout}");
    assert!(
        stdout.contains("settings: config token; env TOKEN"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET), "{stdout}");

    let server = Serving::start(&[manifest.to_str().unwrap()]);
    // The guest gets the secret (it was granted it)...
    let (status, body) = get(server.addr, "/config/token");
    assert_eq!((status, body.as_str()), (200, SECRET));
    let (status, body) = get(server.addr, "/log?disk-nearly-full");
    assert_eq!((status, body.as_str()), (200, "logged"));
    let log = terminated(server);
    let text = log.join("\n");
    // ...but gust itself never logs it.
    assert!(!text.contains(SECRET), "{text}");

    // Each `wasi:logging` call is a line of the guest's stderr, with its
    // level and context, logged with the invocation's ids.
    let guest: Vec<Record> = log
        .iter()
        .filter_map(|line| record(line))
        .filter(|r| r.target == "gust::guest")
        .collect();
    assert_eq!(guest.len(), 1, "{text}");
    let output = fields(guest[0].rest, "guest output");
    assert_eq!(field(&output, "function"), ["settings"], "{text}");
    assert_eq!(field(&output, "stream"), ["stderr"], "{text}");
    assert_eq!(
        field(&output, "output"),
        [
            "TRACE config-draft: disk-nearly-full\nINFO config-draft: disk-nearly-full\nCRITICAL config-draft: disk-nearly-full"
        ],
        "{text}"
    );
}
