//! Where gust keeps files by default, following the XDG base directories.

use std::path::PathBuf;

/// `$VAR/gust`, else `$HOME/<home_relative>/gust`, else `None`.
pub(crate) fn gust_dir(var: &str, home_relative: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_relative)))
        .map(|base| base.join("gust"))
}
