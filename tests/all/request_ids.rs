//! `x-request-id`: unique, unguessable (a client cannot count the node's
//! other requests by comparing its own ids), of the documented form: 32
//! lowercase hex digits, the first 12 the time in milliseconds since the
//! Unix epoch.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};

use crate::support::client::{http1, with_host};
use crate::support::{REQUEST_TIMEOUT, TestServer, manifest};

const CONNECTIONS: usize = 4;
const PER_CONNECTION: usize = 2_500;

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// The id as a number, checking its form: 32 lowercase hex digits.
fn parse_id(id: &str) -> u128 {
    assert_eq!(id.len(), 32, "not 32 digits: {id:?}");
    assert!(
        id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "not lowercase hex: {id:?}"
    );
    u128::from_str_radix(id, 16).unwrap()
}

/// The ids of `n` requests for `path` sent one after another on one
/// keep-alive HTTP/1.1 connection, each answered `expected`.
async fn ids_on_one_connection(
    addr: SocketAddr,
    path: &'static str,
    expected: StatusCode,
    n: usize,
) -> Vec<String> {
    let (mut sender, _connection) = http1(addr).await;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let request = with_host(Request::get(path).body(Empty::<Bytes>::new()).unwrap());
        let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
            .await
            .expect("request timed out")
            .expect("request failed");
        assert_eq!(response.status(), expected);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        response.into_body().collect().await.unwrap();
        ids.push(id);
    }
    ids
}

/// 10,000 ids from concurrent connections (404s: every request gets an id,
/// whether or not a function runs): all well-formed and distinct, their
/// time prefix the time they were given, and no two consecutive ones a
/// sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_unique_unguessable_and_well_formed() {
    let server = TestServer::start(manifest().hello()).await;
    let before = now_ms();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            tokio::spawn(ids_on_one_connection(
                server.addr,
                "/nowhere",
                StatusCode::NOT_FOUND,
                PER_CONNECTION,
            ))
        })
        .collect();
    let mut per_connection = Vec::new();
    for task in tasks {
        per_connection.push(task.await.unwrap());
    }
    let after = now_ms();

    let all: Vec<&String> = per_connection.iter().flatten().collect();
    assert_eq!(all.len(), CONNECTIONS * PER_CONNECTION);
    let distinct: HashSet<&String> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "request ids repeat");

    const RANDOM_BITS: u32 = 80;
    let random_mask = (1u128 << RANDOM_BITS) - 1;
    let mut close_pairs = 0;
    for ids in &per_connection {
        let numbers: Vec<u128> = ids.iter().map(|id| parse_id(id)).collect();
        for (id, &n) in ids.iter().zip(&numbers) {
            let ms = n >> RANDOM_BITS;
            assert!(
                (before..=after).contains(&ms),
                "{id}: time prefix {ms} not within the test's {before}..={after}"
            );
        }
        for (pair, ids) in numbers.windows(2).zip(ids.windows(2)) {
            let (a, b) = (pair[0], pair[1]);
            assert_ne!(b.wrapping_sub(a), 1, "consecutive ids: {ids:?}");
            // Sorted by time (to the millisecond) in the order given.
            assert!(a >> RANDOM_BITS <= b >> RANDOM_BITS, "{ids:?}");
            // The random parts of a counter, or of a weak generator,
            // would be near each other.
            if ((a & random_mask).abs_diff(b & random_mask)) < 1u128 << 48 {
                close_pairs += 1;
            }
        }
    }
    assert_eq!(
        close_pairs, 0,
        "consecutive ids with nearly the same random part"
    );
}

/// The id on a response is the one in the invocation's usage record.
#[tokio::test]
async fn the_request_id_on_the_response_is_the_records() {
    let server = TestServer::start(manifest().hello()).await;
    let ids = ids_on_one_connection(server.addr, "/hello", StatusCode::OK, 3).await;
    for id in &ids {
        parse_id(id);
        assert_eq!(&server.record(id).await.request_id, id);
    }
}
