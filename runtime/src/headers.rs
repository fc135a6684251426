//! The headers gust sets on the request a guest receives (and the request
//! id on the response): one definition, shared by the router's users and
//! the server. `gust-sdk` reads the same names.

/// The route pattern that matched, e.g. `/users/{id}`.
pub const ROUTE: &str = "x-gust-route";
/// Prefix of one header per named route parameter: `x-gust-param-id`.
pub const PARAM_PREFIX: &str = "x-gust-param-";
/// The request id, also on the response.
pub const REQUEST_ID: &str = "x-request-id";
