//! Who is asking: `Authorization: Bearer TOKEN` on every `/v1` request,
//! checked against the token file (`deploy::tokens`), with failed attempts
//! limited per client address.
//!
//! | case | answer |
//! |---|---|
//! | the client failed too often lately | 429 with `Retry-After` (checked first, whatever the token) |
//! | no token, or not a valid one | 401 with `WWW-Authenticate: Bearer` (counts as a failure) |
//! | a valid token for another app | 403 |

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::{Reply, json};
use crate::deploy::tokens::{FailureLimiter, TokenEntry, Tokens};
use crate::manifest::FunctionId;

/// The token file and the failure limiter.
#[derive(Debug, Clone)]
pub(super) struct Auth {
    pub(super) tokens: Tokens,
    pub(super) limiter: FailureLimiter,
}

/// A caller whose token is valid.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub(super) token: TokenEntry,
}

impl Caller {
    /// Whether it may see or change `app`.
    pub(super) fn may(&self, app: &FunctionId) -> bool {
        self.token.scope.allows(app)
    }
}

/// Why a request was refused before it was looked at.
pub(super) struct Refused {
    pub(super) reply: Reply,
    /// For the audit log.
    pub(super) reason: &'static str,
}

impl Auth {
    /// The caller of a request with `headers` from `peer`.
    pub(super) fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<Caller, Box<Refused>> {
        if let Err(retry_after) = self.limiter.check(peer) {
            let mut reply = json(
                StatusCode::TOO_MANY_REQUESTS,
                serde_json::json!({ "error": "too many failed attempts: try again later" }),
            );
            let secs = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::try_from(secs.to_string()) {
                reply.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Err(Box::new(Refused {
                reply,
                reason: "rate limited",
            }));
        }
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let (found, reason) = match presented {
            None => (None, "no bearer token"),
            Some(token) => (self.tokens.verify(token), "invalid token"),
        };
        match found {
            Some(token) => Ok(Caller { token }),
            None => {
                self.limiter.fail(peer);
                tracing::warn!(%peer, reason, "admin API: authentication failed");
                let mut reply = json(
                    StatusCode::UNAUTHORIZED,
                    serde_json::json!({ "error": format!("unauthorized: {reason}") }),
                );
                reply.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"gust\""),
                );
                Err(Box::new(Refused { reply, reason }))
            }
        }
    }
}

/// 403 for a caller whose token is for another app.
pub(super) fn forbidden(caller: &Caller, app: &FunctionId) -> Reply {
    json(
        StatusCode::FORBIDDEN,
        serde_json::json!({
            "error": format!("token `{}` ({}) may not touch app `{app}`", caller.token.id, caller.token.scope),
        }),
    )
}
