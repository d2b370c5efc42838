//! Bad command lines given to the built `compare` binary: each is refused at once,
//! before any timing runs, with exit status 1 and a message naming the flag or file;
//! nothing panics.

use std::process::{Command, Stdio};

fn compare(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("starting compare");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_refuses_bad_command_lines_before_timing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let bad_json = dir.path().join("bad.json");
    std::fs::write(&bad_json, b"{ not json").unwrap();
    let no_results = dir.path().join("no-results.json");
    std::fs::write(&no_results, br#"{"meta": {}}"#).unwrap();
    let missing = dir.path().join("missing.json");
    let (bad_json, no_results, missing) = (
        bad_json.to_str().unwrap(),
        no_results.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let cases: &[(&[&str], &[&str])] = &[
        (&["--threads", "0"], &["--threads must be between 1 and"]),
        (
            &["--threads", "1000000"],
            &["--threads must be between 1 and", "got 1000000"],
        ),
        (
            &["--threads", "abc"],
            &["--threads expects a whole number, got `abc`"],
        ),
        (&["--threads"], &["--threads needs a value"]),
        (
            &["--only", "bogus"],
            &["unknown section `bogus`", "cnn, convs"],
        ),
        (&["--only", ""], &["unknown section ``"]),
        (&["--only", "cnn,,bn"], &["unknown section ``"]),
        (&["--torch", missing], &["missing.json"]),
        (&["--torch", bad_json], &["bad.json"]),
        (&["--torch", no_results], &["no-results.json", "`results`"]),
        (
            &["--thread", "2"],
            &["unknown argument `--thread`", "usage: compare"],
        ),
    ];
    for (args, needles) in cases {
        let (code, stdout, stderr) = compare(args);
        assert_eq!(code, Some(1), "compare {args:?}: {stdout}\n{stderr}");
        for needle in *needles {
            assert!(
                stderr.contains(needle),
                "compare {args:?}: `{needle}` not in:\n{stderr}"
            );
        }
        assert!(!stderr.contains("panicked"), "compare {args:?}: {stderr}");
        assert!(
            !stdout.contains("ms"),
            "compare {args:?} timed something:\n{stdout}"
        );
    }
    let (code, stdout, _) = compare(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("usage: compare"), "{stdout}");
}
