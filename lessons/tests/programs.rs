//! End-to-end runs of the lesson programs with small settings: `diagnose` on the
//! embedded Fashion-MNIST subset and `makemore` on the shipped `lessons/data/names.txt`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty directory under the system temp dir for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lessons-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(bin: &str, args: &[&str]) -> Output {
    let out = Command::new(bin).args(args).output().unwrap();
    if !out.status.success() {
        panic!(
            "{bin} {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Decodes a PNG and checks that it has a sensible size and is not blank: at least
/// 1% of its pixels differ from the top-left (background) pixel.
fn assert_valid_png(path: &Path) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert!(
        info.width >= 200 && info.height >= 200,
        "{}: {}x{}",
        path.display(),
        info.width,
        info.height
    );
    let px = info.color_type.samples();
    let data = &buf[..info.buffer_size()];
    let background = &data[..px];
    let differing = data.chunks(px).filter(|p| p != &background).count();
    let total = data.len() / px;
    assert!(
        differing * 100 >= total,
        "{} looks blank: {differing} of {total} pixels differ from the background",
        path.display()
    );
}

#[test]
fn diagnose_runs_two_stages_on_the_embedded_subset() {
    let out_dir = temp_dir("diagnose");
    let out = run(
        env!("CARGO_BIN_EXE_diagnose"),
        &[
            "--subset",
            "--stages",
            "baseline,5",
            "--max-batches",
            "3",
            "--epochs",
            "1",
            "--threads",
            "2",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("embedded"),
        "no data source line in:\n{stdout}"
    );
    let summary = std::fs::read_to_string(out_dir.join("summary.md")).unwrap();
    for stage in ["baseline", "batchnorm"] {
        assert!(
            summary.contains(&format!("| {stage} |")),
            "{stage} missing from:\n{summary}"
        );
        let dir = out_dir.join(stage);
        for fig in [
            "activation_means",
            "activation_stds",
            "dead_chart",
            "color_dim",
            "loss",
        ] {
            assert_valid_png(&dir.join(format!("{fig}.png")));
        }
        let report = std::fs::read_to_string(dir.join("health.md")).unwrap();
        assert!(report.contains("# Training health report"));
    }
    assert!(
        !out_dir.join("kaiming").exists(),
        "a stage that was not asked for ran"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn diagnose_is_reproducible_for_a_seed_and_thread_count() {
    let table = |name: &str| {
        let dir = temp_dir(name);
        run(
            env!("CARGO_BIN_EXE_diagnose"),
            &[
                "--subset",
                "--stages",
                "kaiming",
                "--max-batches",
                "3",
                "--epochs",
                "1",
                "--threads",
                "2",
                "--seed",
                "7",
                "--out",
                dir.to_str().unwrap(),
            ],
        );
        let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // Everything but the time column.
        summary
            .lines()
            .filter(|l| l.starts_with("| kaiming"))
            .map(|l| {
                l.rsplit_once('|')
                    .unwrap()
                    .0
                    .rsplit_once('|')
                    .unwrap()
                    .0
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let a = table("repro-a");
    assert_eq!(a.len(), 1);
    assert_eq!(a, table("repro-b"));
}

/// The `lr` cell of each row of a `summary.md`, by stage.
fn lr_cells(summary: &str) -> Vec<(String, String)> {
    summary
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| stage"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].to_string(), cells[2].to_string())
        })
        .collect()
}

#[test]
fn diagnose_uses_each_stages_lr_unless_lr_is_given() {
    let summary = |name: &str, extra: &[&str]| {
        let dir = temp_dir(name);
        let mut args = vec![
            "--subset",
            "--stages",
            "baseline,kaiming,one-cycle,small-batch",
            "--max-batches",
            "2",
            "--epochs",
            "1",
            "--threads",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(env!("CARGO_BIN_EXE_diagnose"), &args);
        let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        summary
    };
    let defaults = summary("lr-defaults", &[]);
    assert!(
        defaults.contains("| stage | lr | train loss |"),
        "no lr column in:\n{defaults}"
    );
    let expected = [
        ("baseline", "0.6"),
        ("kaiming", "0.2"),
        ("one-cycle", "1 (peak)"),
        ("small-batch-batchnorm", "0.4"),
        ("small-batch-batchnorm-eps0.1", "0.4"),
        ("small-batch-runningbatchnorm", "0.4"),
    ];
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|(s, l)| (s.to_string(), l.to_string()))
        .collect();
    assert_eq!(lr_cells(&defaults), want, "in:\n{defaults}");

    let overridden = summary("lr-override", &["--lr", "0.05"]);
    let cells = lr_cells(&overridden);
    assert_eq!(cells.len(), expected.len(), "in:\n{overridden}");
    for (stage, lr) in cells {
        let want = if stage == "one-cycle" {
            "0.05 (peak)"
        } else {
            "0.05"
        };
        assert_eq!(lr, want, "stage {stage} in:\n{overridden}");
    }
}

/// The cells of the summary row of `stage`.
fn summary_row(summary: &str, stage: &str) -> Vec<String> {
    summary
        .lines()
        .find(|l| l.starts_with(&format!("| {stage} |")))
        .unwrap_or_else(|| panic!("no row {stage} in:\n{summary}"))
        .split(" | ")
        .map(|c| {
            c.trim_matches(|ch: char| ch == '|' || ch.is_whitespace())
                .to_string()
        })
        .collect()
}

/// The README's first command, on the embedded data with its default protocol,
/// shows the lesson: the baseline's deepest activation layer is flagged dead by the
/// same figure the summary prints, and BatchNorm ends well above the baseline.
#[test]
fn diagnose_default_protocol_shows_the_lesson_on_the_embedded_subset() {
    let dir = temp_dir("lesson-default");
    run(
        env!("CARGO_BIN_EXE_diagnose"),
        &[
            "--subset",
            "--stages",
            "baseline,batchnorm",
            "--threads",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("batch size 256, 8 epoch(s): 152 training steps per stage"),
        "the summary does not say what was run:\n{summary}"
    );
    let base = summary_row(&summary, "baseline");
    let bn = summary_row(&summary, "batchnorm");
    let deepest: f64 = base[5].rsplit(" / ").next().unwrap().parse().unwrap();
    assert!(
        deepest > 0.9,
        "baseline's deepest layer {deepest} in:\n{summary}"
    );
    // The health report flags that layer (the deepest ReLU of the baseline, path 7).
    let health = std::fs::read_to_string(dir.join("baseline").join("health.md")).unwrap();
    assert!(
        health.contains("7 (ReLU): dead units."),
        "baseline's deepest ReLU not flagged:\n{health}"
    );
    assert!(
        summary.contains("and the health report flags it"),
        "{summary}"
    );
    let acc = |row: &[String]| row[4].parse::<f64>().unwrap();
    assert!(
        acc(&bn) > acc(&base) + 0.1,
        "batchnorm {} vs baseline {}:\n{summary}",
        acc(&bn),
        acc(&base)
    );
    // And BatchNorm's units are alive by the same rule.
    assert!(
        bn[5].split(" / ").all(|d| d.parse::<f64>().unwrap() < 0.9),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The small-batch stage in the lesson's setup (GeneralRelu net with an average-pool
/// head, SGD lr 0.4, batch 2), shortened to 500 steps: plain BatchNorm with eps 1e-5
/// ends below RunningBatchNorm, in accuracy and in training loss, and the summary's
/// sentence says so from those numbers.
#[test]
fn diagnose_small_batch_batchnorm_ends_below_runningbatchnorm() {
    let dir = temp_dir("small-batch-order");
    run(
        env!("CARGO_BIN_EXE_diagnose"),
        &[
            "--subset",
            "--stages",
            "small-batch",
            "--small-batches",
            "500",
            "--threads",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    let bn = summary_row(&summary, "small-batch-batchnorm");
    let rbn = summary_row(&summary, "small-batch-runningbatchnorm");
    let num = |row: &[String], i: usize| row[i].parse::<f64>().unwrap();
    assert!(
        num(&rbn, 4) > num(&bn, 4) + 0.1,
        "valid acc: runningbatchnorm {} vs batchnorm {}:\n{summary}",
        num(&rbn, 4),
        num(&bn, 4)
    );
    assert!(num(&rbn, 2) < num(&bn, 2), "train loss:\n{summary}");
    assert!(
        summary.contains("RunningBatchNorm beat plain BatchNorm by"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn diagnose_rejects_an_unknown_stage() {
    let out = Command::new(env!("CARGO_BIN_EXE_diagnose"))
        .args(["--subset", "--stages", "warp-drive"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown stage `warp-drive`"), "{stderr}");
}

#[test]
fn makemore_runs_on_names() {
    // The shipped list, always present in the repository.
    let words = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/names.txt");
    assert!(words.exists(), "{} is missing", words.display());
    let out_dir = temp_dir("makemore");
    let out = run(
        env!("CARGO_BIN_EXE_makemore"),
        &[
            "--words",
            words.to_str().unwrap(),
            "--steps",
            "40",
            "--threads",
            "2",
            "--scale-output",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("initial loss"), "{stdout}");
    assert!(stdout.contains("expected -ln(1/27) = 3.2958"), "{stdout}");
    assert!(stdout.contains("samples: "), "{stdout}");
    for fig in [
        "saturation_map",
        "activation_histograms",
        "update_data",
        "loss",
    ] {
        assert_valid_png(&out_dir.join(format!("{fig}.png")));
    }
    let _ = std::fs::remove_dir_all(&out_dir);
}

/// Without `--words`, makemore trains on the built-in names.txt (makemore's list).
#[test]
fn makemore_runs_without_a_word_list() {
    let out_dir = temp_dir("makemore-builtin");
    let out = run(
        env!("CARGO_BIN_EXE_makemore"),
        &[
            "--steps",
            "5",
            "--threads",
            "2",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("32033 words from the built-in names.txt"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn makemore_reports_a_missing_word_list() {
    let out = Command::new(env!("CARGO_BIN_EXE_makemore"))
        .args(["--words", "/nonexistent/words.txt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/words.txt"), "{stderr}");
}
