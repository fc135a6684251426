//! `GET /usage` and `GET /v1/apps/{app}/usage`: usage totals from the
//! ledger, as `gust usage --format json`.

use std::sync::Arc;

use http::StatusCode;

use super::{Reply, json, text};
use crate::ledger::{Ledger, UsageFilter};
use crate::manifest::FunctionId;

/// Usage totals per function (of `app` only, when given) matching the
/// query's `function` and `since`.
pub(super) async fn usage(
    ledger: Option<Arc<Ledger>>,
    app: Option<FunctionId>,
    query: &str,
) -> Reply {
    let Some(ledger) = ledger else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no ledger configured\n");
    };
    let filter = match parse_filter(query) {
        Ok(filter) => filter,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let rows = tokio::task::spawn_blocking(move || ledger.usage(filter)).await;
    match rows {
        Ok(Ok(mut rows)) => {
            // The ledger totals per app and function: keep the app's rows.
            if let Some(app) = app {
                rows.retain(|row| row.app == app.as_str());
            }
            json(
                StatusCode::OK,
                serde_json::to_value(&rows).unwrap_or_default(),
            )
        }
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

fn parse_filter(query: &str) -> anyhow::Result<UsageFilter> {
    let mut filter = UsageFilter::default();
    for (key, value) in super::query_pairs(query) {
        match key.as_str() {
            "function" => filter.function = Some(value),
            "since" => filter.since = Some(crate::ledger::parse_since(&value)?),
            other => anyhow::bail!("unknown query parameter `{other}` (use function, since)"),
        }
    }
    Ok(filter)
}
