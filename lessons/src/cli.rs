//! What the lesson programs share at their command line, so that no flag or stop
//! can exhaust the machine or leave a false record:
//!
//! - [`thread_count`]: a `--threads` value checked against a bound
//!   ([`MAX_THREADS_PER_CORE`] times the logical cores), so a typo of `1000000` is an
//!   error instead of a million threads;
//! - [`OutputLock`]: one run at a time per output folder, so two runs never mix their
//!   figures under one summary (stale locks of dead processes are taken over);
//! - [`interrupt`]: Ctrl-C (and `SIGTERM`) asks the run to stop at the next batch
//!   boundary, so it can write what finished and exit with [`EXIT_INTERRUPTED`];
//! - [`write_atomic`]: a file written under a temporary name and renamed into place,
//!   so a reader (or a killed run) never leaves a half-written summary.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::Result;

/// The most compute threads a program accepts per logical core: more than this only
/// adds scheduling overhead, and an unbounded count can exhaust the machine.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// The exit status of a run stopped by Ctrl-C or `SIGTERM` after writing what
/// finished (128 + SIGINT, as shells report an interrupted command).
pub const EXIT_INTERRUPTED: i32 = 130;

/// The logical cores of this machine (1 when the platform cannot tell).
pub fn logical_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The compute threads to use: `requested`, or every core when `None`.
///
/// # Errors
/// `Some(0)`, or more than [`MAX_THREADS_PER_CORE`] x [`logical_cores`]; the message
/// names `flag`, the value and the allowed range.
///
/// ```
/// use lessons::cli::{logical_cores, thread_count, MAX_THREADS_PER_CORE};
/// assert_eq!(thread_count(Some(1), "--threads").unwrap(), 1);
/// assert_eq!(thread_count(None, "--threads").unwrap(), logical_cores());
/// let err = thread_count(Some(1_000_000), "--threads").unwrap_err().to_string();
/// assert!(err.contains("1000000"), "{err}");
/// assert!(thread_count(Some(0), "--threads").is_err());
/// ```
pub fn thread_count(requested: Option<usize>, flag: &str) -> Result<usize> {
    let cores = logical_cores();
    let max = cores.saturating_mul(MAX_THREADS_PER_CORE);
    match requested {
        None => Ok(cores),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(format!(
            "{flag} must be between 1 and {max} ({MAX_THREADS_PER_CORE} per logical core; \
             this machine has {cores}), got {n}"
        )
        .into()),
    }
}

/// Builds the global rayon pool with [`thread_count`] threads; returns the count.
///
/// # Errors
/// A count out of range (see [`thread_count`]) or a pool that cannot start.
pub fn init_thread_pool(requested: Option<usize>, flag: &str) -> Result<usize> {
    let threads = thread_count(requested, flag)?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| format!("setting up {threads} compute threads: {e}"))?;
    Ok(threads)
}

/// Writes `bytes` to `path` through a temporary file in the same folder that is
/// flushed to disk and then renamed over `path`: readers see the old file or the new
/// one, never a part, and a failed write leaves no temporary file.
///
/// # Errors
/// A folder that cannot hold the file, a full disk, a failed rename; the message names
/// `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = |what: &str, e: std::io::Error| format!("writing {} ({what}): {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| fail("creating a temporary file", e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| fail("writing the temporary file", e))?;
    // On failure `persist` hands the temporary file back, and dropping it deletes it.
    tmp.persist(path)
        .map_err(|e| fail("renaming the temporary file into place", e.error))?;
    Ok(())
}

/// The name of the lock file an [`OutputLock`] creates in its folder.
pub const LOCK_FILE: &str = ".insight-run.lock";

/// Exclusive use of an output folder by one run, held while the value lives.
///
/// Acquiring creates [`LOCK_FILE`] in the folder (atomically: `create_new`) holding
/// the process id and program name; dropping the lock removes it. A lock whose
/// process no longer runs (a run killed with `kill -9`) is stale and taken over; on
/// platforms without `/proc` a lock is never judged stale, and the error says which
/// file to remove.
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
}

impl OutputLock {
    /// Locks `dir` (which must exist) for `program`.
    ///
    /// # Errors
    /// Another live run holds the folder (the message names its pid and program and
    /// the lock file), or the lock file cannot be created.
    ///
    /// ```
    /// use lessons::cli::OutputLock;
    /// let dir = tempfile::tempdir()?;
    /// let lock = OutputLock::acquire(dir.path(), "doc")?;
    /// let second = OutputLock::acquire(dir.path(), "doc").unwrap_err().to_string();
    /// assert!(second.contains("is in use by"), "{second}");
    /// drop(lock);
    /// assert!(OutputLock::acquire(dir.path(), "doc").is_ok());
    /// # Ok::<(), lessons::Error>(())
    /// ```
    pub fn acquire(dir: &Path, program: &str) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        // Two tries: the second after removing a stale lock.
        for _ in 0..2 {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    let content = format!("{}\n{program}\n", std::process::id());
                    file.write_all(content.as_bytes())
                        .map_err(|e| format!("writing the lock file {}: {e}", path.display()))?;
                    return Ok(OutputLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = fs::read_to_string(&path).unwrap_or_default();
                    let mut lines = holder.lines();
                    let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
                    let owner = lines.next().unwrap_or("").trim().to_string();
                    match pid {
                        Some(pid) if is_stale(pid, &owner) => {
                            eprintln!(
                                "{program}: taking over the stale lock {} of process {pid}, \
                                 which no longer runs",
                                path.display()
                            );
                            let _ = fs::remove_file(&path);
                        }
                        Some(pid) => {
                            return Err(format!(
                                "the output folder {} is in use by {owner} (pid {pid}); wait for \
                                 it to finish or choose another --out (the lock is {})",
                                dir.display(),
                                path.display()
                            )
                            .into())
                        }
                        None => {
                            // A lock being written this instant, or garbage: refuse
                            // rather than guess.
                            return Err(format!(
                                "the output folder {} is in use by another run (its lock file \
                                 {} has no process id; remove it if no run uses the folder)",
                                dir.display(),
                                path.display()
                            )
                            .into());
                        }
                    }
                }
                Err(e) => {
                    return Err(format!("creating the lock file {}: {e}", path.display()).into())
                }
            }
        }
        Err(format!(
            "the output folder {} was locked again by another run while a stale lock was \
             removed",
            dir.display()
        )
        .into())
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Nothing useful can be done about a lock that cannot be removed: the next
        // run sees that its process is gone and takes it over.
        let _ = fs::remove_file(&self.path);
    }
}

/// Whether the process `pid` that wrote a lock for `program` is gone: no such process,
/// or the id now belongs to another program. Without `/proc` nothing is judged stale.
fn is_stale(pid: u32, program: &str) -> bool {
    let proc_dir = Path::new("/proc");
    if !proc_dir.join("self").exists() {
        return false;
    }
    if pid == std::process::id() {
        // Our own lock, taken by another part of this run: live.
        return false;
    }
    let entry = proc_dir.join(pid.to_string());
    if !entry.exists() {
        return true;
    }
    // `comm` holds the first 15 bytes of the executable's name.
    match fs::read_to_string(entry.join("comm")) {
        Ok(comm) if !program.is_empty() => {
            let comm = comm.trim();
            !program.starts_with(comm) && !comm.starts_with(program)
        }
        _ => false,
    }
}

/// Ctrl-C and `SIGTERM` as a request to stop at the next batch boundary.
///
/// [`install`](interrupt::install) sets a handler once per process; training loops
/// poll [`requested`](interrupt::requested) (an atomic load, nothing more) between
/// batches. A second signal while the run is winding down exits at once with
/// [`EXIT_INTERRUPTED`].
pub mod interrupt {
    use std::sync::atomic::{AtomicBool, Ordering};

    use crate::Result;

    static REQUESTED: AtomicBool = AtomicBool::new(false);

    /// Installs the handler (once per process).
    ///
    /// # Errors
    /// A handler already installed by other code, or a platform that refuses one.
    pub fn install(program: &'static str) -> Result<()> {
        ctrlc::set_handler(move || {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\n{program}: second interrupt: exiting now");
                std::process::exit(super::EXIT_INTERRUPTED);
            }
            eprintln!(
                "\n{program}: interrupted: stopping at the next batch and writing what \
                 finished (interrupt again to exit at once)"
            );
        })
        .map_err(|e| format!("installing the Ctrl-C handler: {e}"))?;
        Ok(())
    }

    /// Whether a stop was requested.
    #[inline]
    pub fn requested() -> bool {
        REQUESTED.load(Ordering::Relaxed)
    }

    /// Requests a stop, as the signal handler does (for tests and for code that
    /// stops a run on its own).
    pub fn request() {
        REQUESTED.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_bounds_name_the_flag_and_range() {
        let max = logical_cores() * MAX_THREADS_PER_CORE;
        assert_eq!(thread_count(Some(max), "--threads").unwrap(), max);
        let err = thread_count(Some(max + 1), "--threads")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--threads must be between 1 and"), "{err}");
        assert!(err.contains(&(max + 1).to_string()), "{err}");
        let err = thread_count(Some(0), "--jobs").unwrap_err().to_string();
        assert!(err.starts_with("--jobs"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("summary.md")]);
        // Into a folder that does not exist: an error naming the file.
        let err = write_atomic(&dir.path().join("no/such/summary.md"), b"x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("summary.md"), "{err}");
    }

    #[test]
    fn a_lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // Pid numbers are bounded by pid_max (at most 2^22 on Linux): this one is free.
        fs::write(dir.path().join(LOCK_FILE), "4294967\ndiagnose\n").unwrap();
        let lock = OutputLock::acquire(dir.path(), "diagnose").unwrap();
        let content = fs::read_to_string(lock.path()).unwrap();
        assert_eq!(
            content,
            format!("{}\ndiagnose\n", std::process::id()),
            "the new lock names this process"
        );
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn a_lock_without_a_pid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LOCK_FILE), "").unwrap();
        let err = OutputLock::acquire(dir.path(), "diagnose")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no process id"), "{err}");
    }
}
