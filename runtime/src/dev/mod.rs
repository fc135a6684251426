//! Developer tooling, what `spin new` / `spin build` / `spin watch` give
//! Spin users: project templates per language (`new`), the build commands
//! of a manifest's functions (`build`, with the environment they get from
//! `toolkit`), and rebuilding and swapping in changed functions while
//! serving (`watch`). Serving never depends on any of it.

pub mod build;
pub mod new;
pub mod toolkit;
pub mod watch;
