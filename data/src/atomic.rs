//! Writing a file so that readers never see it half-written.
//!
//! The bytes go to a temporary file in the same directory (so the final rename stays on
//! one file system and is atomic), are flushed to disk, and the temporary file is then
//! renamed over the destination. A crash leaves either the old file or the new one,
//! plus at worst a stray `*.tmp` file, never a truncated destination.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then
/// rename). Creates no directories: the parent must exist.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path(path)?;
    let written = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(|e| DataError::io(&tmp, "write", e));
    if let Err(e) = written {
        // Best effort: the temporary file is garbage now; the original error matters.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        DataError::io(path, "rename the finished temporary file into place", e)
    })
}

/// `dir/.name.<pid>.tmp` beside `path`: hidden, unique per process, same directory.
fn temp_path(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        DataError::invalid(
            "write_file_atomic",
            format!("{} does not name a file", path.display()),
        )
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    Ok(path.with_file_name(tmp_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_file_atomic(&path, b"first").unwrap();
        write_file_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
    }

    #[test]
    fn missing_parent_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("out.bin");
        let err = write_file_atomic(&path, b"x").unwrap_err().to_string();
        assert!(err.contains("out.bin"), "{err}");
    }
}
