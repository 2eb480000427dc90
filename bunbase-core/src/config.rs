//! Configuration helpers shared by every service.
//!
//! Precedence is `--flag` over environment variable over default; binaries get
//! that from clap. Secrets may also come from a `*_FILE` variable, read here,
//! which refuses files other users can read.

use std::fmt;
use std::path::{Path, PathBuf};

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

/// Where a service keeps its relational data, named by one URL that every
/// service reads the same way:
///
/// - `memory`: in this process only, lost at exit (tests);
/// - `postgres://…` or `postgresql://…`: a Postgres server;
/// - `sqlite://PATH`, `sqlite:PATH` or a plain file path: a SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    Memory,
    Sqlite(PathBuf),
    /// The whole URL, which may carry a password.
    Postgres(Secret),
}

impl StoreUrl {
    pub fn parse(raw: &str) -> Result<StoreUrl, Error> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(Error::invalid(
                "empty store URL: give postgres://…, sqlite://PATH, a file path or memory",
            ));
        }
        if raw == "memory" {
            return Ok(StoreUrl::Memory);
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(Secret::new(raw)));
        }
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(Error::invalid("sqlite: store URL without a file path"));
            }
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            return Err(Error::invalid(format!(
                "unsupported store URL scheme {scheme:?}: give postgres://…, sqlite://PATH, a file path or memory"
            )));
        }
        Ok(StoreUrl::Sqlite(PathBuf::from(raw)))
    }

    /// The configured URL, else the SQLite file `file` in `dir` (which is
    /// created if missing; a configured path's directory must exist).
    pub fn or_file(configured: Option<&Secret>, dir: &Path, file: &str) -> Result<StoreUrl, Error> {
        match configured {
            Some(url) => StoreUrl::parse(url.expose()),
            None => StoreUrl::in_dir(dir, file),
        }
    }

    /// The SQLite file `file` in `dir`, creating `dir` if missing.
    pub fn in_dir(dir: &Path, file: &str) -> Result<StoreUrl, Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::invalid(format!("cannot create {}: {e}", dir.display())))?;
        Ok(StoreUrl::Sqlite(dir.join(file)))
    }

    /// Which kind of store, for logs and banners.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreUrl::Memory => "memory",
            StoreUrl::Sqlite(_) => "SQLite",
            StoreUrl::Postgres(_) => "Postgres",
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Memory => f.write_str("Memory"),
            StoreUrl::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            StoreUrl::Postgres(_) => f.write_str("Postgres(***)"),
        }
    }
}

/// Creates `path` (it must not exist) readable by its owner only (mode
/// 600) holding `contents`: generated secrets and development keys.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| Error::invalid(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents)
        .map_err(|e| Error::invalid(format!("cannot write {}: {e}", path.display())))
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
    fn store_urls_parse_one_way() {
        assert_eq!(StoreUrl::parse("memory").unwrap(), StoreUrl::Memory);
        for url in ["postgres://u:p@h/db", "postgresql://h/db"] {
            assert_eq!(
                StoreUrl::parse(url).unwrap(),
                StoreUrl::Postgres(Secret::new(url))
            );
        }
        for (raw, path) in [
            ("sqlite:///var/lib/a.db", "/var/lib/a.db"),
            ("sqlite:a.db", "a.db"),
            ("data/a.db", "data/a.db"),
            (" /abs/b.db ", "/abs/b.db"),
        ] {
            assert_eq!(
                StoreUrl::parse(raw).unwrap(),
                StoreUrl::Sqlite(PathBuf::from(path)),
                "{raw}"
            );
        }
        for bad in ["", "  ", "mysql://h/db", "sqlite://", "redis://h"] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            format!(
                "{:?}",
                StoreUrl::parse("postgres://u:hunter2@h/db").unwrap()
            ),
            "Postgres(***)"
        );
        let dir = std::env::temp_dir().join(format!("bb-store-{}", crate::id::random_hex(4)));
        assert_eq!(
            StoreUrl::or_file(None, &dir, "x.db").unwrap(),
            StoreUrl::Sqlite(dir.join("x.db"))
        );
        assert!(dir.is_dir(), "the default file's directory is made");
        std::fs::remove_dir(&dir).ok();
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
