//! `diagnose`'s `summary.md`: the table of runs and the notes under it. Every
//! sentence that states an outcome is built from the rows of the same run and says
//! so when the run contradicts the lesson; the fixed text only explains mechanisms.

use std::fmt::Write as _;

use diagnostics::format::{format_number, markdown_escape};

/// Two validation accuracies closer than this (2 percentage points, about two
/// standard errors of an accuracy near 80% on the 1,000 embedded test images) are
/// reported as a tie, not as one stage beating another.
pub const CLEAR_MARGIN: f64 = 0.02;

/// How one run of a stage ended. Every kind but `Failed` is a result the summary
/// reports; a `Failed` run makes the program's exit status 1.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Trained as asked and wrote its outputs; the text, if any, is its result (the
    /// LR finder's suggestion).
    Ok(Option<String>),
    /// A NaN or infinite loss stopped training; the outputs show what was recorded.
    Diverged(String),
    /// Ctrl-C or `SIGTERM` stopped training at a batch boundary; the outputs show
    /// what finished.
    Interrupted,
    /// Not started: the run was interrupted before it.
    NotRun,
    /// The run could not produce its outputs; the text says why.
    Failed(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ok(None) => f.write_str("ok"),
            Status::Ok(Some(result)) => write!(f, "ok: {result}"),
            Status::Diverged(why) => write!(f, "diverged: {why}"),
            Status::Interrupted => f.write_str("interrupted"),
            Status::NotRun => f.write_str("not run (interrupted before it)"),
            Status::Failed(why) => write!(f, "FAILED: {why}"),
        }
    }
}

/// One line of the summary table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The stage or variant, e.g. `"norms-batchnorm"`.
    pub stage: String,
    /// The learning rate as the table shows it (`"0.2"`, `"1 (peak)"`, `"sweep 1e-7..10"`).
    pub lr: String,
    /// Mean training loss of the last epoch.
    pub train_loss: Option<f64>,
    /// Validation loss of the last epoch.
    pub valid_loss: Option<f64>,
    /// Validation accuracy of the last epoch.
    pub valid_acc: Option<f64>,
    /// Dead fraction over the last quarter of training, per activation layer in
    /// forward order (the health report's "dead at end").
    pub dead: Vec<f64>,
    /// Whether the health report gave the deepest activation layer a dead-unit
    /// verdict.
    pub deepest_flagged_dead: bool,
    /// Number of verdicts of the health report.
    pub verdicts: usize,
    /// How the run ended.
    pub status: Status,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl Row {
    /// A row with no figures: a run that failed, was not run, or has only a status.
    pub fn with_status(stage: &str, status: Status) -> Self {
        Row {
            stage: stage.to_string(),
            lr: "-".to_string(),
            train_loss: None,
            valid_loss: None,
            valid_acc: None,
            dead: Vec::new(),
            deepest_flagged_dead: false,
            verdicts: 0,
            status,
            seconds: 0.0,
        }
    }

    /// The validation accuracy of a run that trained to the end.
    fn finished_acc(&self) -> Option<f64> {
        matches!(self.status, Status::Ok(_))
            .then_some(self.valid_acc)
            .flatten()
    }
}

/// What the header of the summary says besides the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Which data set was used (e.g. the embedded subset, with its sizes).
    pub data: String,
    /// The stages asked for, in order.
    pub stages: Vec<String>,
    /// What was run: batch size, epochs, steps, lr, seed (one paragraph).
    pub protocol: String,
    /// The dead rule of the activation layers, for the dead column's header.
    pub dead_rule: String,
}

/// Where the run stands when the summary is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Every stage asked for has run.
    Done,
    /// `n` stages have finished and the run goes on.
    Running(usize),
    /// A signal stopped the run.
    Interrupted,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The row of `stage`.
fn find<'a>(rows: &'a [Row], stage: &str) -> Option<&'a Row> {
    rows.iter().find(|r| r.stage == stage)
}

/// The whole `summary.md`.
pub fn summary_markdown(header: &Header, rows: &[Row], progress: Progress) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# diagnose: summary\n");
    let _ = writeln!(md, "{}\n", header.data);
    let _ = writeln!(md, "stages asked for: {}\n", header.stages.join(", "));
    match progress {
        Progress::Interrupted => {
            let _ = writeln!(
                md,
                "**Interrupted**: the run was stopped by a signal; the rows marked \
                 `interrupted` and `not run` say where.\n"
            );
        }
        Progress::Running(done) if done < header.stages.len() => {
            let _ = writeln!(
                md,
                "**Run in progress** when this was written: {done} of {} stages finished; \
                 still to run: {}. A run stopped from here on leaves this file as its \
                 record.\n",
                header.stages.len(),
                header.stages[done..].join(", ")
            );
        }
        _ => {}
    }
    let _ = writeln!(md, "{}\n", header.protocol);
    let _ = writeln!(
        md,
        "| stage | lr | train loss | valid loss | valid acc | dead fraction per activation layer ({}) | verdicts | status | time (s) |",
        header.dead_rule.replace('|', "\\|")
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|");
    let f = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format_number(v, digits));
    for r in rows {
        let dead = if r.dead.is_empty() {
            "-".to_string()
        } else {
            r.dead
                .iter()
                .map(|d| format!("{d:.2}"))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.stage,
            r.lr,
            f(r.train_loss, 5),
            f(r.valid_loss, 5),
            f(r.valid_acc, 4),
            dead,
            r.verdicts,
            markdown_escape(&r.status.to_string()),
            r.seconds
        );
    }
    md.push_str(&lesson_note(rows));
    md.push_str(&diverged_note(rows));
    md.push_str(&norms_note(rows));
    md.push_str(&small_batch_note(rows));
    md
}

/// What the init stages (1-5) showed, from their rows: the baseline's deepest
/// activation layer, and whether each fix beat the stage before it (train loss and
/// validation accuracy). Empty without at least two of those stages.
pub fn lesson_note(rows: &[Row]) -> String {
    const CHAIN: [&str; 5] = ["baseline", "kaiming", "general-relu", "lsuv", "batchnorm"];
    let present: Vec<&Row> = CHAIN.iter().filter_map(|s| find(rows, s)).collect();
    if present.len() < 2 {
        return String::new();
    }
    let mut md = String::from("\n## What the initialisation stages show\n\n");
    if let Some(base) = find(rows, "baseline") {
        match base.dead.last() {
            Some(&d) if base.deepest_flagged_dead => {
                let _ = writeln!(
                    md,
                    "- The baseline's deepest activation layer ended {} dead and the health \
                     report flags it: its units died, as the lesson shows.",
                    pct(d)
                );
            }
            Some(&d) => {
                let _ = writeln!(
                    md,
                    "- The baseline's deepest activation layer ended only {} dead, not \
                     flagged: this run does not show the lesson's dying units.",
                    pct(d)
                );
            }
            None => {}
        }
    }
    for pair in present.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let loss = match (a.train_loss, b.train_loss) {
            (Some(la), Some(lb)) if lb < la => format!(
                "train loss {} vs {} (lower)",
                format_number(lb, 4),
                format_number(la, 4)
            ),
            (Some(la), Some(lb)) => format!(
                "train loss {} vs {} (not lower: contradicts the lesson)",
                format_number(lb, 4),
                format_number(la, 4)
            ),
            _ => "no train loss to compare".to_string(),
        };
        let acc = match (a.finished_acc(), b.finished_acc()) {
            (Some(xa), Some(xb)) => {
                let verdict = if xb > xa + CLEAR_MARGIN {
                    "better"
                } else if xb + CLEAR_MARGIN < xa {
                    "worse: contradicts the lesson"
                } else {
                    "a tie within the margin"
                };
                format!("validation accuracy {} vs {} ({verdict})", pct(xb), pct(xa))
            }
            _ => "no validation accuracy to compare".to_string(),
        };
        let _ = writeln!(md, "- {} after {}: {loss}; {acc}.", b.stage, a.stage);
    }
    if let (Some(base), Some(bn)) = (
        find(rows, "baseline").and_then(Row::finished_acc),
        find(rows, "batchnorm").and_then(Row::finished_acc),
    ) {
        let _ = writeln!(
            md,
            "- BatchNorm vs the baseline: {} vs {} validation accuracy ({:+.1} points).",
            pct(bn),
            pct(base),
            100.0 * (bn - base)
        );
    }
    let _ = writeln!(
        md,
        "\nAccuracies closer than {:.0} points count as a tie.",
        100.0 * CLEAR_MARGIN
    );
    md
}

/// The stages that diverged, by name and learning rate, and what to try. Empty when
/// none did.
pub fn diverged_note(rows: &[Row]) -> String {
    let diverged: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, Status::Diverged(_)))
        .collect();
    if diverged.is_empty() {
        return String::new();
    }
    let list = diverged
        .iter()
        .map(|r| format!("{} (lr {})", r.stage, r.lr))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "
## Stages that diverged

{list}: {} hit a NaN or infinite loss, their activations growing by orders of
magnitude within a few batches (the health report and `activation_stds.png` name the
first layer). A learning rate this high without a warm-up was too much for these nets
in this run; rerun them with a lower `--lr` (or a warm-up, as the one-cycle stage
does) to watch them train.
",
        if diverged.len() == 1 { "it" } else { "they" }
    )
}

/// The normalisation comparison: the ranking measured, and InstanceNorm against
/// BatchNorm, with the lesson's explanation and whether this run agrees. Empty
/// without `norms-*` rows.
pub fn norms_note(rows: &[Row]) -> String {
    let norms: Vec<&Row> = rows
        .iter()
        .filter(|r| r.stage.starts_with("norms-"))
        .collect();
    if norms.is_empty() {
        return String::new();
    }
    let mut md = String::from("\n## Normalisations compared\n\n");
    let mut ranked: Vec<(&str, f64)> = norms
        .iter()
        .filter_map(|r| Some((r.stage.trim_start_matches("norms-"), r.finished_acc()?)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    if !ranked.is_empty() {
        let list = ranked
            .iter()
            .map(|(n, a)| format!("{n} {}", pct(*a)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(md, "Measured validation accuracy, best first: {list}.");
    }
    for r in &norms {
        if !matches!(r.status, Status::Ok(_)) {
            let _ = writeln!(
                md,
                "\n{} did not finish: {}.",
                r.stage,
                markdown_escape(&r.status.to_string())
            );
        }
    }
    md.push_str(
        "
InstanceNorm normalises every image's every channel on its own: it subtracts that
image's per-channel mean and divides by its per-channel std, so the overall brightness
and contrast of each feature map, which is much of what tells a sandal from a coat, is
removed before the classifier sees it. BatchNorm and RunningBatchNorm share
statistics across the batch, so the differences between images survive; LayerNorm and
GroupNorm normalise per image but over several channels together. The lesson
therefore expects InstanceNorm to classify far worse than BatchNorm.
",
    );
    let acc = |s: &str| find(rows, s).and_then(Row::finished_acc);
    if let (Some(inst), Some(bn)) = (acc("norms-instancenorm"), acc("norms-batchnorm")) {
        let gap = bn - inst;
        let _ = write!(
            md,
            "\nMeasured here: InstanceNorm {} vs BatchNorm {} ({:.1} points {}). ",
            pct(inst),
            pct(bn),
            100.0 * gap.abs(),
            if gap >= 0.0 { "below" } else { "above" }
        );
        if gap > 0.1 {
            md.push_str("This run agrees with the lesson.\n");
        } else {
            md.push_str(
                "InstanceNorm is not far below BatchNorm here, which contradicts the \
                 lesson. A likely reason is this net's head: the lesson's net ends in an \
                 average pool, which after InstanceNorm sees only each channel's \
                 normalised mean; this one ends in a conv that reads the 2x2 map \
                 position by position, so where a feature fires survives the \
                 normalisation.\n",
            );
        }
    }
    md
}

/// The small-batch comparison: the three variants' accuracies against the lesson's
/// expectation (plain BatchNorm with eps 1e-5 far below the other two at batch 2).
/// Empty without `small-batch-*` rows.
pub fn small_batch_note(rows: &[Row]) -> String {
    if !rows.iter().any(|r| r.stage.starts_with("small-batch")) {
        return String::new();
    }
    let mut md = String::from(
        "
## Small batches

At batch size 2 BatchNorm's batch statistics are the mean and variance of two images:
the variance can be close to zero, so dividing by sqrt(var + eps) with eps 1e-5 blows
activations up, and the statistics jump from batch to batch. A large eps (0.1) bounds
the division; RunningBatchNorm normalises with running (debiased) statistics during
training too. The lesson expects plain BatchNorm to fall far below both.
",
    );
    let acc = |s: &str| find(rows, s).and_then(Row::finished_acc);
    let (bn, eps, rbn) = (
        acc("small-batch-batchnorm"),
        acc("small-batch-batchnorm-eps0.1"),
        acc("small-batch-runningbatchnorm"),
    );
    let show = |a: Option<f64>| a.map_or("did not finish".to_string(), pct);
    let _ = writeln!(
        md,
        "\nMeasured here: BatchNorm (eps 1e-5) {}, BatchNorm eps 0.1 {}, RunningBatchNorm {}.",
        show(bn),
        show(eps),
        show(rbn)
    );
    let Some(bn) = bn else {
        return md;
    };
    for (name, other) in [("BatchNorm eps 0.1", eps), ("RunningBatchNorm", rbn)] {
        let Some(other) = other else { continue };
        let sentence = if other > bn + CLEAR_MARGIN {
            format!(
                "{name} beat plain BatchNorm by {:.1} points, as the lesson expects.",
                100.0 * (other - bn)
            )
        } else if other + CLEAR_MARGIN < bn {
            format!(
                "{name} ended {:.1} points below plain BatchNorm: this run contradicts \
                 the lesson.",
                100.0 * (bn - other)
            )
        } else {
            format!(
                "{name} and plain BatchNorm ended within {:.0} points of each other: \
                 this run does not show the lesson's gap.",
                100.0 * CLEAR_MARGIN
            )
        };
        let _ = writeln!(md, "{sentence}");
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stage: &str, acc: f64) -> Row {
        Row {
            train_loss: Some(1.0 - acc),
            valid_acc: Some(acc),
            status: Status::Ok(None),
            ..Row::with_status(stage, Status::Ok(None))
        }
    }

    fn small(bn: f64, eps: f64, rbn: f64) -> Vec<Row> {
        vec![
            row("small-batch-batchnorm", bn),
            row("small-batch-batchnorm-eps0.1", eps),
            row("small-batch-runningbatchnorm", rbn),
        ]
    }

    #[test]
    fn the_small_batch_sentences_follow_the_numbers() {
        let agrees = small_batch_note(&small(0.3, 0.8, 0.82));
        assert!(
            agrees.contains(
                "RunningBatchNorm beat plain BatchNorm by 52.0 points, as the lesson expects"
            ),
            "{agrees}"
        );
        assert!(!agrees.contains("contradicts"), "{agrees}");
        // RunningBatchNorm loses: the sentence changes and says so.
        let loses = small_batch_note(&small(0.7, 0.8, 0.4));
        assert!(
            loses.contains("RunningBatchNorm ended 30.0 points below plain BatchNorm: this run contradicts the lesson"),
            "{loses}"
        );
        assert!(!loses.contains("RunningBatchNorm beat"), "{loses}");
        assert!(loses.contains("BatchNorm eps 0.1 beat plain BatchNorm by 10.0 points"));
        let tie = small_batch_note(&small(0.8, 0.805, 0.79));
        assert_eq!(
            tie.matches("does not show the lesson's gap").count(),
            2,
            "{tie}"
        );
        assert!(
            tie.contains("Measured here: BatchNorm (eps 1e-5) 80.0%"),
            "{tie}"
        );
        // No fixed claim that RunningBatchNorm trains at batch size 2.
        assert!(!tie.contains("so it trains at batch size 2"), "{tie}");
    }

    #[test]
    fn the_norms_sentences_follow_the_numbers() {
        let lesson = vec![row("norms-batchnorm", 0.85), row("norms-instancenorm", 0.3)];
        let md = norms_note(&lesson);
        assert!(
            md.contains("55.0 points below). This run agrees with the lesson."),
            "{md}"
        );
        assert!(
            md.contains("best first: batchnorm 85.0%, instancenorm 30.0%"),
            "{md}"
        );
        let close = vec![row("norms-batchnorm", 0.85), row("norms-instancenorm", 0.8)];
        let md = norms_note(&close);
        assert!(md.contains("which contradicts the lesson"), "{md}");
        let above = vec![
            row("norms-batchnorm", 0.81),
            row("norms-instancenorm", 0.83),
        ];
        let md = norms_note(&above);
        assert!(md.contains("(2.0 points above)"), "{md}");
        assert!(!md.contains("agrees"), "{md}");
    }

    #[test]
    fn the_lesson_note_compares_each_stage_with_the_one_before() {
        let mut rows = vec![
            row("baseline", 0.45),
            row("kaiming", 0.78),
            row("batchnorm", 0.70),
        ];
        rows[0].dead = vec![0.9, 0.99];
        rows[0].deepest_flagged_dead = true;
        let md = lesson_note(&rows);
        assert!(
            md.contains("ended 99.0% dead and the health report flags it"),
            "{md}"
        );
        assert!(md.contains("kaiming after baseline: train loss 0.22 vs 0.55 (lower); validation accuracy 78.0% vs 45.0% (better)"), "{md}");
        assert!(md.contains("batchnorm after kaiming: train loss 0.3 vs 0.22 (not lower: contradicts the lesson); validation accuracy 70.0% vs 78.0% (worse: contradicts the lesson)"), "{md}");
        rows[0].deepest_flagged_dead = false;
        rows[0].dead = vec![0.5, 0.6];
        let md = lesson_note(&rows);
        assert!(
            md.contains("only 60.0% dead, not flagged: this run does not show"),
            "{md}"
        );
    }

    #[test]
    fn the_diverged_note_names_the_stages() {
        assert!(diverged_note(&[row("kaiming", 0.8)]).is_empty());
        let mut r = row("kaiming", 0.8);
        r.status = Status::Diverged("NaN loss at step 3".into());
        r.lr = "0.6".into();
        let md = diverged_note(&[r]);
        assert!(md.contains("kaiming (lr 0.6): it hit a NaN"), "{md}");
    }
}
