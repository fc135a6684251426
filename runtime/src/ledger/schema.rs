//! The ledger's SQLite schema and the statements that write it.

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, Transaction, params};

use crate::metering::{InvocationRecord, Outcome};

/// Columns added to `invocations` after its first version, with their
/// definitions: a ledger written before them gets them (empty or 0 for
/// the records it already holds) when it is opened.
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("parent_request_id", "TEXT"),
    ("outbound_requests", "INTEGER NOT NULL DEFAULT 0"),
    ("outbound_bytes", "INTEGER NOT NULL DEFAULT 0"),
];

/// Creates the tables if they are missing, and adds the columns an older
/// ledger lacks. Idempotent.
pub(crate) fn create(conn: &Connection) -> rusqlite::Result<()> {
    create_tables(conn)?;
    let mut existing = Vec::new();
    {
        let mut columns = conn.prepare("PRAGMA table_info(invocations)")?;
        let mut rows = columns.query([])?;
        while let Some(row) = rows.next()? {
            existing.push(row.get::<_, String>(1)?);
        }
    }
    for (name, definition) in ADDED_COLUMNS {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE invocations ADD COLUMN {name} {definition}"
            ))?;
        }
    }
    Ok(())
}

fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
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
            currency        TEXT    NOT NULL,
            parent_request_id TEXT,
            outbound_requests INTEGER NOT NULL DEFAULT 0,
            outbound_bytes  INTEGER NOT NULL DEFAULT 0
        );
        -- Retention works from `marks` (below), so the raw records need no
        -- second B-tree: an index on start_ms cost ~40 % of each insert.
        DROP INDEX IF EXISTS invocations_start;
        -- The highest record id committed in each minute: raw records up to
        -- a minute's mark were all committed by the end of that minute.
        CREATE TABLE IF NOT EXISTS marks (
            minute          INTEGER PRIMARY KEY,
            last_id         INTEGER NOT NULL
        );
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

/// A minute's totals for one function, summed over a batch before being
/// added to the `rollups` table: one upsert per function and minute per
/// batch instead of one per record.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Rollup {
    requests: u64,
    errors: u64,
    fuel: u64,
    host_fuel: u64,
    memory_mib_ms: u64,
    duration_us: u64,
    request_bytes: u64,
    response_bytes: u64,
    cost_nanos: u64,
}

/// `(app, function, currency, minute)`.
pub(crate) type RollupKey<'a> = (&'a str, &'a str, &'a str, i64);

impl Rollup {
    pub(crate) fn add(&mut self, r: &InvocationRecord) {
        self.requests += 1;
        self.errors += u64::from(r.outcome != Outcome::Ok);
        self.fuel = self.fuel.saturating_add(r.fuel_consumed);
        self.host_fuel = self.host_fuel.saturating_add(r.host_fuel);
        self.memory_mib_ms = self.memory_mib_ms.saturating_add(memory_mib_ms(r));
        self.duration_us = self
            .duration_us
            .saturating_add(u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX));
        self.request_bytes = self.request_bytes.saturating_add(r.request_bytes);
        self.response_bytes = self.response_bytes.saturating_add(r.response_bytes);
        self.cost_nanos = self.cost_nanos.saturating_add(r.cost_nanos);
    }
}

/// The rollup key of a record.
pub(crate) fn rollup_key(r: &InvocationRecord) -> RollupKey<'_> {
    (
        r.app.as_str(),
        r.function.as_str(),
        &r.currency,
        unix_ms(r.start).div_euclid(60_000),
    )
}

/// Writes raw records, with the statement prepared once for all of them.
pub(crate) fn insert_all<'a>(
    tx: &Transaction<'_>,
    records: impl IntoIterator<Item = &'a InvocationRecord>,
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO invocations (app, function, route, request_id, start_ms, duration_us, fuel,
             host_fuel, fuel_budget, peak_memory, request_bytes, response_bytes, status, outcome,
             cost_nanos, currency, parent_request_id, outbound_requests, outbound_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19)",
    )?;
    for r in records {
        let duration_us = int(u64::try_from(r.duration.as_micros()).unwrap_or(u64::MAX));
        insert.execute(params![
            r.app.as_str(),
            r.function.as_str(),
            r.route,
            r.request_id,
            unix_ms(r.start),
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
            r.parent_request_id,
            int(r.outbound_requests),
            int(r.outbound_bytes),
        ])?;
    }
    Ok(())
}

/// Adds a batch's totals to a minute's rollup.
pub(crate) fn add_rollup(
    tx: &Transaction<'_>,
    key: &RollupKey<'_>,
    t: &Rollup,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO rollups (app, function, currency, minute, requests, errors, fuel, host_fuel,
             memory_mib_ms, duration_us, request_bytes, response_bytes, cost_nanos)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (app, function, currency, minute) DO UPDATE SET
             requests = requests + excluded.requests,
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
        key.0,
        key.1,
        key.2,
        key.3,
        int(t.requests),
        int(t.errors),
        int(t.fuel),
        int(t.host_fuel),
        int(t.memory_mib_ms),
        int(t.duration_us),
        int(t.request_bytes),
        int(t.response_bytes),
        int(t.cost_nanos),
    ])?;
    Ok(())
}

/// Notes that every record up to the last one inserted in `tx` was
/// committed by the end of the current minute.
pub(crate) fn mark(tx: &Transaction<'_>, now: SystemTime) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT OR REPLACE INTO marks (minute, last_id) VALUES (?1, ?2)")?
        .execute(params![
            unix_ms(now).div_euclid(60_000),
            tx.last_insert_rowid()
        ])?;
    Ok(())
}

/// Deletes raw records committed in minutes that ended by `cutoff` (so every
/// one of them started before it), and those minutes' marks; rollups stay.
/// Records are found by id, through the table's own B-tree.
pub(crate) fn expire(conn: &Connection, cutoff: SystemTime) -> rusqlite::Result<usize> {
    // Minutes ending at or before the cutoff: minute + 1 <= cutoff minute.
    let last_minute = unix_ms(cutoff).div_euclid(60_000) - 1;
    let deleted = conn.execute(
        "DELETE FROM invocations
         WHERE id <= (SELECT COALESCE(MAX(last_id), 0) FROM marks WHERE minute <= ?1)",
        params![last_minute],
    )?;
    conn.execute("DELETE FROM marks WHERE minute <= ?1", params![last_minute])?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ledger::test_record;

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    fn commit_at(conn: &mut Connection, records: std::ops::Range<u64>, at: SystemTime) {
        let tx = conn.transaction().expect("transaction");
        let records: Vec<_> = records.map(test_record).collect();
        insert_all(&tx, &records).expect("insert");
        mark(&tx, at).expect("mark");
        tx.commit().expect("commit");
    }

    #[test]
    fn retention_deletes_what_was_committed_in_minutes_past_the_cutoff() {
        let mut conn = Connection::open_in_memory().expect("sqlite");
        create(&conn).expect("schema");
        let minute = Duration::from_secs(60);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000 * 60);
        commit_at(&mut conn, 0..3, t0 + Duration::from_secs(10));
        commit_at(&mut conn, 3..5, t0 + Duration::from_secs(50));
        commit_at(&mut conn, 5..7, t0 + 2 * minute);
        assert_eq!(count(&conn, "marks"), 2, "one mark per minute");

        // The first minute has not ended at the cutoff: nothing goes.
        assert_eq!(
            expire(&conn, t0 + Duration::from_secs(59)).expect("expire"),
            0
        );
        // It has now: its five records go, the later minute's stay.
        assert_eq!(expire(&conn, t0 + minute).expect("expire"), 5);
        assert_eq!(count(&conn, "invocations"), 2);
        assert_eq!(count(&conn, "marks"), 1);
        assert_eq!(expire(&conn, t0 + 3 * minute).expect("expire"), 2);
        assert_eq!(count(&conn, "invocations"), 0);
    }

    #[test]
    fn an_old_ledger_gains_the_new_columns_and_keeps_its_records() {
        let mut conn = Connection::open_in_memory().expect("sqlite");
        // The first version of the table, with a record in it.
        conn.execute_batch(
            "CREATE TABLE invocations (
                id INTEGER PRIMARY KEY, app TEXT NOT NULL, function TEXT NOT NULL,
                route TEXT NOT NULL, request_id TEXT NOT NULL, start_ms INTEGER NOT NULL,
                duration_us INTEGER NOT NULL, fuel INTEGER NOT NULL, host_fuel INTEGER NOT NULL,
                fuel_budget INTEGER NOT NULL, peak_memory INTEGER NOT NULL,
                request_bytes INTEGER NOT NULL, response_bytes INTEGER NOT NULL,
                status INTEGER NOT NULL, outcome TEXT NOT NULL, cost_nanos INTEGER NOT NULL,
                currency TEXT NOT NULL);
             INSERT INTO invocations VALUES
                (1, 'a', 'f', '/', 'old', 0, 1, 1, 0, 1, 0, 0, 0, 200, 'ok', 0, 'USD');",
        )
        .expect("an old ledger");
        create(&conn).expect("migrated");
        create(&conn).expect("migrating again changes nothing");
        let mut record = test_record(7);
        record.parent_request_id = Some("old".into());
        record.outbound_requests = 2;
        record.outbound_bytes = 300;
        let tx = conn.transaction().expect("transaction");
        insert_all(&tx, [&record]).expect("insert");
        tx.commit().expect("commit");
        let rows: Vec<(String, Option<String>, i64, i64)> = conn
            .prepare("SELECT request_id, parent_request_id, outbound_requests, outbound_bytes FROM invocations ORDER BY id")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            rows,
            vec![
                ("old".to_owned(), None, 0, 0),
                ("r7".to_owned(), Some("old".to_owned()), 2, 300),
            ]
        );
    }

    #[test]
    fn creating_again_drops_an_old_ledgers_index() {
        let conn = Connection::open_in_memory().expect("sqlite");
        create(&conn).expect("schema");
        conn.execute_batch("CREATE INDEX invocations_start ON invocations (start_ms)")
            .expect("an old ledger's index");
        create(&conn).expect("schema again");
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'invocations_start'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(indexes, 0);
    }
}
