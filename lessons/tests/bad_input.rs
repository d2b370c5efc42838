//! Bad command lines, bad files and stops, given to the built `diagnose` and
//! `makemore` binaries as a user (or a hostile file) would: each case asserts the exit
//! status, that the message names the problem, that nothing panicked, and that no
//! temporary file is left in the output folder. The README's reliability section
//! lists these cases and what each gets.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIAGNOSE: &str = env!("CARGO_BIN_EXE_diagnose");
const MAKEMORE: &str = env!("CARGO_BIN_EXE_makemore");

/// The names list of the makemore lessons, shipped in `lessons/data/` (see its NOTICE).
fn names_txt() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/names.txt")
}

/// What one run of a binary gave.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// Asserts the exit status and that stderr contains every one of `needles`.
    fn expect(&self, code: i32, needles: &[&str], case: &str) {
        assert_eq!(
            self.code,
            Some(code),
            "{case}: exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "{case}: stderr lacks `{needle}`:\n{}",
                self.stderr
            );
        }
        for out in [&self.stdout, &self.stderr] {
            assert!(
                !out.contains("panicked") && !out.contains("RUST_BACKTRACE"),
                "{case}: a panic:\n{out}"
            );
        }
    }
}

fn run(bin: &str, args: &[&str]) -> Ran {
    let out = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `dir` (recursively) whose name marks it as temporary.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp") || name.starts_with(".tmp") {
                found.push(path);
            }
        }
    }
    found
}

fn assert_no_temp_files(dir: &Path, case: &str) {
    let left = temp_files(dir);
    assert!(left.is_empty(), "{case}: temporary files left: {left:?}");
}

/// The flags of a `diagnose` run that takes well under a second.
fn quick_diagnose<'a>(out: &'a str, stages: &'a str) -> Vec<&'a str> {
    vec![
        "--subset",
        "--stages",
        stages,
        "--max-batches",
        "2",
        "--threads",
        "2",
        "--out",
        out,
    ]
}

#[test]
fn diagnose_rejects_bad_command_lines_with_the_valid_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], i32, &[&str])] = &[
        (&["--threads", "0"], 1, &["--threads must be between 1 and"]),
        (
            &["--threads", "1000000"],
            1,
            &["--threads must be between 1 and", "got 1000000"],
        ),
        (&["--threads", "abc"], 2, &["invalid value 'abc'"]),
        (&["--threads", "-1"], 2, &["--threads"]),
        (
            &["--stages", ""],
            1,
            &["--stages names no stage", "1 baseline"],
        ),
        (&["--stages", " , "], 1, &["--stages names no stage"]),
        (
            &["--stages", "nope"],
            1,
            &["unknown stage `nope`", "9 small-batch"],
        ),
        (&["--stages", "0"], 1, &["unknown stage `0`"]),
        (&["--stages", "10"], 1, &["unknown stage `10`"]),
        (&["--epochs", "0"], 1, &["--epochs must be at least 1"]),
        (&["--batch-size", "0"], 1, &["--batch-size and --epochs"]),
        (
            &["--batch-size", "99999999999999999999999"],
            2,
            &["--batch-size"],
        ),
        (
            &["--lr", "0"],
            1,
            &["--lr must be a positive number, got 0"],
        ),
        (&["--lr", "-1"], 1, &["--lr must be a positive number"]),
        (
            &["--lr", "NaN"],
            1,
            &["--lr must be a positive number, got NaN"],
        ),
        (
            &["--lr", "inf"],
            1,
            &["--lr must be a positive number, got inf"],
        ),
        (&["--lr", "fast"], 2, &["invalid value 'fast'"]),
        (&["--max-batches", "0"], 1, &["--max-batches"]),
        (&["--small-batches", "0"], 1, &["--small-batches"]),
        (&["--seed", "-3"], 2, &["--seed"]),
        (&["--subset", "--data", "/x"], 2, &["cannot be used with"]),
        (&["--bogus"], 2, &["unexpected argument '--bogus'"]),
        (&["extra"], 2, &["unexpected argument 'extra'"]),
    ];
    for (args, code, needles) in cases {
        let mut all = vec!["--out", out];
        all.extend_from_slice(args);
        run(DIAGNOSE, &all).expect(*code, needles, &format!("diagnose {args:?}"));
    }
    // No case got as far as writing a figure.
    assert!(!Path::new(out).join("summary.md").exists());
    assert_no_temp_files(dir.path(), "bad command lines");
}

#[test]
fn diagnose_names_missing_and_corrupt_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("no-such-dir");
    run(
        DIAGNOSE,
        &[
            "--data",
            missing.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .expect(
        1,
        &["loading Fashion-MNIST", "no-such-dir"],
        "missing --data",
    );
    // A folder with every file, one of them garbage.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        std::fs::write(data.join(name), b"not an idx file at all").unwrap();
    }
    run(
        DIAGNOSE,
        &[
            "--data",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .expect(
        1,
        &["loading Fashion-MNIST", "train-images-idx3-ubyte"],
        "corrupt --data",
    );
    // An output path that is a file.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    run(DIAGNOSE, &quick_diagnose(file.to_str().unwrap(), "1")).expect(
        1,
        &["creating the output directory", "a-file"],
        "--out is a file",
    );
    assert_no_temp_files(dir.path(), "data");
}

#[test]
fn diagnose_exits_non_zero_when_a_stage_cannot_write_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    // A folder name with markup: the summary quotes it in the failure's status and
    // must escape it (a report is data, not code).
    let out = dir.path().join("out<script>|x");
    std::fs::create_dir_all(&out).unwrap();
    // The baseline's folder is taken by a file: its figures cannot be written. The
    // stage after it still runs.
    std::fs::write(out.join("baseline"), b"in the way").unwrap();
    let ran = run(
        DIAGNOSE,
        &quick_diagnose(out.to_str().unwrap(), "baseline,batchnorm"),
    );
    ran.expect(
        1,
        &[
            "stage baseline failed",
            "1 of 2 runs failed to produce their outputs: baseline",
        ],
        "unwritable stage folder",
    );
    assert!(
        !ran.stdout.contains("wrote ") || ran.stdout.contains("summary.md"),
        "{}",
        ran.stdout
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("| baseline |") && summary.contains("FAILED"),
        "{summary}"
    );
    assert!(summary.contains("| batchnorm |"), "{summary}");
    assert!(
        !summary.contains("<script>"),
        "raw markup in the summary:\n{summary}"
    );
    assert!(summary.contains("out&lt;script&gt;\\|x"), "{summary}");
    assert!(out.join("batchnorm").join("health.md").exists());
    assert_no_temp_files(&out, "unwritable stage folder");
}

#[test]
fn diagnose_refuses_a_folder_another_run_holds_and_takes_over_a_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let lock = out.join(lessons::cli::LOCK_FILE);
    // A live holder: a running process whose name matches the lock's.
    let mut holder = Command::new("sleep").arg("60").spawn().unwrap();
    std::fs::write(&lock, format!("{}\nsleep\n", holder.id())).unwrap();
    let ran = run(DIAGNOSE, &quick_diagnose(out.to_str().unwrap(), "1"));
    let _ = holder.kill();
    let _ = holder.wait();
    let named = format!("in use by sleep (pid {})", holder.id());
    ran.expect(1, &[&named, "choose another --out"], "held lock");
    assert!(
        !out.join("summary.md").exists(),
        "a refused run wrote a summary"
    );
    assert!(lock.exists(), "a refused run removed the holder's lock");
    // A dead holder: a pid above Linux's pid_max.
    std::fs::write(&lock, "4294967\ndiagnose\n").unwrap();
    let ran = run(DIAGNOSE, &quick_diagnose(out.to_str().unwrap(), "1"));
    ran.expect(0, &["taking over the stale lock"], "stale lock");
    assert!(out.join("summary.md").exists());
    assert!(!lock.exists(), "the lock outlived the run");
}

/// Starts `bin` with `args`, waits until a line of its stdout contains `ready`, then
/// sends SIGINT; returns what the run gave.
fn interrupt_when(bin: &str, args: &[&str], ready: &str) -> Ran {
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(ready) {
            break;
        }
        assert!(Instant::now() < deadline, "never saw `{ready}`:\n{seen}");
    }
    // Inside the training loop by now; let it take a few batches.
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -INT failed");
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let out = child.wait_with_output().unwrap();
    Ran {
        code: out.status.code(),
        stdout: seen,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn diagnose_stopped_by_ctrl_c_writes_what_finished_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = [
        "--subset",
        "--stages",
        "baseline,kaiming",
        "--epochs",
        "1000",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = interrupt_when(DIAGNOSE, &args, "=== stage baseline");
    ran.expect(130, &["interrupted"], "Ctrl-C");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let row = |stage: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(&format!("| {stage} |")))
            .unwrap_or_else(|| panic!("no {stage} row in:\n{summary}"))
            .to_string()
    };
    assert!(row("baseline").contains("| interrupted |"), "{summary}");
    assert!(row("kaiming").contains("not run"), "{summary}");
    assert!(summary.contains("**Interrupted**"), "{summary}");
    // The interrupted stage wrote its figures and report.
    assert!(out.join("baseline").join("health.md").exists());
    assert!(out.join("baseline").join("loss.png").exists());
    assert!(!out.join(lessons::cli::LOCK_FILE).exists());
    assert_no_temp_files(&out, "Ctrl-C");
}

#[test]
fn makemore_rejects_bad_command_lines_and_word_lists() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let names = names_txt();
    let names = names.to_str().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let binary = dir.path().join("binary.txt");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41, 0x0a, 0xc3]).unwrap();
    let one_letter = dir.path().join("one.txt");
    std::fs::write(&one_letter, b"a\n").unwrap();
    let missing = dir.path().join("missing.txt");
    let (empty, binary, one_letter, missing) = (
        empty.to_str().unwrap(),
        binary.to_str().unwrap(),
        one_letter.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let dir_path = dir.path().to_str().unwrap();
    let cases: &[(&[&str], i32, &[&str])] = &[
        (&["--words"], 2, &["--words"]),
        (
            &["--words", missing],
            1,
            &["reading the word list", "missing.txt"],
        ),
        (&["--words", dir_path], 1, &["reading the word list"]),
        (&["--words", empty], 1, &["empty.txt"]),
        (&["--words", binary], 1, &["binary.txt"]),
        (
            &["--words", names, "--steps", "0"],
            1,
            &["--steps and --batch-size must be at least 1"],
        ),
        (
            &["--words", names, "--batch-size", "0"],
            1,
            &["--steps and --batch-size"],
        ),
        (
            &["--words", names, "--batch-size", "100000000"],
            1,
            &["--batch-size must be at most"],
        ),
        (
            &["--words", names, "--samples", "100000000"],
            1,
            &["--samples at most"],
        ),
        (
            &["--words", names, "--lr", "0"],
            1,
            &["--lr must be a positive number"],
        ),
        (
            &["--words", names, "--lr", "NaN"],
            1,
            &["--lr must be a positive number, got NaN"],
        ),
        (
            &["--words", names, "--snapshot-step", "1000", "--steps", "10"],
            1,
            &["--snapshot-step must be a training step, 0..=9 for --steps 10, got 1000"],
        ),
        (
            &["--words", names, "--threads", "0"],
            1,
            &["--threads must be between 1 and"],
        ),
        (
            &["--words", names, "--threads", "1000000"],
            1,
            &["--threads must be between 1 and", "got 1000000"],
        ),
        (
            &["--words", names, "--batchnorm", "--batch-size", "1"],
            1,
            &["--batchnorm needs --batch-size of at least 2"],
        ),
        (&["--words", names, "--steps", "-5"], 2, &["--steps"]),
        (
            &["--words", names, "--bogus"],
            2,
            &["unexpected argument '--bogus'"],
        ),
    ];
    for (args, code, needles) in cases {
        let mut all = vec!["--out", out];
        all.extend_from_slice(args);
        run(MAKEMORE, &all).expect(*code, needles, &format!("makemore {args:?}"));
    }
    // A one-word list of one letter trains (two windows) or says why not; never a panic.
    let ran = run(
        MAKEMORE,
        &[
            "--out",
            out,
            "--words",
            one_letter,
            "--steps",
            "3",
            "--samples",
            "1",
        ],
    );
    assert!(
        matches!(ran.code, Some(0 | 1)),
        "one-letter list: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    assert_no_temp_files(dir.path(), "makemore bad input");
}

#[test]
fn makemore_stopped_by_ctrl_c_writes_its_figures_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let names = names_txt();
    let args = [
        "--words",
        names.to_str().unwrap(),
        "--steps",
        "100000000",
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ];
    let ran = interrupt_when(MAKEMORE, &args, "initial loss");
    ran.expect(130, &["makemore: interrupted after"], "Ctrl-C");
    assert!(ran.stdout.contains("interrupted after"), "{}", ran.stdout);
    assert!(out.join("health.md").exists());
    assert!(out.join("loss.png").exists());
    assert!(!out.join(lessons::cli::LOCK_FILE).exists());
    assert_no_temp_files(&out, "makemore Ctrl-C");
}
