//! Hostile and broken clients: slow heads and bodies, malformed requests,
//! oversized heads, clients that leave, HTTP/2 rapid reset, thousands of
//! idle connections, idle keep-alive connections and a connection limit.
//! After each attack the server still answers `GET /hello`.
//!
//! (Long: one short test per client misbehaviour the server must
//! survive; split by protocol, the shared raw-socket setups would scatter.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gust_runtime::{InvocationRecord, Outcome};
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::timeout;

use crate::support::client::{
    closed, connect, get_on, http1, http2, raw_exchange, raw_request, read_head, read_to_close,
    request_id_in, status_line,
};
use crate::support::manifest::ManifestText;
use crate::support::{self, TestServer};

/// The functions and routes every test here serves, with `server` as the
/// `[server]` table.
fn manifest(server: &str) -> ManifestText {
    support::manifest()
        .server(server)
        .hello()
        .function("echo", "{ECHO}")
        .route("/echo/{*rest}")
        .function("spin", "{SPIN}")
        .set("timeout = \"2s\"\nfuel = 1_000_000_000_000")
        .route("/spin")
        .function("endless", "{ENDLESS_BODY}")
        .set("timeout = \"30s\"\nfuel = 1_000_000_000_000")
        .route("/endless")
}

fn get(path: &str) -> Request<Bytes> {
    Request::get(path).body(Bytes::new()).unwrap()
}

async fn assert_hello(server: &TestServer) {
    let reply = server.get("/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Sends `bytes` one at a time, `interval` apart, until done or the
/// connection fails; counts the bytes written.
fn trickle(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    bytes: Vec<u8>,
    interval: Duration,
    sent: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for byte in bytes {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            sent.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(interval).await;
        }
    })
}

/// p50 and p99 of some latencies.
fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration) {
    latencies.sort();
    let n = latencies.len();
    (latencies[n / 2], latencies[(n * 99 / 100).min(n - 1)])
}

// 1. Slowloris.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_heads_are_cut_off_while_others_are_served() {
    let server = TestServer::start(manifest(r#"header_read_timeout = "1s""#)).await;
    let head = format!(
        "GET /hello HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slowloris\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(60)
    )
    .into_bytes();
    // 10 clients at one byte per 100 ms would need ~12 s for their heads.
    let started = Instant::now();
    let slow: Vec<_> = (0..10)
        .map(|_| {
            let head = head.clone();
            let addr = server.addr;
            tokio::spawn(async move {
                let (mut reader, writer) = connect(addr).await.into_split();
                let sent = Arc::new(AtomicUsize::new(0));
                let writing = trickle(writer, head, Duration::from_millis(100), sent.clone());
                let reply = read_to_close(&mut reader, Duration::from_secs(10)).await;
                writing.abort();
                (reply, sent.load(Ordering::Relaxed), started.elapsed())
            })
        })
        .collect();
    // Meanwhile others are served.
    for _ in 0..10 {
        assert_hello(&server).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in slow {
        let (reply, sent, elapsed) = task.await.unwrap();
        let reply = reply.unwrap_or_else(|partial| {
            panic!(
                "slowloris connection still open after 10 s ({sent} of {} bytes sent, got {:?})",
                head.len(),
                String::from_utf8_lossy(&partial)
            )
        });
        let line = status_line(&reply);
        eprintln!("slowloris: closed after {elapsed:?}, {sent} bytes sent, answer {line:?}");
        assert!(
            line.is_empty() || line.starts_with("HTTP/1.1 408"),
            "a slow head must get 408 or a plain close, got {line:?}"
        );
        assert!(sent < head.len(), "the slow head was not cut off");
    }
    assert_hello(&server).await;
}

/// The HTTP/2 connection preface, trickled: the server cannot tell HTTP/1
/// from HTTP/2 until it has it, and must not wait for it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_on_the_http2_preface_is_cut_off() {
    let server = TestServer::start(manifest(r#"header_read_timeout = "1s""#)).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let started = Instant::now();
    let (mut reader, writer) = connect(server.addr).await.into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    // 24 bytes at one per 500 ms: 12 s.
    let writing = trickle(
        writer,
        preface.clone(),
        Duration::from_millis(500),
        sent.clone(),
    );
    let reply = read_to_close(&mut reader, Duration::from_secs(10)).await;
    writing.abort();
    let sent = sent.load(Ordering::Relaxed);
    let reply = reply.unwrap_or_else(|_| {
        panic!(
            "a connection trickling the HTTP/2 preface ({sent} of {} bytes sent) was still open after 10 s",
            preface.len()
        )
    });
    eprintln!(
        "h2 preface slowloris: closed after {:?}, {sent} bytes sent, {} bytes answered",
        started.elapsed(),
        reply.len()
    );
    assert!(sent < preface.len(), "the slow preface was not cut off");
    assert_hello(&server).await;
}

// 2. Trickled body.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_off_with_408() {
    let server = TestServer::start(manifest(r#"body_read_timeout = "1s""#)).await;
    let started = Instant::now();
    let (mut reader, writer) = raw_request(
        server.addr,
        b"POST /echo/slow?raw HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n",
    )
    .await
    .into_split();
    let sent = Arc::new(AtomicUsize::new(0));
    // 1000 bytes at one per 200 ms would take 200 s.
    let writing = trickle(
        writer,
        vec![b'x'; 1000],
        Duration::from_millis(200),
        sent.clone(),
    );
    let reply = read_to_close(&mut reader, Duration::from_secs(10)).await;
    writing.abort();
    let sent = sent.load(Ordering::Relaxed);
    let reply = reply.unwrap_or_else(|partial| {
        panic!(
            "a trickled body ({sent} bytes sent) was not cut off within 10 s; got {:?}",
            String::from_utf8_lossy(&partial)
        )
    });
    let line = status_line(&reply);
    eprintln!(
        "trickled body: closed after {:?}, {sent} body bytes sent, answer {line:?}",
        started.elapsed()
    );
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 408"),
        "a trickled body must get 408 or a close, got {line:?}"
    );
    assert!(sent < 1000);
    // The guest was invoked; its record says how it ended.
    let record = server.record_of("echo").await;
    eprintln!(
        "trickled body: record outcome {} status {} request_bytes {}",
        record.outcome, record.status, record.request_bytes
    );
    assert_hello(&server).await;
}

/// The usage record of a request cut off for its slow body has the status
/// the client got.
#[tokio::test]
async fn a_trickled_body_is_recorded_with_the_status_the_client_got() {
    let server = TestServer::start(manifest(r#"body_read_timeout = "1s""#)).await;
    let (mut reader, writer) = raw_request(
        server.addr,
        b"POST /echo/slow?raw HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n",
    )
    .await
    .into_split();
    let writing = trickle(
        writer,
        vec![b'x'; 1000],
        Duration::from_millis(200),
        Default::default(),
    );
    let reply = read_to_close(&mut reader, Duration::from_secs(10)).await;
    writing.abort();
    let reply = reply.expect("a trickled body is cut off");
    let line = status_line(&reply);
    assert!(line.starts_with("HTTP/1.1 408"), "{line:?}");
    let record = server.record_of("echo").await;
    eprintln!(
        "trickled body record: outcome {} status {} (client got {line:?})",
        record.outcome, record.status
    );
    assert_eq!(
        record.status, 408,
        "the record's status is not the one the client got"
    );
}

#[tokio::test]
async fn a_body_sent_in_pieces_within_the_body_timeout_is_served() {
    let server = TestServer::start(manifest(r#"body_read_timeout = "2s""#)).await;
    let mut stream = raw_request(
        server.addr,
        b"POST /echo/pieces?raw HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 20\r\n\r\n",
    )
    .await;
    for piece in ["aaaaa", "bbbbb", "ccccc", "ddddd"] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.write_all(piece.as_bytes()).await.unwrap();
    }
    let reply = read_to_close(&mut stream, Duration::from_secs(10))
        .await
        .expect("the response must come and the connection close");
    let text = String::from_utf8_lossy(&reply);
    assert_eq!(status_line(&reply), "HTTP/1.1 200 OK", "{text}");
    assert!(text.ends_with("aaaaabbbbbcccccddddd"), "{text}");
}

// 3. Malformed HTTP.

#[tokio::test]
async fn malformed_requests_get_400_or_a_close() {
    let server = TestServer::start(manifest(r#"header_read_timeout = "2s""#)).await;
    let cases: &[(&str, &[u8])] = &[
        ("binary junk", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\xbe\xef\r\n\r\n"),
        ("NUL and high bytes", b"\x00\xff\xfe\xfd garbage \x01\x02\r\n\r\n"),
        ("unknown version", b"GET /hello HTTP/9.9\r\nHost: x\r\n\r\n"),
        ("request line without target", b"GET\r\nHost: x\r\n\r\n"),
        ("request line with extra words", b"GET /hello HTTP/1.1 please\r\nHost: x\r\n\r\n"),
        ("spaces in the method", b"G E T /hello HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("header line without colon", b"GET /hello HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n"),
        ("space in a header name", b"GET /hello HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"),
        ("NUL in a header value", b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
        ("negative content-length", b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nhello"),
        ("non-numeric content-length", b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello"),
        (
            "conflicting content-lengths",
            b"POST /echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "transfer-encoding not chunked",
            b"POST /echo/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        ),
        (
            "transfer-encoding in HTTP/1.0",
            b"POST /echo/x HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    for (name, bytes) in cases {
        let started = Instant::now();
        let reply = closed(
            raw_exchange(server.addr, bytes, Duration::from_secs(8)).await,
            name,
        );
        let line = status_line(&reply);
        eprintln!("malformed {name}: {line:?} after {:?}", started.elapsed());
        assert!(
            line.is_empty()
                || line.starts_with("HTTP/1.1 400 ")
                || line.starts_with("HTTP/1.0 400 "),
            "{name}: expected 400 or a close, got {line:?}"
        );
    }
    assert_hello(&server).await;
}

/// A chunked body hyper cannot decode (a bad chunk size, bare-LF lines) is
/// the client's error, found once the guest reads the body: the client gets
/// gust's 400 in place of whatever the guest answered (never 499, which is
/// for records and logs only), and the usage record has that status.
#[tokio::test]
async fn a_malformed_chunked_body_gets_400() {
    let server = TestServer::start(manifest("")).await;
    let cases: &[(&str, &[u8])] = &[
        ("bad chunk size", b"zz\r\nabc\r\n0\r\n\r\n"),
        ("bare-LF chunk lines", b"3\nabc\n0\n\n"),
        ("bare LF after chunk data", b"3\r\nabc\n0\r\n\r\n"),
        (
            "bad size after a good chunk",
            b"3\r\nabc\r\nxyz\r\n0\r\n\r\n",
        ),
    ];
    for (name, body) in cases {
        let mut request =
            b"POST /echo/chunks HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        request.extend_from_slice(body);
        let reply = closed(
            raw_exchange(server.addr, &request, Duration::from_secs(8)).await,
            name,
        );
        let text = String::from_utf8_lossy(&reply);
        let line = status_line(&reply);
        assert_eq!(line, "HTTP/1.1 400 Bad Request", "{name}: {text}");
        assert!(
            text.ends_with("\r\n\r\nmalformed request body\n"),
            "{name}: {text}"
        );
        let record = server.record(&request_id_in(&text)).await;
        eprintln!(
            "malformed chunked body, {name}: {line:?}; record outcome {} status {}",
            record.outcome, record.status
        );
        assert_eq!(
            record.status, 400,
            "{name}: the record's status is not the client's"
        );
        // The outcome is how the guest ended: it answered (the SDK's own
        // 400), or, preempted after answering, it was stopped when its
        // response was replaced (which the record shows as client_gone).
        assert!(
            matches!(record.outcome, Outcome::Ok | Outcome::ClientGone),
            "{name}: {}",
            record.outcome
        );
    }
    assert_hello(&server).await;
}

/// A client that half-closes the connection before its body is complete
/// and waits for the answer gets 400, not 499; the record says it left.
#[tokio::test]
async fn a_body_cut_short_by_a_half_close_gets_400_not_499() {
    let server = TestServer::start(manifest("")).await;
    let cases: &[(&str, &[u8])] = &[
        (
            "content-length",
            b"POST /echo/short HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc",
        ),
        (
            "chunked",
            b"POST /echo/short HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ),
    ];
    for (name, request) in cases {
        let mut stream = raw_request(server.addr, request).await;
        stream.shutdown().await.unwrap();
        let reply = closed(
            read_to_close(&mut stream, Duration::from_secs(8)).await,
            name,
        );
        let text = String::from_utf8_lossy(&reply);
        let line = status_line(&reply);
        eprintln!("half-closed mid-body, {name}: {line:?}");
        assert!(
            line.is_empty() || line.starts_with("HTTP/1.1 400 "),
            "{name}: expected 400 or a close, got {text:?}"
        );
        if !line.is_empty() {
            let record = server.record(&request_id_in(&text)).await;
            eprintln!(
                "half-closed mid-body, {name}: record outcome {} status {}",
                record.outcome, record.status
            );
            assert_eq!(record.outcome, Outcome::ClientGone, "{name}");
        }
    }
    assert_hello(&server).await;
}

/// Content-Length and Transfer-Encoding together (request smuggling): the
/// body is never taken by its Content-Length, and whatever follows is never
/// served as a second request.
#[tokio::test]
async fn content_length_with_transfer_encoding_cannot_smuggle_a_request() {
    let server = TestServer::start(manifest("")).await;
    let smuggled = b"POST /echo/x?raw HTTP/1.1\r\nHost: x\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = closed(
        raw_exchange(server.addr, smuggled, Duration::from_secs(8)).await,
        "the exchange",
    );
    let text = String::from_utf8_lossy(&reply);
    let line = status_line(&reply);
    eprintln!("CL + TE: {line:?}, {} bytes answered", reply.len());
    assert!(
        line.is_empty() || line.starts_with("HTTP/1.1 400 ") || line.starts_with("HTTP/1.1 200 "),
        "{text}"
    );
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        usize::from(!line.is_empty()),
        "a second response was sent: {text}"
    );
    assert!(
        !text.contains("Hello from gust"),
        "the smuggled request was served: {text}"
    );
    assert!(
        !text.contains("GET /hello"),
        "the body was taken by Content-Length: {text}"
    );
    assert_hello(&server).await;
}

// 4. Too many headers, too long URLs.

#[tokio::test]
async fn too_many_headers_are_431_and_long_urls_414() {
    let server = TestServer::start(manifest("max_headers = 20\nmax_url_length = 8192")).await;
    let with_headers = |n: usize| {
        // Host and Connection count.
        let mut head = String::from("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
        for i in 0..n - 2 {
            head += &format!("X-H{i}: v\r\n");
        }
        head + "\r\n"
    };
    let status = |reply: Result<Vec<u8>, Vec<u8>>| {
        status_line(&reply.unwrap_or_else(|partial| {
            panic!(
                "not closed within 8 s; got {:?}",
                String::from_utf8_lossy(&partial)
            )
        }))
    };
    let limit = Duration::from_secs(8);
    assert_eq!(
        status(raw_exchange(server.addr, with_headers(20).as_bytes(), limit).await),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status(raw_exchange(server.addr, with_headers(21).as_bytes(), limit).await),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(
        status(raw_exchange(server.addr, with_headers(60).as_bytes(), limit).await),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );

    let with_target =
        |target: &str| format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let path_of = |len: usize| format!("/echo/{}", "u".repeat(len - "/echo/".len()));
    for (len, expected) in [
        (4096, "HTTP/1.1 200 OK"),
        (8192, "HTTP/1.1 200 OK"),
        (8193, "HTTP/1.1 414 URI Too Long"),
        (16 * 1024, "HTTP/1.1 414 URI Too Long"),
    ] {
        let target = path_of(len);
        assert_eq!(target.len(), len);
        assert_eq!(
            status(raw_exchange(server.addr, with_target(&target).as_bytes(), limit).await),
            expected,
            "a {len}-byte target"
        );
    }
    // The query counts.
    let target = format!("/echo/x?{}", "q".repeat(9000));
    assert_eq!(
        status(raw_exchange(server.addr, with_target(&target).as_bytes(), limit).await),
        "HTTP/1.1 414 URI Too Long"
    );
    assert_hello(&server).await;
}

/// The same limits over HTTP/2, where hyper's HTTP/1 parser is not in the
/// way.
#[tokio::test]
async fn http2_requests_obey_max_headers_and_max_url_length() {
    let server = TestServer::start(manifest("max_headers = 20\nmax_url_length = 8192")).await;
    let (mut sender, _connection) = http2(server.addr).await;
    let send = |sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
                uri: String,
                headers: usize| {
        let mut request = Request::get(uri);
        for i in 0..headers {
            request = request.header(format!("x-h{i}"), "v");
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        let response = sender.send_request(request);
        async move {
            let response = timeout(support::REQUEST_TIMEOUT, response)
                .await
                .expect("request timed out")
                .expect("request failed");
            response.status()
        }
    };
    assert_eq!(
        send(&mut sender, "http://localhost/hello".into(), 10).await,
        StatusCode::OK
    );
    assert_eq!(
        send(&mut sender, "http://localhost/hello".into(), 40).await,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    );
    let long = format!("http://localhost/echo/{}", "u".repeat(16 * 1024));
    assert_eq!(send(&mut sender, long, 0).await, StatusCode::URI_TOO_LONG);
    let fine = format!("http://localhost/echo/{}", "u".repeat(4 * 1024));
    assert_eq!(send(&mut sender, fine, 0).await, StatusCode::OK);
    assert_hello(&server).await;
}

// 5. Clients that leave.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_request_is_client_gone() {
    let server = TestServer::start(manifest("")).await;
    let stream = raw_request(server.addr, b"POST /echo/leaving?raw HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n0123456789").await;
    // Let the guest start and wait for the rest of the body.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    let record = server.record_of("echo").await;
    eprintln!(
        "left mid-request: outcome {} status {} request_bytes {}",
        record.outcome, record.status, record.request_bytes
    );
    assert_eq!(record.outcome, Outcome::ClientGone);
    assert_hello(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_mid_response_is_client_gone() {
    let server = TestServer::start(manifest("")).await;
    const LEN: usize = 16 * 1024 * 1024;
    let (mut reader, mut writer) = connect(server.addr).await.into_split();
    let writing = tokio::spawn(async move {
        writer
            .write_all(
                format!(
                    "POST /echo/big?raw HTTP/1.1\r\nHost: localhost\r\nContent-Length: {LEN}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await?;
        writer.write_all(&vec![b'z'; LEN]).await?;
        Ok::<_, std::io::Error>(writer)
    });
    let head = read_head(&mut reader, Duration::from_secs(20))
        .await
        .expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let request_id = request_id_in(&head);
    let mut some = vec![0u8; 64 * 1024];
    reader.read_exact(&mut some).await.unwrap();
    // Leave with megabytes of the echo unread.
    let writer = timeout(Duration::from_secs(10), writing)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    drop(writer);
    drop(reader);
    let record = server.record(&request_id).await;
    eprintln!(
        "left mid-response: outcome {} status {} response_bytes {} of {LEN}",
        record.outcome, record.status, record.response_bytes
    );
    assert_eq!(record.outcome, Outcome::ClientGone);
    assert!(record.response_bytes < LEN as u64);
    assert_hello(&server).await;
}

/// A guest streaming an endless body: the client reads some and leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_an_endless_response_is_client_gone() {
    let server = TestServer::start(manifest("")).await;
    let started = Instant::now();
    let mut stream = raw_request(
        server.addr,
        b"GET /endless HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    let head = read_head(&mut stream, Duration::from_secs(10))
        .await
        .expect("a response head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let request_id = request_id_in(&head);
    let mut some = vec![0u8; 1024 * 1024];
    timeout(Duration::from_secs(10), stream.read_exact(&mut some))
        .await
        .expect("the endless body streams")
        .unwrap();
    drop(stream);
    let record = server.record(&request_id).await;
    eprintln!(
        "left an endless response: outcome {} status {} response_bytes {} duration {:?} (after {:?})",
        record.outcome,
        record.status,
        record.response_bytes,
        record.duration,
        started.elapsed()
    );
    assert_eq!(record.outcome, Outcome::ClientGone);
    // Cancelled when the client left, not run to its 30 s deadline.
    assert!(
        record.duration < Duration::from_secs(20),
        "{:?}",
        record.duration
    );
    assert_hello(&server).await;
}

// 6. HTTP/2 rapid reset.

/// What one health check saw: its status (or why it failed) and latency.
type Health = Vec<(Result<StatusCode, String>, Duration)>;

/// `GET /hello` on fresh connections every 50 ms until `attacking` clears.
fn health_checks(addr: SocketAddr, attacking: Arc<AtomicBool>) -> tokio::task::JoinHandle<Health> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while attacking.load(Ordering::Relaxed) {
            let started = Instant::now();
            let reply = timeout(Duration::from_secs(5), support::send(addr, get("/hello"))).await;
            let status = match reply {
                Ok(Ok(reply)) => Ok(reply.status),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out after 5 s".to_owned()),
            };
            seen.push((status, started.elapsed()));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        seen
    })
}

/// An HTTP/2 (prior knowledge) connection of the `h2` crate, which can
/// reset streams at will.
async fn h2_attacker(
    addr: SocketAddr,
) -> (
    h2::client::SendRequest<Bytes>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let tcp = connect(addr).await;
    let (client, connection) = timeout(Duration::from_secs(5), h2::client::handshake(tcp))
        .await
        .expect("h2 handshake timed out")
        .expect("h2 handshake");
    (client, tokio::spawn(connection))
}

/// A stream: the response future and the request's send half.
type Stream = (h2::client::ResponseFuture, h2::SendStream<Bytes>);

/// Opens a `GET /spin` stream on the attacker's connection once it has
/// room, or says why it cannot (the server's GOAWAY, a full window).
async fn open_spin(client: &mut h2::client::SendRequest<Bytes>) -> Result<Stream, String> {
    let mut ready = match timeout(Duration::from_secs(2), client.clone().ready()).await {
        Ok(Ok(ready)) => ready,
        Ok(Err(e)) => return Err(stopped("not ready", &e)),
        Err(_) => return Err("not ready within 2 s".to_owned()),
    };
    let request = Request::get("http://localhost/spin").body(()).unwrap();
    let stream = ready
        .send_request(request, true)
        .map_err(|e| stopped("send_request", &e))?;
    *client = ready;
    Ok(stream)
}

/// Why the attacker could not go on.
fn stopped(what: &str, e: &h2::Error) -> String {
    format!(
        "{what}: {e} (reason {:?}, go_away {})",
        e.reason(),
        e.is_go_away()
    )
}

/// Reports whether the server ended the attacking connection (GOAWAY).
async fn report_connection_end(
    label: &str,
    connection: &mut tokio::task::JoinHandle<Result<(), h2::Error>>,
    wait: Duration,
) {
    match timeout(wait, &mut *connection).await {
        Ok(Ok(Ok(()))) => eprintln!("{label}: the server closed the connection cleanly"),
        Ok(Ok(Err(e))) => eprintln!("{label}: connection ended: {}", stopped("error", &e)),
        Ok(Err(e)) => panic!("connection task: {e}"),
        Err(_) => eprintln!("{label}: the attacking connection is still open (no GOAWAY)"),
    }
    connection.abort();
}

/// The usage records of `spin` once they stop coming: cancelled and
/// timed-out invocations finish (spin's deadline is 2 s), bounded by 8 s.
async fn settled_spins(server: &TestServer) -> Vec<InvocationRecord> {
    let spins = || server.records_for("spin");
    let settle = Instant::now();
    let mut last = (spins().len(), Instant::now());
    while settle.elapsed() < Duration::from_secs(8) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let count = spins().len();
        if count != last.0 {
            last = (count, Instant::now());
        } else if settle.elapsed() > Duration::from_millis(2500)
            && last.1.elapsed() > Duration::from_secs(1)
        {
            break;
        }
    }
    spins()
}

/// What both rapid-reset tests require afterwards: every health check was
/// answered 200, no more invocations than streams, each one cancelled (or
/// refused, or stopped at its deadline), and a new HTTP/2 connection is
/// served. Prints what was seen.
async fn assert_healthy_after(
    label: &str,
    addr: SocketAddr,
    health: &Health,
    spins: &[InvocationRecord],
    opened: usize,
) {
    let mut outcomes = std::collections::BTreeMap::new();
    for record in spins {
        *outcomes.entry(record.outcome.as_str()).or_insert(0) += 1;
    }
    let fuel: u64 = spins.iter().map(|r| r.fuel_consumed).sum();
    let max_wall = spins.iter().map(|r| r.duration).max().unwrap_or_default();
    if !spins.is_empty() {
        let (p50, _) = percentiles(spins.iter().map(|r| r.duration).collect());
        let least = spins.iter().map(|r| r.duration).min().unwrap_or_default();
        eprintln!("{label}: invocation wall time min {least:?} p50 {p50:?}");
    }
    eprintln!(
        "{label}: {} invocations of spin for {opened} streams: {outcomes:?}; {fuel} fuel in all; longest {max_wall:?}",
        spins.len()
    );
    let latencies: Vec<Duration> = health.iter().map(|(_, latency)| *latency).collect();
    if let Some(max) = latencies.iter().max() {
        let (p50, p99) = percentiles(latencies.clone());
        eprintln!(
            "{label}: {} health checks, p50 {p50:?} p99 {p99:?} max {max:?}",
            health.len()
        );
    }

    assert!(!health.is_empty());
    for (status, _) in health {
        assert_eq!(
            status,
            &Ok(StatusCode::OK),
            "a health check during the attack failed"
        );
    }
    assert!(spins.len() <= opened, "more invocations than streams");
    for record in spins {
        assert!(
            matches!(
                record.outcome,
                Outcome::ClientGone | Outcome::Overloaded | Outcome::Timeout
            ),
            "a reset stream's invocation ended {}",
            record.outcome
        );
    }
    // A fresh HTTP/2 connection is served.
    let (mut sender, _connection) = http2(addr).await;
    assert_eq!(
        get_on(&mut sender, "http://localhost/hello").await,
        StatusCode::OK
    );
}

/// A server, health checks against it, and one HTTP/2 attacker connection.
struct Attack {
    server: TestServer,
    attacking: Arc<AtomicBool>,
    health: tokio::task::JoinHandle<Health>,
    client: h2::client::SendRequest<Bytes>,
    connection: tokio::task::JoinHandle<Result<(), h2::Error>>,
    started: Instant,
}

impl Attack {
    async fn start() -> Attack {
        let server = TestServer::start(manifest("")).await;
        let attacking = Arc::new(AtomicBool::new(true));
        let health = health_checks(server.addr, attacking.clone());
        let (client, connection) = h2_attacker(server.addr).await;
        Attack {
            server,
            attacking,
            health,
            client,
            connection,
            started: Instant::now(),
        }
    }

    /// Ends the attack after `opened` streams: waits up to `wait` for the
    /// server to end the connection, lets the invocations settle, stops the
    /// health checks and asserts the server stayed healthy.
    async fn finish(mut self, label: &str, opened: usize, wait: Duration) {
        report_connection_end(label, &mut self.connection, wait).await;
        drop(self.client);
        let spins = settled_spins(&self.server).await;
        self.attacking.store(false, Ordering::Relaxed);
        let health = self.health.await.unwrap();
        assert_healthy_after(label, self.server.addr, &health, &spins, opened).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_leaves_the_server_healthy() {
    const STREAMS: usize = 5000;
    let mut attack = Attack::start().await;
    let mut opened = 0;
    let mut stopped_by = None;
    while opened < STREAMS && attack.started.elapsed() < Duration::from_secs(10) {
        match open_spin(&mut attack.client).await {
            Ok((response, mut stream)) => {
                stream.send_reset(h2::Reason::CANCEL);
                drop(response);
                opened += 1;
            }
            Err(why) => {
                stopped_by = Some(why);
                break;
            }
        }
        tokio::task::yield_now().await;
    }
    eprintln!(
        "rapid reset: {opened} streams opened and reset in {:?}; stopped by: {}",
        attack.started.elapsed(),
        stopped_by.as_deref().unwrap_or("(nothing, all sent)")
    );
    attack
        .finish("rapid reset", opened, Duration::from_secs(3))
        .await;
}

/// Rapid reset paced so that the server has accepted each stream (and
/// started its invocation) before the reset arrives: hyper's HTTP/2 only
/// counts resets of streams not yet accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_of_accepted_streams_leaves_the_server_healthy() {
    const BATCH: usize = 50;
    let mut attack = Attack::start().await;
    let mut opened = 0;
    let mut batches = 0;
    let mut stopped_by = None;
    'attack: while attack.started.elapsed() < Duration::from_secs(6) {
        let mut streams = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            match open_spin(&mut attack.client).await {
                Ok(stream) => streams.push(stream),
                Err(why) => {
                    stopped_by = Some(why);
                    break 'attack;
                }
            }
            opened += 1;
        }
        // Long enough for the server to accept them and start the guests.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (response, mut stream) in streams {
            stream.send_reset(h2::Reason::CANCEL);
            drop(response);
        }
        batches += 1;
    }
    eprintln!(
        "paced rapid reset: {opened} streams in {batches} batches of {BATCH} in {:?}; stopped by: {}",
        attack.started.elapsed(),
        stopped_by.as_deref().unwrap_or("(nothing, time up)")
    );
    attack
        .finish("paced rapid reset", opened, Duration::from_millis(500))
        .await;
}

// 7. Thousands of idle connections.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: (soft, hard).
fn raise_nofile_limit() -> (u64, u64) {
    let (_, hard) = rlimit::Resource::NOFILE.get().expect("getrlimit");
    let soft = rlimit::increase_nofile_limit(hard).expect("setrlimit");
    (soft, hard)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_idle_connections_do_not_stop_requests() {
    const IDLE: usize = 5000;
    let (soft, hard) = raise_nofile_limit();
    eprintln!("idle connections: RLIMIT_NOFILE soft {soft} hard {hard}");
    // Client and server ends share this process: two descriptors each.
    if soft < 12_000 {
        eprintln!(
            "SKIPPED five_thousand_idle_connections_do_not_stop_requests: the open-file limit is {soft} (hard {hard}), below the 12000 this test needs"
        );
        return;
    }
    let server = TestServer::start(manifest("")).await;
    let before = server.hello_latencies(Duration::ZERO, 50).await;

    let opening = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(connect(server.addr).await);
    }
    eprintln!("idle connections: {IDLE} opened in {:?}", opening.elapsed());
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = server.hello_latencies(Duration::ZERO, 50).await;

    let (p50, p99) = percentiles(before);
    eprintln!("idle connections: without: p50 {p50:?} p99 {p99:?}");
    let (p50, p99) = percentiles(during);
    eprintln!("idle connections: with {IDLE} idle: p50 {p50:?} p99 {p99:?}");

    // The server held them: none closed.
    let mut closed = 0;
    let mut byte = [0u8; 1];
    for stream in &idle {
        match stream.try_read(&mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => closed += 1,
        }
    }
    assert_eq!(
        closed, 0,
        "the server closed idle connections within seconds"
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = server.hello_latencies(Duration::ZERO, 10).await;
    let (p50, _) = percentiles(after);
    eprintln!("idle connections: after closing them: p50 {p50:?}");
}

// 8. Idle timeout.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
    let server = TestServer::start(manifest(
        "idle_timeout = \"1s\"\nheader_read_timeout = \"30s\"",
    ))
    .await;

    // Silent after one request: closed.
    let (mut idle, idle_connection) = http1(server.addr).await;
    assert_eq!(get_on(&mut idle, "/hello").await, StatusCode::OK);
    let idle_since = Instant::now();
    let idle_connection =
        tokio::spawn(async move { (idle_connection.await, idle_since.elapsed()) });

    // A request every 300 ms for 3 s on another connection: kept.
    let (mut busy, mut busy_connection) = http1(server.addr).await;
    for i in 0..10 {
        assert_eq!(
            get_on(&mut busy, "/hello").await,
            StatusCode::OK,
            "request {i}"
        );
        assert!(
            !busy_connection.is_finished(),
            "busy connection closed after request {i}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(!busy_connection.is_finished());
    assert_eq!(get_on(&mut busy, "/hello").await, StatusCode::OK);

    let (ended, after) = timeout(Duration::from_secs(10), idle_connection)
        .await
        .expect("an idle keep-alive connection was still open 10 s later")
        .unwrap();
    eprintln!(
        "idle_timeout 1s: keep-alive connection closed {after:?} after its response ({ended:?})"
    );
    drop(idle);
    // The busy one is eventually closed too once it is quiet.
    drop(busy);
    let _ = timeout(Duration::from_secs(10), &mut busy_connection).await;
    busy_connection.abort();
    assert_hello(&server).await;
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed_by_the_idle_timeout() {
    let server = TestServer::start(manifest(
        "idle_timeout = \"1s\"\nheader_read_timeout = \"30s\"",
    ))
    .await;
    let started = Instant::now();
    let mut silent = connect(server.addr).await;
    let reply = read_to_close(&mut silent, Duration::from_secs(10))
        .await
        .unwrap_or_else(|_| {
            panic!("a connection that never sent a byte was still open 10 s later")
        });
    eprintln!(
        "idle_timeout 1s: silent connection closed after {:?} ({} bytes answered)",
        started.elapsed(),
        reply.len()
    );
    assert_hello(&server).await;
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let server = TestServer::start(manifest(
        "idle_timeout = \"1s\"\nheader_read_timeout = \"30s\"",
    ))
    .await;
    let (mut sender, connection) = http2(server.addr).await;
    assert_eq!(
        get_on(&mut sender, "http://localhost/hello").await,
        StatusCode::OK
    );
    let idle_since = Instant::now();
    let ended = timeout(Duration::from_secs(10), connection)
        .await
        .expect("an idle HTTP/2 connection was still open 10 s later");
    eprintln!(
        "idle_timeout 1s: HTTP/2 connection closed {:?} after its response ({ended:?})",
        idle_since.elapsed()
    );
    assert_hello(&server).await;
}

// 9. Connection limit.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_new_connections_wait_for_a_free_slot() {
    let server = TestServer::start(manifest("max_connections = 2")).await;
    // Two keep-alive connections, each served once so the server surely
    // accepted them, then idle.
    let (mut first, first_connection) = http1(server.addr).await;
    assert_eq!(get_on(&mut first, "/hello").await, StatusCode::OK);
    let (mut second, _second_connection) = http1(server.addr).await;
    assert_eq!(get_on(&mut second, "/hello").await, StatusCode::OK);

    // A third connects (the kernel completes the handshake) but is not
    // served while they are open.
    let mut third = raw_request(
        server.addr,
        b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut byte = [0u8; 1];
    match timeout(Duration::from_secs(1), third.read(&mut byte)).await {
        Err(_) => {}
        Ok(read) => panic!("a third connection was answered past max_connections = 2: {read:?}"),
    }

    // One closes: the third is served.
    let waited = Instant::now();
    drop(first);
    first_connection.abort();
    let reply = read_to_close(&mut third, Duration::from_secs(10))
        .await
        .expect("the waiting connection was not served within 10 s of a slot freeing");
    eprintln!(
        "max_connections 2: third connection answered {:?} after a slot freed",
        waited.elapsed()
    );
    assert_eq!(status_line(&reply), "HTTP/1.1 200 OK");
    // The one still open is unaffected.
    assert_eq!(get_on(&mut second, "/hello").await, StatusCode::OK);
    assert_hello(&server).await;
}
