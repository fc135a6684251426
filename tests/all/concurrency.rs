//! Many requests at once.

use http::StatusCode;

use crate::support::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_all_succeed() {
    let server = std::sync::Arc::new(
        TestServer::start(
            r#"
[functions.hello]
component = "{HELLO}"
[functions.echo]
component = "{ECHO}"
[[routes]]
path = "/hello"
function = "hello"
[[routes]]
path = "/users/{id}"
function = "echo"
"#,
        )
        .await,
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    let reply = server.get("/hello").await;
                    assert_eq!(reply.status, StatusCode::OK);
                    assert_eq!(reply.text(), "Hello from gust!\n");
                } else {
                    let reply = server.get(&format!("/users/{i}")).await;
                    assert_eq!(reply.status, StatusCode::OK);
                    // Each instance saw its own request: nothing is shared.
                    assert_eq!(reply.json()["params"]["id"], i.to_string());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}
