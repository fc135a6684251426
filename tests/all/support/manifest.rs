//! Manifests written a table at a time, for the functions and routes most
//! tests declare the same way:
//!
//! ```ignore
//! manifest()
//!     .hello()
//!     .function("spin", "{SPIN}")
//!     .set(r#"timeout = "1s""#)
//!     .route("/spin")
//! ```
//!
//! is `hello` at `/hello` and `spin` at `/spin`, with its settings. The
//! text is TOML as a user writes it; components are named as in any test
//! manifest (`"{HELLO}"`, replaced by [`TestServer::start`]).
//!
//! [`TestServer::start`]: super::TestServer::start

use std::fmt;

/// An empty manifest to build on.
pub fn manifest() -> ManifestText {
    ManifestText::default()
}

/// A manifest being built: top-level settings and tables such as
/// `[server]` first, then the functions, then the routes.
#[derive(Clone, Debug, Default)]
pub struct ManifestText {
    head: String,
    functions: String,
    routes: String,
    /// The function [`ManifestText::set`] and [`ManifestText::route`]
    /// apply to: the one declared last.
    last: Option<String>,
}

impl ManifestText {
    /// Text before every function: top-level keys (`name = "shop"`) or
    /// whole tables (`[billing]` ...).
    pub fn head(mut self, text: &str) -> Self {
        self.head += text;
        self.head += "\n";
        self
    }

    /// A `[server]` table with these lines.
    pub fn server(self, lines: &str) -> Self {
        self.head(&format!("[server]\n{lines}"))
    }

    /// A `[defaults]` table with these lines.
    pub fn defaults(self, lines: &str) -> Self {
        self.head(&format!("[defaults]\n{lines}"))
    }

    /// `[functions.ID]` with `component = "COMPONENT"`.
    pub fn function(mut self, id: &str, component: &str) -> Self {
        self.functions += &format!("[functions.{id}]\ncomponent = \"{component}\"\n");
        self.last = Some(id.to_owned());
        self
    }

    /// A line (or lines) of the last function's table: `timeout = "1s"`.
    pub fn set(mut self, lines: &str) -> Self {
        assert!(self.last.is_some(), "`set` follows a `function`");
        self.functions += lines;
        self.functions += "\n";
        self
    }

    /// Routes `path` to the last function.
    pub fn route(self, path: &str) -> Self {
        let function = self.last.clone().expect("`route` follows a `function`");
        self.route_to(path, &function)
    }

    /// Routes `path` to `function`.
    pub fn route_to(mut self, path: &str, function: &str) -> Self {
        self.routes += &format!("[[routes]]\npath = \"{path}\"\nfunction = \"{function}\"\n");
        self
    }

    /// The `hello` example at `/hello`: the neighbour most tests check is
    /// still served.
    pub fn hello(self) -> Self {
        self.function("hello", "{HELLO}").route("/hello")
    }
}

impl fmt::Display for ManifestText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}\n{}", self.head, self.functions, self.routes)
    }
}

impl From<ManifestText> for String {
    fn from(manifest: ManifestText) -> String {
        manifest.to_string()
    }
}
