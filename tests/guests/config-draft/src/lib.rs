//! `GET /config` (every setting), `GET /config/KEY` (404 if unset),
//! `GET /env` (the environment) and `GET /log?MESSAGE` (one line at each
//! `wasi:logging` level) through `wasi:config@0.2.0-draft-2024-09-27`,
//! `wasi:cli/environment` and `wasi:logging`, written with wit-bindgen
//! alone.

wit_bindgen::generate!({
    inline: r#"
        package test:config-draft;
        world config-draft {
            include wasi:http/proxy@0.2.12;
            import wasi:config/store@0.2.0-draft-2024-09-27;
            import wasi:cli/environment@0.2.12;
            import wasi:logging/logging@0.1.0-draft;
        }
    "#,
    path: "../../../wit",
    generate_all,
});

use exports::wasi::http::incoming_handler::Guest;
use wasi::config0_2_0_draft_2024_09_27::store;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

const MARKERS: [&str; 3] = ["/config", "/env", "/log?"];

/// The path from the first route this guest knows on, so that it can be
/// mounted under any prefix (`/app/config/KEY` is `/config/KEY`).
fn local(path: &str) -> &str {
    MARKERS
        .iter()
        .filter_map(|m| path.find(m))
        .min()
        .map_or(path, |i| &path[i..])
}

struct ConfigDraft;

fn lines(pairs: &[(String, String)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect::<String>()
        .into_bytes()
}

impl Guest for ConfigDraft {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let path = local(&target);
        let (status, body) = if path == "/config" {
            match store::get_all() {
                Ok(all) => (200, lines(&all)),
                Err(e) => (500, format!("{e:?}").into_bytes()),
            }
        } else if let Some(key) = path.strip_prefix("/config/") {
            match store::get(key) {
                Ok(Some(value)) => (200, value.into_bytes()),
                Ok(None) => (404, b"unset".to_vec()),
                Err(e) => (500, format!("{e:?}").into_bytes()),
            }
        } else if let Some(message) = path.strip_prefix("/log?") {
            use wasi::logging::logging::{Level, log};
            for level in [Level::Trace, Level::Info, Level::Critical] {
                log(level, "config-draft", message);
            }
            (200, b"logged".to_vec())
        } else if path == "/env" {
            (200, lines(&wasi::cli::environment::get_environment()))
        } else {
            (404, b"no such route".to_vec())
        };
        let response = OutgoingResponse::new(Fields::new());
        let _ = response.set_status_code(status);
        let Ok(outgoing) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(stream) = outgoing.write() {
            let _ = stream.blocking_write_and_flush(&body);
        }
        let _ = OutgoingBody::finish(outgoing, None);
    }
}

export!(ConfigDraft);
