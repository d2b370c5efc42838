//! Fashion-MNIST: the embedded subset, source discovery and its precedence, and the
//! errors for missing or corrupt data.

use std::fs;
use std::path::{Path, PathBuf};

use data::fashion_mnist::subset::{self, class_balanced};
use data::fashion_mnist::{
    FashionMnist, RawFashionMnist, SearchPath, Source, Split, CLASS_NAMES, SYSTEM_DIR,
};
use data::idx::{write_idx, Compression, IdxArray};
use data::DataError;

/// Writes a tiny but valid data set into `dir`: `n_train` and `n_test` images whose
/// pixels all equal `fill`, labels cycling through the classes.
fn write_tiny_set(dir: &Path, n_train: usize, n_test: usize, fill: u8, gz: bool) {
    fs::create_dir_all(dir).unwrap();
    let (compression, suffix) = if gz {
        (Compression::Gzip, ".gz")
    } else {
        (Compression::None, "")
    };
    for (split, n) in [(Split::Train, n_train), (Split::Test, n_test)] {
        let images = IdxArray::new(vec![n, 28, 28], vec![fill; n * 784]).unwrap();
        let labels = IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect()).unwrap();
        let name = |stem: &str| dir.join(format!("{stem}{suffix}"));
        write_idx(name(split.images_file()), &images, compression).unwrap();
        write_idx(name(split.labels_file()), &labels, compression).unwrap();
    }
}

/// A search that looks only where the test says (no environment, no system install).
fn isolated() -> SearchPath {
    SearchPath {
        allow_embedded: true,
        ..SearchPath::default()
    }
}

#[test]
fn embedded_subset_has_the_documented_shape_balance_and_range() {
    let ds = FashionMnist::load_embedded().unwrap();
    assert_eq!(ds.source, Source::Embedded);
    let n_train = subset::TRAIN_PER_CLASS * 10;
    let n_test = subset::TEST_PER_CLASS * 10;
    assert_eq!(ds.train.images.dims(), &[n_train, 1, 28, 28]);
    assert_eq!(ds.train.labels.dims(), &[n_train]);
    assert_eq!(ds.test.images.dims(), &[n_test, 1, 28, 28]);
    assert_eq!(ds.test.labels.dims(), &[n_test]);
    assert_eq!((ds.train.len(), ds.test.len()), (n_train, n_test));

    for (split, per_class) in [
        (&ds.train, subset::TRAIN_PER_CLASS),
        (&ds.test, subset::TEST_PER_CLASS),
    ] {
        let mut counts = [0usize; 10];
        for l in split.labels.to_vec::<u32>().unwrap() {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [per_class; 10]);

        let pixels = split.images.to_vec::<f32>().unwrap();
        let (min, max) = pixels
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        assert_eq!((min, max), (0.0, 1.0));
        // Every value is a byte over 255.
        assert!(pixels
            .iter()
            .all(|&p| ((p * 255.0).round() / 255.0 - p).abs() < 1e-7));
        let mean = pixels.iter().map(|&p| f64::from(p)).sum::<f64>() / pixels.len() as f64;
        assert!((0.2..0.4).contains(&mean), "mean pixel {mean}");
    }

    let line = ds.description();
    assert_eq!(
        line,
        "Fashion-MNIST: embedded subset (5000 train, 1000 test); for the full set: \
         apt-get install dataset-fashion-mnist, or set FASHION_MNIST_DIR"
    );
}

#[test]
fn class_names_are_the_official_ten() {
    assert_eq!(CLASS_NAMES.len(), 10);
    assert_eq!(CLASS_NAMES[0], "T-shirt/top");
    assert_eq!(CLASS_NAMES[7], "Sneaker");
}

#[test]
fn explicit_directory_wins_over_every_other_step() {
    let tmp = tempfile::tempdir().unwrap();
    let (explicit, env, cache) = (
        tmp.path().join("explicit"),
        tmp.path().join("env"),
        tmp.path().join("cache"),
    );
    write_tiny_set(&explicit, 20, 10, 255, true);
    write_tiny_set(&env, 30, 10, 0, true);
    write_tiny_set(&cache, 40, 10, 0, true);
    let search = SearchPath {
        explicit: Some(explicit.clone()),
        env_dir: Some(env),
        system_dir: Some(PathBuf::from(SYSTEM_DIR)),
        cache_dir: Some(cache),
        allow_embedded: true,
    };
    let ds = FashionMnist::load_from(&search).unwrap();
    assert_eq!(ds.source, Source::Explicit(explicit.clone()));
    assert_eq!(ds.train.len(), 20);
    assert!(ds
        .train
        .images
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .all(|&p| p == 1.0));
    assert_eq!(
        ds.description(),
        format!(
            "Fashion-MNIST: partial set from {} (20 train, 10 test)",
            explicit.display()
        )
    );
}

#[test]
fn env_then_system_then_cache_then_embedded() {
    let tmp = tempfile::tempdir().unwrap();
    let (env, system, cache) = (
        tmp.path().join("env"),
        tmp.path().join("system"),
        tmp.path().join("cache"),
    );
    write_tiny_set(&env, 11, 10, 0, true);
    write_tiny_set(&system, 12, 10, 0, true);
    write_tiny_set(&cache, 13, 10, 0, false); // raw files are found too
    let mut search = SearchPath {
        explicit: None,
        env_dir: Some(env.clone()),
        system_dir: Some(system.clone()),
        cache_dir: Some(cache.clone()),
        allow_embedded: true,
    };
    assert_eq!(search.resolve().unwrap(), Source::EnvVar(env.clone()));
    fs::remove_dir_all(&env).unwrap(); // a missing directory just moves on
    assert_eq!(search.resolve().unwrap(), Source::System(system.clone()));
    fs::remove_file(system.join("t10k-labels-idx1-ubyte.gz")).unwrap(); // incomplete too
    assert_eq!(search.resolve().unwrap(), Source::UserCache(cache.clone()));
    let ds = FashionMnist::load_from(&search).unwrap();
    assert_eq!(ds.train.len(), 13);
    assert!(
        ds.description().contains("(user cache)"),
        "{}",
        ds.description()
    );
    search.cache_dir = Some(tmp.path().join("no-such-cache"));
    assert_eq!(search.resolve().unwrap(), Source::Embedded);
    search.allow_embedded = false;
    let err = search.resolve().unwrap_err().to_string();
    assert!(err.contains("no complete data set found"), "{err}");
    assert!(err.contains("no-such-cache"), "{err}");
}

#[test]
fn explicit_directory_that_does_not_exist_is_an_error_not_a_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("does-not-exist");
    let search = SearchPath {
        explicit: Some(missing.clone()),
        ..isolated()
    };
    let err = FashionMnist::load_from(&search).unwrap_err();
    assert!(matches!(err, DataError::MissingDataset { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.starts_with(&missing.display().to_string()), "{msg}");
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn explicit_directory_lacking_files_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_set(tmp.path(), 10, 10, 0, true);
    fs::remove_file(tmp.path().join("train-labels-idx1-ubyte.gz")).unwrap();
    let search = SearchPath {
        explicit: Some(tmp.path().to_path_buf()),
        ..isolated()
    };
    let msg = search.resolve().unwrap_err().to_string();
    assert!(msg.contains("lacks train-labels-idx1-ubyte[.gz]"), "{msg}");
    assert!(!msg.contains("t10k"), "{msg}");
}

#[test]
fn a_corrupt_file_in_a_found_directory_is_reported_not_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_set(tmp.path(), 10, 10, 0, true);
    let images = tmp.path().join("t10k-images-idx3-ubyte.gz");
    let bytes = fs::read(&images).unwrap();
    fs::write(&images, &bytes[..bytes.len() - 9]).unwrap();
    let search = SearchPath {
        env_dir: Some(tmp.path().to_path_buf()),
        ..isolated()
    };
    let err = FashionMnist::load_from(&search).unwrap_err().to_string();
    assert!(err.starts_with(&images.display().to_string()), "{err}");
}

#[test]
fn images_and_labels_that_disagree_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_set(tmp.path(), 10, 10, 0, true);
    let labels = tmp.path().join("train-labels-idx1-ubyte.gz");
    let eleven = IdxArray::new(vec![11], vec![0; 11]).unwrap();
    write_idx(&labels, &eleven, Compression::Gzip).unwrap();
    let err = FashionMnist::load(Some(tmp.path()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("11 labels for 10 images"), "{err}");
    assert!(err.starts_with(&labels.display().to_string()), "{err}");
}

/// The shipped subset is exactly what the documented selection makes from the full
/// set. Runs where the full set is installed (the Debian package), else says why not.
#[test]
fn embedded_subset_is_reproducible_from_the_full_set() {
    let search = SearchPath {
        system_dir: Some(PathBuf::from(SYSTEM_DIR)),
        ..SearchPath::default()
    };
    let Ok(source) = search.resolve() else {
        eprintln!("skipped: the full Fashion-MNIST is not installed at {SYSTEM_DIR}");
        return;
    };
    let full = RawFashionMnist::read(source).unwrap();
    assert_eq!((full.train.len(), full.test.len()), (60_000, 10_000));
    let embedded = RawFashionMnist::read(Source::Embedded).unwrap();
    for (split, full_split, shipped) in [
        (Split::Train, &full.train, &embedded.train),
        (Split::Test, &full.test, &embedded.test),
    ] {
        let made = class_balanced(full_split, subset::per_class(split)).unwrap();
        assert_eq!(made.images(), shipped.images(), "{split:?} images");
        assert_eq!(made.labels(), shipped.labels(), "{split:?} labels");
    }
}
