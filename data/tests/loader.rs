//! The DataLoader: coverage, drop_last, seeded order, transforms, and Normalize on the
//! real (embedded) training set.

use std::collections::HashSet;

use data::fashion_mnist::FashionMnist;
use data::loader::{DataLoader, Flatten, Normalize};
use data::DataError;
use proptest::prelude::*;
use tensor::{Device, Tensor};

/// `n` examples: x row i is `[i, i + 0.5]` (f32), y is `i` (u32), so every batch says
/// which examples it holds.
fn indexed(n: usize) -> (Tensor, Tensor) {
    let x: Vec<f32> = (0..n).flat_map(|i| [i as f32, i as f32 + 0.5]).collect();
    let y: Vec<u32> = (0..n as u32).collect();
    (
        Tensor::from_vec(x, [n, 2], &Device::Cpu).unwrap(),
        Tensor::from_vec(y, [n], &Device::Cpu).unwrap(),
    )
}

/// The example indices of every batch of `epoch`, checking x and y stay paired.
fn epoch_ids(loader: &DataLoader, epoch: u64) -> Vec<Vec<u32>> {
    loader
        .epoch(epoch)
        .map(|batch| {
            let (x, y) = batch.unwrap();
            let ids = y.to_vec::<u32>().unwrap();
            let xs = x.to_vec::<f32>().unwrap();
            for (row, &id) in xs.chunks(2).zip(&ids) {
                assert_eq!(row, [id as f32, id as f32 + 0.5]);
            }
            ids
        })
        .collect()
}

#[test]
fn every_example_exactly_once_per_epoch() {
    let (x, y) = indexed(103);
    for loader in [
        DataLoader::new(&x, &y, 10).unwrap(),
        DataLoader::new(&x, &y, 10).unwrap().shuffle(3),
    ] {
        assert_eq!(loader.num_batches(), 11);
        for epoch in 0..3 {
            let batches = epoch_ids(&loader, epoch);
            assert_eq!(batches.len(), 11);
            assert!(batches[..10].iter().all(|b| b.len() == 10));
            assert_eq!(batches[10].len(), 3);
            let mut all: Vec<u32> = batches.concat();
            all.sort_unstable();
            assert_eq!(all, (0..103).collect::<Vec<u32>>());
        }
    }
}

#[test]
fn unshuffled_order_is_the_natural_order() {
    let (x, y) = indexed(7);
    let loader = DataLoader::new(&x, &y, 3).unwrap();
    assert_eq!(
        epoch_ids(&loader, 5),
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]
    );
}

#[test]
fn drop_last_drops_only_the_short_batch() {
    let (x, y) = indexed(103);
    let loader = DataLoader::new(&x, &y, 10)
        .unwrap()
        .shuffle(1)
        .drop_last(true);
    assert_eq!(loader.num_batches(), 10);
    let batches = epoch_ids(&loader, 0);
    assert_eq!(batches.len(), 10);
    assert!(batches.iter().all(|b| b.len() == 10));
    let distinct: HashSet<u32> = batches.concat().into_iter().collect();
    assert_eq!(distinct.len(), 100);

    // Nothing to drop when the batch size divides n.
    let (x, y) = indexed(100);
    let exact = DataLoader::new(&x, &y, 10).unwrap().drop_last(true);
    assert_eq!(exact.num_batches(), 10);
    // A batch larger than the data set leaves no full batch.
    let tiny = DataLoader::new(&x, &y, 1000).unwrap().drop_last(true);
    assert_eq!(tiny.num_batches(), 0);
    assert_eq!(tiny.epoch(0).count(), 0);
}

#[test]
fn same_seed_same_batches_and_different_epochs_or_seeds_differ() {
    let (x, y) = indexed(200);
    let a = DataLoader::new(&x, &y, 16).unwrap().shuffle(42);
    let b = DataLoader::new(&x, &y, 16).unwrap().shuffle(42);
    let c = DataLoader::new(&x, &y, 16).unwrap().shuffle(43);
    for epoch in 0..3 {
        assert_eq!(epoch_ids(&a, epoch), epoch_ids(&b, epoch));
        assert_eq!(epoch_ids(&a, epoch), epoch_ids(&a, epoch), "replayable");
    }
    assert_ne!(epoch_ids(&a, 0), epoch_ids(&a, 1));
    assert_ne!(epoch_ids(&a, 0), epoch_ids(&c, 0));
    let natural: Vec<u32> = (0..200).collect();
    assert_ne!(epoch_ids(&a, 0).concat(), natural, "shuffling shuffles");
}

#[test]
fn batches_report_their_count_up_front() {
    let (x, y) = indexed(50);
    let loader = DataLoader::new(&x, &y, 8).unwrap();
    let mut it = loader.epoch(0);
    assert_eq!(it.len(), 7);
    it.next();
    assert_eq!(it.len(), 6);
}

#[test]
fn bad_arguments_are_errors() {
    let (x, y) = indexed(10);
    let err = DataLoader::new(&x, &y, 0).unwrap_err().to_string();
    assert!(err.contains("batch size must be at least 1"), "{err}");
    let (_, y9) = indexed(9);
    let err = DataLoader::new(&x, &y9, 4).unwrap_err().to_string();
    assert!(err.contains("x has 10 examples but y has 9"), "{err}");
    let scalar = Tensor::scalar(1.0f32);
    assert!(DataLoader::new(&scalar, &y, 4).is_err());
}

#[test]
fn transforms_run_in_order_and_their_errors_surface() {
    let (x, y) = indexed(4);
    let loader = DataLoader::new(&x, &y, 4)
        .unwrap()
        .transform(|x: Tensor, y: Tensor| Ok((x.add_scalar(1.0)?, y)))
        .transform(|x: Tensor, y: Tensor| Ok((x.mul_scalar(10.0)?, y)));
    let (xb, _) = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(xb.to_vec::<f32>().unwrap()[..2], [10.0, 15.0]);

    let failing = DataLoader::new(&x, &y, 2).unwrap().transform(
        |_: Tensor, _: Tensor| -> data::Result<(Tensor, Tensor)> {
            Err(DataError::InvalidArgument {
                op: "test transform",
                detail: "always fails".into(),
            })
        },
    );
    let results: Vec<_> = failing.epoch(0).collect();
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.is_err()));
}

#[test]
fn flatten_gives_mlp_rows() {
    let ds = FashionMnist::load_embedded().unwrap();
    let loader = DataLoader::new(&ds.train.images, &ds.train.labels, 64)
        .unwrap()
        .transform(Flatten);
    let (xb, yb) = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!(xb.dims(), &[64, 784]);
    assert_eq!(yb.dims(), &[64]);
}

#[test]
fn normalize_fit_on_the_train_set_gives_zero_mean_unit_std() {
    let ds = FashionMnist::load_embedded().unwrap();
    let norm = Normalize::fit(&ds.train.images).unwrap();
    // Fashion-MNIST's pixel statistics (the full set: mean 0.286, std 0.353).
    assert!((0.25..0.33).contains(&norm.mean), "{norm:?}");
    assert!((0.32..0.38).contains(&norm.std), "{norm:?}");

    // Over one epoch of normalised batches the inputs have mean 0 and std 1.
    let loader = DataLoader::new(&ds.train.images, &ds.train.labels, 1024)
        .unwrap()
        .shuffle(0)
        .transform(norm);
    let (mut n, mut sum, mut sum_sq) = (0usize, 0.0f64, 0.0f64);
    for batch in loader.epoch(0) {
        let (xb, _) = batch.unwrap();
        for v in xb.to_vec::<f32>().unwrap() {
            let v = f64::from(v);
            n += 1;
            sum += v;
            sum_sq += v * v;
        }
    }
    assert_eq!(n, 5000 * 784);
    let mean = sum / n as f64;
    let std = (sum_sq / n as f64 - mean * mean).sqrt(); // fine in f64 at mean ~ 0
    assert!(mean.abs() < 1e-4, "mean {mean}");
    assert!((std - 1.0).abs() < 1e-3, "std {std}");

    // The same statistics normalise the test set to roughly, not exactly, 0 and 1.
    let test = norm
        .normalize(&ds.test.images)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let test_mean = test.iter().map(|&v| f64::from(v)).sum::<f64>() / test.len() as f64;
    assert!(test_mean.abs() < 0.1, "test mean {test_mean}");
}

#[test]
fn normalize_fit_rejects_integer_and_constant_inputs() {
    let labels = Tensor::from_vec(vec![1u32, 2, 3], [3], &Device::Cpu).unwrap();
    let err = Normalize::fit(&labels).unwrap_err().to_string();
    assert!(err.contains("u32"), "{err}");
    let constant = Tensor::from_vec(vec![0.5f32; 10], [10], &Device::Cpu).unwrap();
    let err = Normalize::fit(&constant).unwrap_err().to_string();
    assert!(err.contains("cannot normalise"), "{err}");
    let one = Tensor::from_vec(vec![0.5f32], [1], &Device::Cpu).unwrap();
    assert!(Normalize::fit(&one).is_err());
}

#[test]
fn loader_works_on_u32_inputs_like_context_windows() {
    let x = Tensor::from_vec((0..30u32).collect(), [10, 3], &Device::Cpu).unwrap();
    let y = Tensor::from_vec((0..10u32).collect(), [10], &Device::Cpu).unwrap();
    let loader = DataLoader::new(&x, &y, 4).unwrap().shuffle(9);
    for batch in loader.epoch(0) {
        let (xb, yb) = batch.unwrap();
        for (row, id) in xb
            .to_vec::<u32>()
            .unwrap()
            .chunks(3)
            .zip(yb.to_vec::<u32>().unwrap())
        {
            assert_eq!(row, [3 * id, 3 * id + 1, 3 * id + 2]);
        }
    }
}

#[test]
fn batches_on_an_unavailable_device_are_errors_not_panics() {
    let (x, y) = indexed(4);
    let loader = DataLoader::new(&x, &y, 2)
        .unwrap()
        .on_device(Device::Cuda(99));
    for batch in loader.epoch(0) {
        // Without a CUDA build (or without GPU 99) the tensor crate refuses.
        assert!(batch.is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_configuration_partitions_the_data(
        n in 1usize..200,
        batch in 1usize..64,
        seed in proptest::option::of(any::<u64>()),
        drop_last in any::<bool>(),
        epoch in 0u64..5,
    ) {
        let (x, y) = indexed(n);
        let mut loader = DataLoader::new(&x, &y, batch).unwrap().drop_last(drop_last);
        if let Some(seed) = seed {
            loader = loader.shuffle(seed);
        }
        let batches = epoch_ids(&loader, epoch);
        prop_assert_eq!(batches.len(), loader.num_batches());
        let seen: Vec<u32> = batches.concat();
        let distinct: HashSet<u32> = seen.iter().copied().collect();
        prop_assert_eq!(distinct.len(), seen.len());
        let expected = if drop_last { n / batch * batch } else { n };
        prop_assert_eq!(seen.len(), expected);
    }
}

#[test]
fn normalize_in_place_on_fresh_batches_matches_the_out_of_place_path() {
    use data::loader::Transform;
    let x = Tensor::from_vec(vec![0.0f32, 0.25, 0.5, 1.0], [2, 2], &Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0u32, 1], [2], &Device::Cpu).unwrap();
    let norm = Normalize::new(0.25, 0.5).unwrap();
    let (out, _) = norm.apply(x.clone(), y.clone()).unwrap();
    assert_eq!(
        x.to_vec::<f32>().unwrap(),
        [0.0, 0.25, 0.5, 1.0],
        "apply copies"
    );
    let expected = [-0.5f32, 0.0, 0.5, 1.5];
    for (a, b) in out.to_vec::<f32>().unwrap().iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let fresh = Tensor::from_vec(vec![0.0f32, 0.25, 0.5, 1.0], [2, 2], &Device::Cpu).unwrap();
    let (in_place, _) = norm.apply_to_fresh(fresh, y).unwrap();
    assert_eq!(
        in_place.to_vec::<f32>().unwrap(),
        out.to_vec::<f32>().unwrap()
    );
}
