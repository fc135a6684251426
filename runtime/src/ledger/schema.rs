//! The ledger's SQLite schema and the statements that write it.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction, params};

use crate::metering::{InvocationRecord, Outcome};

/// Creates the tables if they are missing. Idempotent.
pub(crate) fn create(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "
        CREATE TABLE IF NOT EXISTS invocations (
            id              INTEGER PRIMARY KEY,
            app             TEXT    NOT NULL,
            function        TEXT    NOT NULL,
            route           TEXT    NOT NULL,
            request_id      TEXT    NOT NULL,
            start_ms        INTEGER NOT NULL,
            duration_us     INTEGER NOT NULL,
            fuel            INTEGER NOT NULL,
            host_fuel       INTEGER NOT NULL,
            fuel_budget     INTEGER NOT NULL,
            peak_memory     INTEGER NOT NULL,
            request_bytes   INTEGER NOT NULL,
            response_bytes  INTEGER NOT NULL,
            status          INTEGER NOT NULL,
            outcome         TEXT    NOT NULL,
            cost_nanos      INTEGER NOT NULL,
            currency        TEXT    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS invocations_start ON invocations (start_ms);
        CREATE TABLE IF NOT EXISTS rollups (
            app             TEXT    NOT NULL,
            function        TEXT    NOT NULL,
            currency        TEXT    NOT NULL,
            minute          INTEGER NOT NULL,
            requests        INTEGER NOT NULL,
            errors          INTEGER NOT NULL,
            fuel            INTEGER NOT NULL,
            host_fuel       INTEGER NOT NULL,
            memory_mib_ms   INTEGER NOT NULL,
            duration_us     INTEGER NOT NULL,
            request_bytes   INTEGER NOT NULL,
            response_bytes  INTEGER NOT NULL,
            cost_nanos      INTEGER NOT NULL,
            PRIMARY KEY (app, function, currency, minute)
        );
        ",
    )
}

/// SQLite integers are signed; usage never reaches 2^63, but saturate
/// rather than wrap if it did.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Peak memory held for the wall time, in MiB-milliseconds (rounded up):
/// integer-friendly for sums, shown as GB-seconds.
pub(crate) fn memory_mib_ms(record: &InvocationRecord) -> u64 {
    let product = u128::from(record.peak_memory_bytes) * record.duration.as_nanos();
    u64::try_from(product.div_ceil((1u128 << 20) * 1_000_000)).unwrap_or(u64::MAX)
}

/// Writes one record and adds it to its minute's rollup.
pub(crate) fn insert(tx: &Transaction<'_>, r: &InvocationRecord) -> rusqlite::Result<()> {
    let start_ms = unix_ms(r.start);
    let duration_us = int(u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX));
    tx.prepare_cached(
        "INSERT INTO invocations (app, function, route, request_id, start_ms, duration_us, fuel,
             host_fuel, fuel_budget, peak_memory, request_bytes, response_bytes, status, outcome,
             cost_nanos, currency)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        r.app.as_str(),
        r.function.as_str(),
        r.route,
        r.request_id,
        start_ms,
        duration_us,
        int(r.fuel_consumed),
        int(r.host_fuel),
        int(r.fuel_budget),
        int(r.peak_memory_bytes),
        int(r.request_bytes),
        int(r.response_bytes),
        r.status,
        r.outcome.as_str(),
        int(r.cost_nanos),
        r.currency,
    ])?;
    tx.prepare_cached(
        "INSERT INTO rollups (app, function, currency, minute, requests, errors, fuel, host_fuel,
             memory_mib_ms, duration_us, request_bytes, response_bytes, cost_nanos)
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (app, function, currency, minute) DO UPDATE SET
             requests = requests + 1,
             errors = errors + excluded.errors,
             fuel = fuel + excluded.fuel,
             host_fuel = host_fuel + excluded.host_fuel,
             memory_mib_ms = memory_mib_ms + excluded.memory_mib_ms,
             duration_us = duration_us + excluded.duration_us,
             request_bytes = request_bytes + excluded.request_bytes,
             response_bytes = response_bytes + excluded.response_bytes,
             cost_nanos = cost_nanos + excluded.cost_nanos",
    )?
    .execute(params![
        r.app.as_str(),
        r.function.as_str(),
        r.currency,
        start_ms.div_euclid(60_000),
        i64::from(r.outcome != Outcome::Ok),
        int(r.fuel_consumed),
        int(r.host_fuel),
        int(memory_mib_ms(r)),
        duration_us,
        int(r.request_bytes),
        int(r.response_bytes),
        int(r.cost_nanos),
    ])?;
    Ok(())
}

/// Deletes raw records that started before `cutoff`; rollups stay.
pub(crate) fn expire(conn: &Connection, cutoff: SystemTime) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM invocations WHERE start_ms < ?1",
        params![unix_ms(cutoff)],
    )
}
