//! The metrics in the report are the real loss and accuracy of the data, the table
//! prints as the run goes, and callbacks can add their own values to the report.

mod common;

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

use autograd::Var;
use common::{blob_learner, blobs};
use data::loader::DataLoader;
use train::callbacks::PrintMetrics;
use train::{Event, Interrupt, Learner, Phase};

#[test]
fn validation_metrics_match_a_direct_evaluation() {
    // 10 validation examples in batches of 4: sizes 4, 4, 2, so the mean must be
    // weighted by batch size to equal the loss over all 10 at once.
    let mut learn = blob_learner(64, 8, 8, 0.05, 2);
    let (vx, vy) = blobs(10, 8, 4, 77);
    learn.valid_dl = DataLoader::new(&vx, &vy, 4).unwrap();
    let report = learn.fit(2).unwrap();
    let valid = report.rows[1].valid.unwrap();
    assert_eq!((valid.batches, valid.examples), (3, 10));

    let _guard = autograd::no_grad();
    let logits = learn.model.forward(&Var::constant(vx)).unwrap();
    let loss = nn::loss::cross_entropy(&logits, &vy)
        .unwrap()
        .tensor()
        .item()
        .unwrap();
    let predicted = logits
        .tensor()
        .argmax(1, false)
        .unwrap()
        .to_vec::<u32>()
        .unwrap();
    let truth = vy.to_vec::<u32>().unwrap();
    let correct = predicted.iter().zip(&truth).filter(|(p, t)| p == t).count();
    assert!((valid.loss - loss).abs() < 1e-6, "{} vs {loss}", valid.loss);
    assert_eq!(valid.accuracy.unwrap(), correct as f64 / 10.0);
    assert_eq!(report, learn.report);
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_table_prints_a_line_per_phase_as_the_run_goes() {
    let out = Shared::default();
    let mut learn =
        blob_learner(32, 16, 8, 0.05, 1).with_callback(PrintMetrics::to_writer(out.clone()));
    let lines_at_after_train = Rc::new(RefCell::new(0));
    let (seen, buffer) = (lines_at_after_train.clone(), out.0.clone());
    learn.add_callback(
        move |event: Event, _: &mut Learner| -> Result<(), Interrupt> {
            if event == Event::BeforeValidate && *seen.borrow() == 0 {
                *seen.borrow_mut() = String::from_utf8_lossy(&buffer.borrow()).lines().count();
            }
            Ok(())
        },
    );
    let report = learn.fit(2).unwrap();
    let text = String::from_utf8(out.0.borrow().clone()).unwrap();
    // Printed while running: header and the train line before validation began.
    assert_eq!(*lines_at_after_train.borrow(), 2);
    assert_eq!(text, report.to_string());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].contains("epoch") && lines[0].contains("accuracy"));
    assert!(lines[1].trim_start().starts_with("0  train"));
    assert!(lines[4].trim_start().starts_with("1  valid"));
    let loss = report.rows[1].valid.unwrap().loss;
    assert!(lines[4].contains(&format!("{loss:.4}")), "{text}");
}

#[test]
fn callbacks_add_values_to_the_report() {
    let mut learn = blob_learner(32, 16, 8, 0.05, 1);
    learn.add_callback(
        |event: Event, learn: &mut Learner| -> Result<(), Interrupt> {
            match event {
                Event::BeforeFit => assert!(!learn.record_value("too early", 1.0)),
                Event::AfterEpoch => {
                    let lr = learn.optimizer.groups()[0].hp.lr;
                    let recorded = learn.record_value("lr", lr * (learn.epoch + 1) as f64);
                    assert!(recorded);
                }
                _ => {}
            }
            Ok(())
        },
    );
    let report = learn.fit(3).unwrap();
    assert_eq!(
        report.extra("lr"),
        vec![(0, 0.05), (1, 0.1), (2, 0.15000000000000002)]
    );
    assert!(report.extra("too early").is_empty());
    assert!(report.to_string().contains("lr"));
    assert_eq!(report.last(Phase::Train).unwrap().batches, 4);
}

#[test]
fn the_recorder_draws_the_loss_curve() {
    let mut learn =
        blob_learner(64, 16, 8, 0.05, 3).with_callback(train::callbacks::Recorder::new());
    learn.fit(2).unwrap();
    let recorder = learn.callback::<train::callbacks::Recorder>().unwrap();
    assert_eq!(recorder.losses().len(), 16);
    let dir = std::env::temp_dir().join(format!("train-recorder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("loss.png");
    recorder.plot().save_png(&path, 800, 500).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 800);
}
