//! ParamScheduler applies schedules batch by batch at `pos = step / total_steps`.

mod common;

use common::blob_learner;
use train::callbacks::{ParamScheduler, Recorder};
use train::schedule::{one_cycle, Linear, Schedule};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + b.abs())
}

#[test]
fn one_cycle_sets_the_expected_lr_and_momentum_at_start_middle_and_end() {
    // 5 batches per epoch, 4 epochs: 20 steps; pct_start 0.25 puts the peak at step 5.
    let (max_lr, pct) = (0.4, 0.25);
    let mut learn = blob_learner(40, 8, 8, 0.01, 5)
        .with_callback(ParamScheduler::one_cycle(max_lr, pct))
        .with_callback(Recorder::new());
    learn.fit(4).unwrap();
    let sched = learn
        .callback::<ParamScheduler>()
        .unwrap()
        .history()
        .to_vec();
    assert_eq!(sched.len(), 20);
    assert_eq!(learn.total_steps, 20);

    // Start: max_lr / 25 and momentum 0.95.
    assert_eq!(sched[0].step, 0);
    assert!(close(sched[0].lr, max_lr / 25.0), "{:?}", sched[0]);
    assert!(close(sched[0].momentum.unwrap(), 0.95));
    // The peak, after pct_start of training: max_lr and momentum 0.85.
    assert!(close(sched[5].pos, 0.25));
    assert!(close(sched[5].lr, max_lr), "{:?}", sched[5]);
    assert!(close(sched[5].momentum.unwrap(), 0.85));
    // Middle of the whole run (pos 0.5): a third of the way down the cosine.
    let down = 0.25 / 0.75;
    let want =
        max_lr / 1e5 + (max_lr - max_lr / 1e5) * (1.0 + (std::f64::consts::PI * down).cos()) / 2.0;
    assert!(close(sched[10].lr, want), "{:?} vs {want}", sched[10]);
    // End: the last batch is at pos 19/20, close to max_lr / 1e5 and momentum 0.95.
    let (lr, mom) = one_cycle(max_lr, pct);
    assert!(close(sched[19].pos, 0.95));
    assert!(close(sched[19].lr, lr.value(0.95)));
    assert!(close(sched[19].momentum.unwrap(), mom.value(0.95)));
    assert!(sched[19].lr < 0.02 * max_lr);
    assert!(sched[19].momentum.unwrap() > 0.94);

    // The optimiser really used them: the recorder reads the lr at each step.
    let used = learn.callback::<Recorder>().unwrap().lrs();
    let set: Vec<f64> = sched.iter().map(|s| s.lr).collect();
    assert_eq!(used, set);
    for g in learn.optimizer.groups() {
        assert_eq!(g.hp.lr, sched[19].lr);
        assert_eq!(g.hp.momentum, sched[19].momentum.unwrap());
    }
}

#[test]
fn an_lr_only_schedule_leaves_momentum_alone_and_skips_validation() {
    let mut learn = blob_learner(24, 16, 8, 0.01, 6).with_callback(ParamScheduler::new(Linear {
        start: 0.3,
        end: 0.0,
    }));
    learn.fit(2).unwrap();
    let sched = learn.callback::<ParamScheduler>().unwrap().history();
    // 3 training batches per epoch; validation batches are not scheduled.
    let lrs: Vec<f64> = sched.iter().map(|s| s.lr).collect();
    let want: Vec<f64> = (0..6).map(|i| 0.3 * (1.0 - i as f64 / 6.0)).collect();
    assert_eq!(lrs.len(), 6);
    assert!(lrs.iter().zip(&want).all(|(a, b)| close(*a, *b)), "{lrs:?}");
    assert!(sched.iter().all(|s| s.momentum.is_none()));
    assert_eq!(learn.optimizer.groups()[0].hp.momentum, 0.9);
}
