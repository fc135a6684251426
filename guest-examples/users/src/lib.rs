//! User accounts: registration, login with signed tokens, profiles.
//!
//! - `POST /register` with `{"name": ..., "password": ...}` stores the
//!   user (`201`); a taken name is `409`, malformed JSON or an invalid
//!   name or password `400`;
//! - `POST /login` with the same body answers `{"token": ..., "expires_at":
//!   ...}` (`200`), or `401` for a wrong name or password;
//! - `GET /me` with `Authorization: Bearer TOKEN` answers the token's user
//!   (`200`), or `401` for a missing, forged or expired token;
//! - `GET /users/{name}` answers a user's public profile (`404` if none).
//!
//! Passwords are stored as PBKDF2-HMAC-SHA256 hashes ([`ITERATIONS`]
//! rounds) with a 16-byte salt from `wasi:random`, computed in the guest.
//! A token is `BASE64URL(payload) "." BASE64URL(HMAC-SHA256(key,
//! BASE64URL(payload)))` with payload `{"sub": NAME, "exp": UNIX_SECONDS}`.
//!
//! Manifest: `key_value_stores = ["default"]`, and `config` with
//! `token_key` (the HMAC key, a secret: `"{{ secrets.token_key }}"`) and
//! optionally `token_ttl` (seconds a token is valid, default 3600; 0
//! issues tokens that are already expired, for tests).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use gust_sdk::bindings::wasi::clocks::wall_clock;
use gust_sdk::bindings::wasi::random::random;
use gust_sdk::{Body, Request, RequestExt, config, http, kv};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

/// PBKDF2 rounds. One hash (a register or a login) measured 1.1 billion
/// fuel, 11% of the default 10 billion budget, and ~100 ms on gust's
/// engine: slow for a guesser, comfortable for one request.
pub const ITERATIONS: u32 = 100_000;
/// Salt length in bytes.
const SALT_LEN: u64 = 16;
/// Hash length in bytes.
const HASH_LEN: usize = 32;
/// Seconds a token is valid unless `token_ttl` says otherwise.
const DEFAULT_TTL: i64 = 3600;
/// Longest password accepted (PBKDF2 hashes longer ones just as well, but
/// a bound keeps request bodies small).
const MAX_PASSWORD: usize = 1024;
/// Shortest password accepted.
const MIN_PASSWORD: usize = 8;
/// Longest user name accepted.
const MAX_NAME: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// What a client sends to register and to log in.
#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

/// What the store keeps per user.
#[derive(Serialize, Deserialize)]
struct User {
    name: String,
    /// Base64.
    salt: String,
    /// Base64 of the PBKDF2 output.
    hash: String,
    iterations: u32,
    created_at: u64,
}

/// A token's signed content.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

/// A response that ends a handler early.
type Reply = http::Response<Body>;

fn users(req: Request) -> Reply {
    let path = req.uri().path().to_owned();
    let result = match (req.method().clone(), path.as_str()) {
        (http::Method::POST, "/register") => register(&req),
        (http::Method::POST, "/login") => login(&req),
        (http::Method::GET, "/me") => me(&req),
        (http::Method::GET, _) if path.starts_with("/users/") => {
            let name = req
                .param("name")
                .or_else(|| path.strip_prefix("/users/"))
                .unwrap_or("");
            profile(name)
        }
        _ => Err(error(http::StatusCode::NOT_FOUND, "no such endpoint")),
    };
    result.unwrap_or_else(|reply| reply)
}

fn register(req: &Request) -> Result<Reply, Reply> {
    let credentials = credentials(req)?;
    if !valid_name(&credentials.name) {
        return Err(error(
            http::StatusCode::BAD_REQUEST,
            "a user name is 1 to 32 of A-Z a-z 0-9 _ -",
        ));
    }
    let length = credentials.password.len();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(error(
            http::StatusCode::BAD_REQUEST,
            "a password is 8 to 1024 bytes",
        ));
    }
    let store = store()?;
    let key = user_key(&credentials.name);
    // Checked before the (slow) hash; the swap below settles races.
    if store.exists(&key).map_err(store_failed)? {
        return Err(taken());
    }
    let salt = random::get_random_bytes(SALT_LEN);
    let hash = hash_password(&credentials.password, &salt, ITERATIONS);
    let user = User {
        name: credentials.name.clone(),
        salt: STANDARD.encode(&salt),
        hash: STANDARD.encode(hash),
        iterations: ITERATIONS,
        created_at: wall_clock::now().seconds,
    };
    let record = serde_json::to_vec(&user).map_err(|_| internal())?;
    // Only if nobody registered the name meanwhile.
    if !store
        .compare_and_swap(&key, None, &record)
        .map_err(store_failed)?
    {
        return Err(taken());
    }
    Ok(json_reply(http::StatusCode::CREATED, public(&user)))
}

fn login(req: &Request) -> Result<Reply, Reply> {
    let credentials = credentials(req)?;
    let store = store()?;
    let user = if valid_name(&credentials.name) {
        load(&store, &credentials.name)?
    } else {
        None
    };
    let Some(user) = user else {
        // Hash anyway, so an unknown name takes as long as a wrong
        // password and names cannot be probed by timing.
        let _ = hash_password(&credentials.password, b"no such user....", ITERATIONS);
        return Err(wrong_credentials());
    };
    let salt = STANDARD.decode(&user.salt).map_err(|_| internal())?;
    let stored = STANDARD.decode(&user.hash).map_err(|_| internal())?;
    let hash = hash_password(&credentials.password, &salt, user.iterations);
    if !constant_time_eq(&hash, &stored) {
        return Err(wrong_credentials());
    }
    let ttl = match config::get("token_ttl").map_err(config_failed)? {
        Some(ttl) => ttl.trim().parse::<i64>().map_err(|_| {
            gust_sdk::log::error("config token_ttl is not a number of seconds");
            internal()
        })?,
        None => DEFAULT_TTL,
    };
    let claims = Claims {
        sub: user.name,
        exp: now().saturating_add(ttl),
    };
    let token = sign(&claims)?;
    Ok(json_reply(
        http::StatusCode::OK,
        json!({"token": token, "expires_at": claims.exp}),
    ))
}

fn me(req: &Request) -> Result<Reply, Reply> {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("a bearer token is required"))?;
    let claims = verify(token.trim())?;
    if now() >= claims.exp {
        return Err(unauthorized("the token has expired"));
    }
    let store = store()?;
    match load(&store, &claims.sub)? {
        Some(user) => Ok(json_reply(http::StatusCode::OK, public(&user))),
        None => Err(unauthorized("the token's user no longer exists")),
    }
}

fn profile(name: &str) -> Result<Reply, Reply> {
    if !valid_name(name) {
        return Err(error(http::StatusCode::BAD_REQUEST, "not a user name"));
    }
    match load(&store()?, name)? {
        Some(user) => Ok(json_reply(http::StatusCode::OK, public(&user))),
        None => Err(error(http::StatusCode::NOT_FOUND, "no such user")),
    }
}

/// What anyone may see of a user.
fn public(user: &User) -> serde_json::Value {
    json!({"name": user.name, "created_at": user.created_at})
}

fn hash_password(password: &str, salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// Equal slices, compared in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn mac() -> Result<HmacSha256, Reply> {
    let key = config::require("token_key").map_err(config_failed)?;
    if key.is_empty() {
        gust_sdk::log::error("config token_key is empty");
        return Err(internal());
    }
    HmacSha256::new_from_slice(key.as_bytes()).map_err(|_| internal())
}

fn sign(claims: &Claims) -> Result<String, Reply> {
    let payload = serde_json::to_vec(claims).map_err(|_| internal())?;
    let payload = URL_SAFE_NO_PAD.encode(payload);
    let mut mac = mac()?;
    mac.update(payload.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{payload}.{signature}"))
}

/// The claims of a token signed with our key; `401` for anything else.
fn verify(token: &str) -> Result<Claims, Reply> {
    let forged = || unauthorized("the token is invalid");
    let (payload, signature) = token.split_once('.').ok_or_else(forged)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| forged())?;
    let mut mac = mac()?;
    mac.update(payload.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature).map_err(|_| forged())?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| forged())?;
    serde_json::from_slice(&payload).map_err(|_| forged())
}

fn credentials(req: &Request) -> Result<Credentials, Reply> {
    serde_json::from_slice(req.body()).map_err(|e| {
        error(
            http::StatusCode::BAD_REQUEST,
            &format!("expected {{\"name\": ..., \"password\": ...}}: {e}"),
        )
    })
}

fn store() -> Result<kv::Store, Reply> {
    kv::Store::open("default").map_err(store_failed)
}

fn load(store: &kv::Store, name: &str) -> Result<Option<User>, Reply> {
    let Some(bytes) = store.get(&user_key(name)).map_err(store_failed)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        gust_sdk::log::error(format!("user record of {name} is corrupt: {e}"));
        internal()
    })
}

fn user_key(name: &str) -> String {
    format!("user:{name}")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

fn now() -> i64 {
    i64::try_from(wall_clock::now().seconds).unwrap_or(i64::MAX)
}

fn taken() -> Reply {
    error(http::StatusCode::CONFLICT, "that name is taken")
}

fn wrong_credentials() -> Reply {
    error(http::StatusCode::UNAUTHORIZED, "wrong name or password")
}

fn unauthorized(message: &str) -> Reply {
    let mut reply = error(http::StatusCode::UNAUTHORIZED, message);
    reply.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    reply
}

fn store_failed(e: kv::Error) -> Reply {
    gust_sdk::log::error(format!("users store: {e}"));
    internal()
}

fn config_failed(e: config::Error) -> Reply {
    gust_sdk::log::error(format!("users config: {e}"));
    internal()
}

fn internal() -> Reply {
    error(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn error(status: http::StatusCode, message: &str) -> Reply {
    json_reply(status, json!({"error": message}))
}

fn json_reply(status: http::StatusCode, value: serde_json::Value) -> Reply {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(value.to_string()))
        .unwrap_or_default()
}

gust_sdk::export!(users);
