//! Zero-downtime deploys: clients keep sending requests to an app while it
//! is updated 100 times through the deploy API (two versions whose answers
//! differ, alternating) and rolled back. No request fails or is reset,
//! every answer comes from one of the two versions, and every replaced
//! version is released (its instances and memory) once its requests are
//! done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use gust_runtime::app::WeakApp;
use gust_runtime::manifest::FunctionId;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::deploy::{TestNode, echo_bundle, hello_bundle};
use crate::support::client;

const HOST: &str = "swap.example.com";
const SWAPS: usize = 100;
const CLIENTS: usize = 4;

/// Which version answered `/hello`: 1 (hello) or 2 (echo); anything else
/// is a failure.
fn version_of(status: StatusCode, body: &[u8]) -> Option<u8> {
    if status != StatusCode::OK {
        return None;
    }
    if body == b"Hello from gust!\n" {
        return Some(1);
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    (json["path"] == "/hello").then_some(2)
}

#[derive(Default)]
struct Tally {
    v1: AtomicU64,
    v2: AtomicU64,
    failed: AtomicU64,
}

/// One client: a keep-alive HTTP/1.1 connection sending `GET /x` back to
/// back until `stop`; a failed request or a reset connection is counted
/// (and the client reconnects).
async fn load(addr: std::net::SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let (mut sender, _connection) = client::http1(addr).await;
    while !stop.load(Ordering::Relaxed) {
        let request = Request::get("/hello")
            .header(http::header::HOST, HOST)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let answer =
            match tokio::time::timeout(Duration::from_secs(30), sender.send_request(request)).await
            {
                Ok(Ok(response)) => {
                    let status = response.status();
                    match response.into_body().collect().await {
                        Ok(body) => version_of(status, &body.to_bytes()),
                        Err(_) => None,
                    }
                }
                _ => None,
            };
        match answer {
            Some(1) => tally.v1.fetch_add(1, Ordering::Relaxed),
            Some(_) => tally.v2.fetch_add(1, Ordering::Relaxed),
            None => {
                let failed = tally.failed.fetch_add(1, Ordering::Relaxed);
                if failed > 100 {
                    return;
                }
                match client::try_http1(addr).await {
                    Ok((again, _)) => sender = again,
                    Err(_) => return,
                }
                0
            }
        };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_deploys_and_a_rollback_under_load_fail_no_request() {
    let test = TestNode::start().await;
    let node = &test.node;
    let app = FunctionId::try_from("swap").unwrap();
    let hosts = format!("[\"{HOST}\"]");
    let versions = [hello_bundle(&hosts), echo_bundle(&hosts)];
    let put = |i: usize| test.deploy("swap", versions[i % 2].clone());
    let first = put(0).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(load(node.addr(), stop.clone(), tally.clone())))
        .collect();
    // Every version that served, to check it is released.
    let mut served: Vec<WeakApp> = Vec::new();
    let mut deploy_ms = Vec::new();
    for i in 1..=SWAPS {
        served.push(node.deployer().apps().get(&app).unwrap().downgrade());
        let reply = put(i).await;
        assert_eq!(reply.status, StatusCode::OK, "deploy {i}: {}", reply.text());
        let deployed = reply.json();
        assert_eq!(deployed["version"], i as u64 + 1);
        // Each version compiles at most once: from then on, the cache.
        if i >= 2 {
            assert_eq!(deployed["load"]["compiled"], 0, "deploy {i} compiled again");
        }
        deploy_ms.push(deployed["load"]["ms"].as_u64().unwrap());
        // Let some requests reach this version.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The last deploy (an even one) was hello; roll back to echo.
    served.push(node.deployer().apps().get(&app).unwrap().downgrade());
    let operator = test.operator.clone();
    let reply = test
        .admin(
            Method::POST,
            "/v1/apps/swap/rollback",
            Some(&operator),
            Bytes::new(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["version"], SWAPS as u64);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_stop = tally.v2.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }

    let (v1, v2, failed) = (
        tally.v1.load(Ordering::Relaxed),
        tally.v2.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{v1} answers from v1, {v2} from v2, {failed} failed; deploy load ms: median {}",
        {
            deploy_ms.sort_unstable();
            deploy_ms[deploy_ms.len() / 2]
        }
    );
    assert_eq!(failed, 0, "{v1} v1, {v2} v2");
    assert!(
        v1 > SWAPS as u64 / 4 && v2 > SWAPS as u64 / 4,
        "{v1} v1, {v2} v2"
    );
    // After the rollback, echo answers.
    assert!(tally.v2.load(Ordering::Relaxed) > before_stop);
    let reply = test.get(HOST, "/hello").await;
    assert_eq!(version_of(reply.status, &reply.body), Some(2));

    // Every replaced version is released once its last request is done;
    // only the one serving now is alive.
    let current = node.deployer().apps().get(&app).unwrap().downgrade();
    let mut alive = usize::MAX;
    for _ in 0..100 {
        alive = served
            .iter()
            .filter(|weak| weak.upgrade().is_some())
            .count();
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alive, 0, "replaced versions still alive");
    assert!(current.upgrade().is_some());
    test.stop().await;
}
