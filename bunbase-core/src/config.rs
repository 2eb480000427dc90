//! Configuration helpers shared by every service.
//!
//! Precedence is `--flag` over environment variable over default; binaries get
//! that from clap. Secrets may also come from a `*_FILE` variable, read here,
//! which refuses files other users can read.

use std::fmt;
use std::path::Path;

use crate::error::Error;

/// A secret string whose `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Resolves a secret from its direct value or its `*_FILE` path. Giving both
/// is an error (ambiguous); giving neither is `Ok(None)`.
pub fn resolve_secret(
    name: &str,
    value: Option<String>,
    file: Option<&Path>,
) -> Result<Option<Secret>, Error> {
    match (value, file) {
        (Some(_), Some(_)) => Err(Error::invalid(format!(
            "{name} and {name}_FILE are both set; set only one"
        ))),
        (Some(v), None) => Ok(Some(Secret(v))),
        (None, Some(path)) => read_secret_file(path).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads a secret file, trimming one trailing newline. Refuses files that
/// group or others can read, as ssh does with private keys.
pub fn read_secret_file(path: &Path) -> Result<Secret, Error> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::invalid(format!("cannot read secret file {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(Error::invalid(format!(
                "secret file {} is readable by other users; run chmod 600 on it",
                path.display()
            )));
        }
    }
    let raw = std::fs::read_to_string(path)
        .map_err(|e| Error::invalid(format!("cannot read secret file {}: {e}", path.display())))?;
    let trimmed = raw.strip_suffix('\n').unwrap_or(&raw);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(Secret(trimmed.to_string()))
}

/// Parses a size such as `64KiB`, `1MiB`, `512` (bytes).
pub fn parse_size(raw: &str) -> Result<usize, Error> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (num, unit) = raw.split_at(split);
    let num: usize = num
        .parse()
        .map_err(|_| Error::invalid(format!("invalid size {raw:?}")))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(Error::invalid(format!("invalid size unit in {raw:?}"))),
    };
    num.checked_mul(mult)
        .ok_or_else(|| Error::invalid(format!("size {raw:?} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(contents: &str, mode: u32) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("bb-secret-{}", crate::id::random_hex(8)));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    #[test]
    fn secret_files_must_be_private() {
        let private = temp_file("s3cret\n", 0o600);
        assert_eq!(read_secret_file(&private).unwrap().expose(), "s3cret");
        let public = temp_file("s3cret\n", 0o644);
        let err = read_secret_file(&public).unwrap_err();
        assert!(err.to_string().contains("chmod 600"));
        std::fs::remove_file(private).ok();
        std::fs::remove_file(public).ok();
    }

    #[test]
    fn value_and_file_are_exclusive() {
        let f = temp_file("x", 0o600);
        assert!(resolve_secret("T", Some("a".into()), Some(&f)).is_err());
        assert_eq!(resolve_secret("T", None, None).unwrap(), None);
        std::fs::remove_file(f).ok();
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("abc").is_err());
    }
}
