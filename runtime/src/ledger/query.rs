//! Reading the bill: usage totals per function from the minute rollups.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};
use serde::Serialize;

/// Which usage to total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// Only this function.
    pub function: Option<String>,
    /// Only minutes starting at or after the minute that contains this time
    /// (rollups are per minute, so this is minute-granular).
    pub since: Option<SystemTime>,
}

/// Totals for one function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// App name.
    pub app: String,
    /// Function id.
    pub function: String,
    /// Invocations.
    pub requests: u64,
    /// Invocations whose outcome was not `ok`.
    pub errors: u64,
    /// Fuel billed (Wasm plus host).
    pub fuel: u64,
    /// The host part of `fuel`.
    pub host_fuel: u64,
    /// Peak memory × wall time, GiB-seconds (for display; costs are summed
    /// exactly per invocation).
    pub memory_gb_seconds: f64,
    /// Summed wall time, milliseconds.
    pub duration_ms: u64,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Response body bytes.
    pub response_bytes: u64,
    /// Cost in nano-units of `currency`, exact.
    pub cost_nanos: u64,
    /// Currency of `cost_nanos`.
    pub currency: String,
}

fn uint(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A `--since` (or `since=`) value: RFC 3339, or a duration before now.
pub fn parse_since(text: &str) -> anyhow::Result<SystemTime> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(time);
    }
    let ago = humantime::parse_duration(text).map_err(|_| {
        anyhow::anyhow!(
            "invalid time `{text}`: use RFC 3339 (2026-11-22T10:00:00Z) or a duration ago (1h, 30m)"
        )
    })?;
    Ok(SystemTime::now()
        .checked_sub(ago)
        .unwrap_or(SystemTime::UNIX_EPOCH))
}

/// Totals per app, function and currency, ordered by function.
pub fn usage(conn: &Connection, filter: &UsageFilter) -> rusqlite::Result<Vec<UsageRow>> {
    let since_minute = filter.since.map_or(i64::MIN, |t| {
        let secs = t
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        i64::try_from(secs / 60).unwrap_or(i64::MAX)
    });
    let mut stmt = conn.prepare_cached(
        "SELECT app, function, currency, SUM(requests), SUM(errors), SUM(fuel), SUM(host_fuel),
                SUM(memory_mib_ms), SUM(duration_us), SUM(request_bytes), SUM(response_bytes),
                SUM(cost_nanos)
         FROM rollups
         WHERE minute >= ?1 AND (?2 IS NULL OR function = ?2)
         GROUP BY app, function, currency
         ORDER BY app, function, currency",
    )?;
    let rows = stmt.query_map(params![since_minute, filter.function], |row| {
        Ok(UsageRow {
            app: row.get(0)?,
            function: row.get(1)?,
            currency: row.get(2)?,
            requests: uint(row.get(3)?),
            errors: uint(row.get(4)?),
            fuel: uint(row.get(5)?),
            host_fuel: uint(row.get(6)?),
            memory_gb_seconds: uint(row.get(7)?) as f64 / 1024.0 / 1000.0,
            duration_ms: uint(row.get::<_, i64>(8)?) / 1000,
            request_bytes: uint(row.get(9)?),
            response_bytes: uint(row.get(10)?),
            cost_nanos: uint(row.get(11)?),
        })
    })?;
    rows.collect()
}

/// Nano-units as a decimal amount: `1234567890` -> `1.234567890`.
pub fn format_nanos(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// Output formats of `gust usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// A JSON array of rows.
    Json,
    /// CSV with a header line.
    Csv,
}

/// Renders rows in `format`.
pub fn render(rows: &[UsageRow], format: Format) -> String {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".to_owned()) + "\n"
        }
        Format::Csv => {
            let mut out = String::from(
                "app,function,requests,errors,fuel,host_fuel,memory_gb_seconds,duration_ms,request_bytes,response_bytes,cost_nanos,cost,currency\n",
            );
            for r in rows {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{:.6},{},{},{},{},{},{}",
                    r.app,
                    r.function,
                    r.requests,
                    r.errors,
                    r.fuel,
                    r.host_fuel,
                    r.memory_gb_seconds,
                    r.duration_ms,
                    r.request_bytes,
                    r.response_bytes,
                    r.cost_nanos,
                    format_nanos(r.cost_nanos),
                    r.currency
                );
            }
            out
        }
        Format::Table => {
            let mut out = format!(
                "{:<12} {:<16} {:>9} {:>7} {:>16} {:>12} {:>12} {:>12} {:>12} {:>16} {}\n",
                "app",
                "function",
                "requests",
                "errors",
                "fuel",
                "host fuel",
                "GB-s",
                "req bytes",
                "resp bytes",
                "cost",
                "currency"
            );
            for r in rows {
                let _ = writeln!(
                    out,
                    "{:<12} {:<16} {:>9} {:>7} {:>16} {:>12} {:>12.6} {:>12} {:>12} {:>16} {}",
                    r.app,
                    r.function,
                    r.requests,
                    r.errors,
                    r.fuel,
                    r.host_fuel,
                    r.memory_gb_seconds,
                    r.request_bytes,
                    r.response_bytes,
                    format_nanos(r.cost_nanos),
                    r.currency
                );
            }
            if rows.is_empty() {
                out.push_str("(no usage recorded)\n");
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_format_as_decimals() {
        assert_eq!(format_nanos(0), "0.000000000");
        assert_eq!(format_nanos(1), "0.000000001");
        assert_eq!(format_nanos(1_234_567_890), "1.234567890");
    }
}
