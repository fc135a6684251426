//! Object names: which a guest may use, on every backend alike.
//!
//! A name is 1 to 1,024 bytes of UTF-8 and may contain `/`: each
//! `/`-separated part is a directory level of a filesystem container
//! (`photos/2024/a.jpg` is the file `a.jpg` in `photos/2024/`) and part of
//! the key in an S3 container. So that a name can never reach outside its
//! container, and `list-objects` returns exactly the names written, every
//! part must be 1 to 255 bytes, not `.` or `..`; no name holds NUL or
//! another ASCII control character (S3 keys refuse them too); a name
//! cannot start or end with `/` or hold `//`; parts starting with
//! `.gust-` are the host's own (temporary files) and refused.
//!
//! One name cannot be both an object and a directory level of another
//! (`a` and `a/b`) in a filesystem container: writing the second is an
//! error value.

/// The longest object name, bytes.
pub(crate) const MAX_NAME: usize = 1024;

/// The longest part of a name between two `/`, bytes (what Linux allows
/// for one file name).
pub(crate) const MAX_PART: usize = 255;

/// The prefix of the host's temporary files inside a container.
pub(crate) const TEMP_PREFIX: &str = ".gust-";

/// Checks `name`; the error says what is wrong, for the guest.
pub(crate) fn check(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("object name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "object name is {} bytes, longer than {MAX_NAME}",
            name.len()
        ));
    }
    if name.contains('\0') {
        return Err("object name contains a NUL byte".into());
    }
    if name.chars().any(|c| c.is_ascii_control()) {
        return Err("object name contains a control character".into());
    }
    if name.starts_with('/') {
        return Err("object name starts with `/` (names are relative to the container)".into());
    }
    for part in name.split('/') {
        if part.is_empty() {
            return Err("object name has an empty part (`//` or a trailing `/`)".into());
        }
        if part == "." || part == ".." {
            return Err(format!("object name has a `{part}` part"));
        }
        if part.len() > MAX_PART {
            return Err(format!(
                "object name has a part of {} bytes, longer than {MAX_PART}",
                part.len()
            ));
        }
        if part.starts_with(TEMP_PREFIX) {
            return Err(format!(
                "object name parts starting with `{TEMP_PREFIX}` are reserved"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn names() {
        for good in [
            "a",
            "a/b",
            "photos/2024/x.jpg",
            "..a",
            "a..",
            ".hidden",
            "ü",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        let long_part = "x".repeat(256);
        let long_name = ["y"; 600].join("/");
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            ".",
            "..",
            "a/",
            "a//b",
            "a\0b",
            "a\nb",
            ".gust-tmp-1",
            "a/.gust-x",
            long_part.as_str(),
            long_name.as_str(),
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
