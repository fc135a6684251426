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

/// gust's data directory: `$XDG_DATA_HOME/gust`, else
/// `$HOME/.local/share/gust`, else `gust-data` in the working directory.
pub(crate) fn data_dir() -> PathBuf {
    gust_dir("XDG_DATA_HOME", ".local/share").unwrap_or_else(|| PathBuf::from("gust-data"))
}
