//! The request path end to end: raw HTTP/1.1 bytes over TCP (loopback) to a
//! gust server serving the built-in examples, started once per process.
//!
//! Each input is a structured request: method token, request target, HTTP
//! version, headers, body and how the body is framed. In the well-framed
//! modes (the harness writes `Content-Length` or chunked framing itself,
//! drops framing headers from the input and strips CR/LF from the tokens)
//! the request is complete, so:
//!
//! - the server answers within the timeout with a well-formed HTTP/1.x
//!   response (status line, headers, a body that matches its framing,
//!   none for HEAD), interim 1xx responses allowed, then closes (the
//!   harness sends `Connection: close`);
//! - the status is 5xx only for the examples meant to fail (`/trap`,
//!   `/fetch`, `/work`), or 505 for a request line whose version is not
//!   HTTP/1.x.
//!
//! In the raw mode anything goes (CR/LF injection, bad framing, pipelining)
//! and the request may be incomplete: the server must not crash, and
//! whatever it sends first must start with a valid status line.
//!
//! After every input `GET /hello` on a new connection must answer 200.
//!
//! `/spin` (2 s per request) is skipped, `/work?n=` is capped to six digits
//! and `/fetch` gets no query, so no input can ask it to reach anywhere.

#![no_main]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use gust_runtime::cache::CacheLocation;
use gust_runtime::{App, EngineConfig, GustEngine, Server};
use libfuzzer_sys::fuzz_target;

/// How long a complete request may take to be answered.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for an answer to a raw (possibly incomplete) request.
const RAW_TIMEOUT: Duration = Duration::from_millis(200);

/// LeakSanitizer off for this target: its "leaks" here are false
/// positives. Wasmtime keeps pointers on fiber stacks it maps itself, which
/// LeakSanitizer does not scan (a fiber created and not yet resumed holds
/// the only pointer to its boxed closure), and the server's threads keep
/// running and spawning while libFuzzer checks. Run with `-detect_leaks=0`
/// too, or libFuzzer still reruns inputs to look for leaks (4x slower).
#[unsafe(no_mangle)]
pub extern "C" fn __lsan_is_turned_off() -> std::ffi::c_int {
    1
}

struct Running {
    _runtime: tokio::runtime::Runtime,
    _engine: GustEngine,
    addr: SocketAddr,
}

fn server() -> SocketAddr {
    static SERVER: OnceLock<Running> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            // libFuzzer's C++ main does not ignore SIGPIPE as Rust's does.
            // SAFETY: setting a signal disposition before any other thread
            // of ours exists.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            let engine = GustEngine::new(&EngineConfig::default()).expect("engine");
            let spec = gust_runtime::examples::app_spec().expect("examples app");
            let mut settings = gust_runtime::manifest::ServerSettings::default();
            settings.listen = "127.0.0.1:0".parse().unwrap();
            // Compiled examples are cached across fuzzing processes.
            let cache = CacheLocation::Dir(std::env::temp_dir().join("gust-fuzz-cache"));
            let addr = {
                let _guard = runtime.enter();
                let app = App::load(&engine, spec, &cache).expect("loading the examples");
                let server = Server::new(app, settings);
                let listener = runtime.block_on(server.bind()).expect("bind");
                let addr = listener.local_addr().expect("local addr");
                runtime.spawn(server.serve(listener, std::future::pending()));
                addr
            };
            assert!(addr.ip().is_loopback());
            Running {
                _runtime: runtime,
                _engine: engine,
                addr,
            }
        })
        .addr
}

#[derive(Arbitrary, Debug)]
enum MethodTok {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Patch,
    Trace,
    Connect,
    Other(Vec<u8>),
}

/// Paths of the examples (not `/spin`) and a few that match no route.
const PATHS: &[&str] = &[
    "/hello",
    "/echo/",
    "/echo",
    "/users/",
    "/users",
    "/trap",
    "/work",
    "/raw/",
    "/fetch",
    "/",
    "/nope",
    "/hello/",
    "*",
    "http://127.0.0.1/echo/",
];

#[derive(Arbitrary, Debug)]
enum TargetIn {
    Route {
        which: u8,
        suffix: Vec<u8>,
        query: Option<Vec<u8>>,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum VersionIn {
    Http11,
    Http10,
    Other(Vec<u8>),
}

const HEADERS: &[&str] = &[
    "content-type",
    "expect",
    "connection",
    "x-gust-route",
    "x-gust-param-id",
    "accept",
    "te",
    "trailer",
    "upgrade",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "user-agent",
];

#[derive(Arbitrary, Debug)]
enum HeaderName {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` of the body.
    Length,
    /// Chunked, in chunks of this size (0: one chunk).
    Chunked(u8),
    /// No body.
    None,
    /// Everything as given, CR/LF and framing headers included.
    Raw,
}

#[derive(Arbitrary, Debug)]
struct RequestIn {
    method: MethodTok,
    target: TargetIn,
    version: VersionIn,
    host: bool,
    headers: Vec<(HeaderName, Vec<u8>)>,
    body: Vec<u8>,
    framing: Framing,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Keeps `/work` fast: digit runs cut to six digits.
fn cap_digits(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut run = 0;
    for &b in bytes {
        if b.is_ascii_digit() {
            run += 1;
            if run > 6 {
                continue;
            }
        } else {
            run = 0;
        }
        out.push(b);
    }
    out
}

fn clean(bytes: &[u8], raw: bool) -> Vec<u8> {
    if raw {
        bytes.to_vec()
    } else {
        bytes
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect()
    }
}

struct Built {
    bytes: Vec<u8>,
    method: Vec<u8>,
    target: Vec<u8>,
    version: Vec<u8>,
}

fn build(input: &RequestIn) -> Option<Built> {
    let raw = input.framing == Framing::Raw;
    let method = clean(
        match &input.method {
            MethodTok::Get => b"GET",
            MethodTok::Head => b"HEAD",
            MethodTok::Post => b"POST",
            MethodTok::Put => b"PUT",
            MethodTok::Delete => b"DELETE",
            MethodTok::Options => b"OPTIONS",
            MethodTok::Patch => b"PATCH",
            MethodTok::Trace => b"TRACE",
            MethodTok::Connect => b"CONNECT",
            MethodTok::Other(m) => m.as_slice(),
        },
        raw,
    );
    let mut target = match &input.target {
        TargetIn::Route {
            which,
            suffix,
            query,
        } => {
            let mut t = PATHS[*which as usize % PATHS.len()].as_bytes().to_vec();
            t.extend_from_slice(suffix);
            if let Some(q) = query {
                t.push(b'?');
                t.extend_from_slice(q);
            }
            t
        }
        TargetIn::Raw(t) => t.clone(),
    };
    target = clean(&target, raw);
    if contains(&target, b"fetch") {
        // No query: the example then tries its loopback default, refused.
        if let Some(q) = target.iter().position(|&b| b == b'?') {
            target.truncate(q);
        }
    }
    let version = clean(
        match &input.version {
            VersionIn::Http11 => b"HTTP/1.1",
            VersionIn::Http10 => b"HTTP/1.0",
            VersionIn::Other(v) => v.as_slice(),
        },
        raw,
    );

    let mut bytes = Vec::new();
    bytes.extend_from_slice(&method);
    bytes.push(b' ');
    bytes.extend_from_slice(&target);
    bytes.push(b' ');
    bytes.extend_from_slice(&version);
    bytes.extend_from_slice(b"\r\n");
    if input.host {
        bytes.extend_from_slice(b"Host: 127.0.0.1\r\n");
    }
    for (name, value) in input.headers.iter().take(32) {
        let name = match name {
            HeaderName::Known(i) => HEADERS[*i as usize % HEADERS.len()].as_bytes().to_vec(),
            HeaderName::Raw(n) => n.clone(),
        };
        let name = clean(&name, raw);
        if !raw
            && (name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"transfer-encoding"))
        {
            continue;
        }
        bytes.extend_from_slice(&name);
        bytes.extend_from_slice(b": ");
        bytes.extend_from_slice(&clean(value, raw));
        bytes.extend_from_slice(b"\r\n");
    }
    match input.framing {
        Framing::Length | Framing::Raw => {
            bytes.extend_from_slice(format!("Content-Length: {}\r\n", input.body.len()).as_bytes())
        }
        Framing::Chunked(_) => bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        Framing::None => {}
    }
    bytes.extend_from_slice(b"Connection: close\r\n\r\n");
    match input.framing {
        Framing::Length | Framing::Raw => bytes.extend_from_slice(&input.body),
        Framing::Chunked(size) => {
            let size = if size == 0 { usize::MAX } else { size as usize };
            for chunk in input.body.chunks(size.min(input.body.len().max(1))) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        }
        Framing::None => {}
    }

    // `/spin` takes 2 s: not here.
    if contains(&bytes, b"spin") {
        return None;
    }
    if contains(&bytes, b"work") {
        bytes = cap_digits(&bytes);
    }
    Some(Built {
        bytes,
        method,
        target,
        version,
    })
}

enum Received {
    /// The server closed the connection (EOF or reset).
    Closed(Vec<u8>),
    /// Nothing more came before the deadline.
    TimedOut(Vec<u8>),
}

fn exchange(request: &[u8], timeout: Duration) -> Received {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&server(), timeout).expect("connect to gust");
    stream.set_write_timeout(Some(timeout)).unwrap();
    // The server may answer and close before reading everything (e.g. a
    // 400 on a bad request line): a failed write is not an error.
    let _ = stream.write_all(request);
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Received::TimedOut(got);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Received::Closed(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Received::TimedOut(got);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Received::Closed(got),
        }
    }
}

/// One response head: status, framing, and where its body starts.
struct Head {
    status: u16,
    body_at: usize,
    content_length: Option<usize>,
    chunked: bool,
}

fn parse_head(bytes: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let body_at = match response.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head ({e})")),
    };
    let status = response.code.ok_or("no status")?;
    if !(100..=599).contains(&status) {
        return Err(format!("status {status} out of range"));
    }
    let mut content_length = None;
    let mut chunked = false;
    for h in response.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("bad content-length {:?}", h.value))?;
            if content_length.replace(n).is_some_and(|m| m != n) {
                return Err("conflicting content-length headers".into());
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
    }
    if chunked && content_length.is_some() {
        return Err("both content-length and transfer-encoding".into());
    }
    Ok(Some(Head {
        status,
        body_at,
        content_length,
        chunked,
    }))
}

/// The length of a complete chunked body at the start of `bytes`.
fn chunked_len(bytes: &[u8]) -> Result<usize, String> {
    let mut at = 0;
    loop {
        let line_end = bytes[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let line = std::str::from_utf8(&bytes[at..at + line_end]).map_err(|_| "chunk size")?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {line:?}"))?;
        at += line_end + 2;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let end = bytes[at..]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                    .ok_or("truncated trailers")?;
                at += end + 2;
                if end == 0 {
                    return Ok(at);
                }
            }
        }
        if bytes.len() < at + size + 2 || &bytes[at + size..at + size + 2] != b"\r\n" {
            return Err("truncated chunk".into());
        }
        at += size + 2;
    }
}

/// Checks a whole exchange's reply: interim responses, then one final
/// response whose body matches its framing. Returns the final status.
fn check_reply(reply: &[u8], head_request: bool) -> Result<u16, String> {
    let mut at = 0;
    loop {
        let head = parse_head(&reply[at..])?.ok_or("incomplete response head")?;
        at += head.body_at;
        if (100..200).contains(&head.status) {
            continue;
        }
        let rest = &reply[at..];
        let no_body = head_request || head.status == 204 || head.status == 304;
        if no_body {
            if !rest.is_empty() {
                return Err(format!("{} bytes after a bodiless response", rest.len()));
            }
        } else if head.chunked {
            let n = chunked_len(rest)?;
            if n != rest.len() {
                return Err(format!("{} bytes after the chunked body", rest.len() - n));
            }
        } else if let Some(n) = head.content_length {
            if rest.len() != n {
                return Err(format!("content-length {n}, body {}", rest.len()));
            }
        }
        return Ok(head.status);
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned()
}

fn still_up() {
    let hello = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let reply = match exchange(hello, TIMEOUT) {
        Received::Closed(r) => r,
        Received::TimedOut(r) => panic!("GET /hello timed out after the input: {}", show(&r)),
    };
    match check_reply(&reply, false) {
        Ok(200) => {}
        other => panic!("GET /hello after the input: {other:?}: {}", show(&reply)),
    }
}

fuzz_target!(
    // Loading compiles the examples (tens of seconds the first time, with
    // sanitizers), which must not count against libFuzzer's -timeout.
    init: {
        server();
    },
    |input: RequestIn| {
    let Some(req) = build(&input) else {
        return;
    };
    let raw = input.framing == Framing::Raw;
    let may_fail = contains(&req.target, b"trap")
        || contains(&req.target, b"fetch")
        || contains(&req.target, b"work");
    let bad_version = req.version != b"HTTP/1.1" && req.version != b"HTTP/1.0";

    if raw {
        let reply = match exchange(&req.bytes, RAW_TIMEOUT) {
            Received::Closed(r) | Received::TimedOut(r) => r,
        };
        let h2 = contains(&req.bytes, b"PRI * HTTP/2.0");
        if !reply.is_empty() && !h2 {
            match parse_head(&reply) {
                Err(e) => panic!("{e}: {}", show(&reply)),
                Ok(Some(head)) if head.status >= 500 => {
                    let fail_route = contains(&req.bytes, b"trap")
                        || contains(&req.bytes, b"fetch")
                        || contains(&req.bytes, b"work");
                    let versions_ok = req.bytes.split(|&b| b == b'\n').all(|line| {
                        !contains(line, b"HTTP/") || contains(line, b"HTTP/1.")
                    });
                    assert!(
                        fail_route || (head.status == 505 && !versions_ok),
                        "unexpected {}: {}",
                        head.status,
                        show(&reply)
                    );
                }
                Ok(_) => {}
            }
        }
    } else {
        let reply = match exchange(&req.bytes, TIMEOUT) {
            Received::Closed(r) => r,
            Received::TimedOut(r) => panic!(
                "no complete answer in {TIMEOUT:?} to a complete request {:?}; got {:?}",
                show(&req.bytes),
                show(&r)
            ),
        };
        // A reset before any byte is a close; anything sent must be whole.
        if !reply.is_empty() {
            let status = check_reply(&reply, req.method == b"HEAD").unwrap_or_else(|e| {
                panic!(
                    "malformed reply ({e}) to {:?}: {:?}",
                    show(&req.bytes),
                    show(&reply)
                )
            });
            if status >= 500 {
                assert!(
                    may_fail || (status == 505 && bad_version),
                    "unexpected {status} for {:?}: {:?}",
                    show(&req.bytes),
                    show(&reply)
                );
            }
        }
    }
    still_up();
    }
);
