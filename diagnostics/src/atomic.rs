//! Writing files atomically: into a temporary file in the same directory, then a
//! rename over the target, so a reader never sees half a report.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{DiagError, Result};

/// Writes `bytes` to `path` through a temporary sibling and a rename; `action` names
/// the write in errors (e.g. `"writing the health report"`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], action: &'static str) -> Result<()> {
    let io = |source| DiagError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        // Best effort: the temporary file may not exist.
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reports_missing_directories() {
        let dir = std::env::temp_dir().join(format!("diag-atomic-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.md");
        write_atomic(&p, b"hello", "writing a").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "hello");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        let e = write_atomic(&dir.join("missing/b.md"), b"x", "writing b").unwrap_err();
        assert!(e.to_string().starts_with("writing b"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
