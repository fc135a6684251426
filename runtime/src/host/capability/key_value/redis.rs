//! Key-value stores on a Redis server.
//!
//! A store is one Redis hash, `gust:kv:APP:STORE`: its fields are the
//! store's keys, so the store is namespaced by app and store name, its key
//! count is `HLEN` (the `max_keys` check) and its keys are listed with
//! `HSCAN` (the cursor is Redis' own; as Redis promises, a key present
//! throughout a listing is listed at least once, twice if the hash is
//! resized meanwhile). Counters are `HINCRBY` (decimal ASCII values);
//! writes that may add keys, increments and the compare-and-swap are Lua
//! scripts, atomic on the server, so every gust process sharing the
//! server sees one consistent store.
//!
//! The connection is made on first use (an app loads without I/O), shared
//! by the app's invocations (one multiplexed connection per server URL)
//! and remade after the server goes away. Every operation is bounded: a
//! connect timeout, a response timeout and an overall deadline, so a dead
//! server is an error to the guest within seconds, well before the
//! invocation's own deadline, never a hang.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::{KvError, LIST_PAGE, full, overflow};

/// Longest wait for a TCP connection (and the handshake) to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for the reply to one command.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a whole operation may take, reconnecting included.
const OP_TIMEOUT: Duration = Duration::from_secs(3);

/// Sets pairs (`ARGV[2..]`, field then value) unless that would take the
/// hash past `ARGV[1]` fields; returns -1 if it would.
const SET_MANY: &str = r"
local h, max = KEYS[1], tonumber(ARGV[1])
local new, seen = 0, {}
for i = 2, #ARGV, 2 do
  local f = ARGV[i]
  if not seen[f] then
    seen[f] = true
    if redis.call('HEXISTS', h, f) == 0 then new = new + 1 end
  end
end
if new > 0 and redis.call('HLEN', h) + new > max then return -1 end
for i = 2, #ARGV, 2 do redis.call('HSET', h, ARGV[i], ARGV[i + 1]) end
return new
";

/// `HINCRBY` of `ARGV[1]` by `ARGV[2]` unless it adds a field past
/// `ARGV[3]`: `{1, value}`, or `{0}` when full.
const INCREMENT: &str = r"
local h, f = KEYS[1], ARGV[1]
if redis.call('HEXISTS', h, f) == 0 and redis.call('HLEN', h) >= tonumber(ARGV[3]) then
  return {0}
end
return {1, redis.call('HINCRBY', h, f, ARGV[2])}
";

/// Sets `ARGV[1]` to `ARGV[4]` if it holds `ARGV[3]` (`ARGV[2]` = '1') or
/// is absent (`ARGV[2]` = '0'): 1 swapped, 0 changed meanwhile, -1 full.
const SWAP: &str = r"
local h, f = KEYS[1], ARGV[1]
local cur = redis.call('HGET', h, f)
if ARGV[2] == '0' then
  if cur then return 0 end
  if redis.call('HLEN', h) >= tonumber(ARGV[5]) then return -1 end
elseif cur ~= ARGV[3] then
  return 0
end
redis.call('HSET', h, f, ARGV[4])
return 1
";

/// One page of `HSCAN` from cursor `ARGV[1]`, fields only (values stay on
/// the server): `{next cursor, fields}`.
const LIST: &str = r"
local r = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local keys = {}
for i = 1, #r[2], 2 do keys[#keys + 1] = r[2][i] end
return {r[1], keys}
";

/// One Redis server and the app's connection to it.
pub(crate) struct Server {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    scripts: Scripts,
}

struct Scripts {
    set_many: redis::Script,
    increment: redis::Script,
    swap: redis::Script,
    list: redis::Script,
}

impl Server {
    /// A server at `url`; nothing is connected until the first operation.
    pub(crate) fn new(url: &str) -> anyhow::Result<Server> {
        // The error names what is wrong with the URL, not the URL itself
        // (it may hold a password).
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("invalid Redis URL: {:?}", e.kind()))?;
        Ok(Server {
            client,
            connection: OnceCell::new(),
            scripts: Scripts {
                set_many: redis::Script::new(SET_MANY),
                increment: redis::Script::new(INCREMENT),
                swap: redis::Script::new(SWAP),
                list: redis::Script::new(LIST),
            },
        })
    }

    /// The shared connection, made on first use. A failed first connect
    /// leaves nothing behind: the next operation tries again.
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let manager = self
            .connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    // Reconnects are retried by the next operations; one
                    // quick retry inside an operation is enough.
                    .set_number_of_retries(1)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(200));
                self.client.get_connection_manager_with_config(config)
            })
            .await?;
        Ok(manager.clone())
    }
}

/// A store: one hash on a server.
pub(crate) struct Hash {
    server: Arc<Server>,
    key: String,
}

impl Hash {
    pub(crate) fn new(server: Arc<Server>, app: &str, store: &str) -> Hash {
        Hash {
            server,
            key: format!("gust:kv:{app}:{store}"),
        }
    }

    /// Runs `op` on the connection, within [`OP_TIMEOUT`].
    async fn run<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> Result<T, KvError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let connection = self.server.connection().await?;
            op(connection).await
        };
        match tokio::time::timeout(OP_TIMEOUT, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(failed(&e)),
            Err(_) => {
                tracing::warn!(store = %self.key, "key-value store (Redis) timed out");
                Err(KvError::other("store unavailable: timed out"))
            }
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.run(|mut c| async move {
            redis::cmd("HGET")
                .arg(&self.key)
                .arg(key)
                .query_async(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn exists(&self, key: &str) -> Result<bool, KvError> {
        self.run(|mut c| async move {
            redis::cmd("HEXISTS")
                .arg(&self.key)
                .arg(key)
                .query_async(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn list(
        &self,
        cursor: Option<u64>,
    ) -> Result<(Vec<String>, Option<u64>), KvError> {
        let (next, keys): (u64, Vec<String>) = self
            .run(|mut c| async move {
                self.server
                    .scripts
                    .list
                    .key(&self.key)
                    .arg(cursor.unwrap_or(0))
                    .arg(LIST_PAGE)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok((keys, (next != 0).then_some(next)))
    }

    pub(crate) async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.run(|mut c| async move {
            redis::cmd("HMGET")
                .arg(&self.key)
                .arg(keys)
                .query_async(&mut c)
                .await
        })
        .await
    }

    pub(crate) async fn set_many(
        &self,
        pairs: &[(String, Vec<u8>)],
        max_keys: u64,
    ) -> Result<(), KvError> {
        let added: i64 = self
            .run(|mut c| async move {
                let mut call = self.server.scripts.set_many.key(&self.key);
                call.arg(max_keys);
                for (key, value) in pairs {
                    call.arg(key).arg(value.as_slice());
                }
                call.invoke_async(&mut c).await
            })
            .await?;
        if added < 0 {
            return Err(full(max_keys));
        }
        Ok(())
    }

    pub(crate) async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        self.run(|mut c| async move {
            redis::cmd("HDEL")
                .arg(&self.key)
                .arg(keys)
                .query_async::<i64>(&mut c)
                .await
        })
        .await
        .map(drop)
    }

    pub(crate) async fn increment(
        &self,
        key: &str,
        delta: i64,
        max_keys: u64,
    ) -> Result<i64, KvError> {
        let reply: Vec<i64> = self
            .run(|mut c| async move {
                self.server
                    .scripts
                    .increment
                    .key(&self.key)
                    .arg(key)
                    .arg(delta)
                    .arg(max_keys)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match reply.as_slice() {
            [1, value] => Ok(*value),
            _ => Err(full(max_keys)),
        }
    }

    pub(crate) async fn swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
        max_keys: u64,
    ) -> Result<bool, KvError> {
        let reply: i64 = self
            .run(|mut c| async move {
                self.server
                    .scripts
                    .swap
                    .key(&self.key)
                    .arg(key)
                    .arg(if expected.is_some() { "1" } else { "0" })
                    .arg(expected.unwrap_or_default())
                    .arg(value)
                    .arg(max_keys)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        match reply {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(full(max_keys)),
        }
    }
}

/// A Redis failure, for the guest: the same messages as SQLite's for the
/// guest's own mistakes, "unavailable" for the server's.
fn failed(e: &redis::RedisError) -> KvError {
    let text = e.to_string();
    if text.contains("not an integer") {
        return KvError::other("the value is not an integer");
    }
    if text.contains("overflow") {
        return overflow();
    }
    tracing::warn!(error = %e, "key-value store (Redis) failed");
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
        KvError::other(format!("store unavailable: {e}"))
    } else {
        KvError::other(format!("store failed: {e}"))
    }
}
