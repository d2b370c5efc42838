//! Mutation tests of the data crate's file readers: the IDX reader on raw and gzip
//! files, the Fashion-MNIST split reader and the word-list reader.
//!
//! Each reader starts from a valid file, applies one to three seeded random mutations
//! (bit flips, byte overwrites, truncation at a random offset, inserted, removed and
//! duplicated bytes, trailing garbage, header fields overwritten with extreme values
//! such as `0xFFFFFFFF`, and format-specific damage: gzip flags and trailers,
//! invalid UTF-8, NUL bytes, `.`, huge lines), writes the result to a file and reads
//! it with the real reader under `catch_unwind`. Every case must end in `Ok` or in an
//! error whose message contains the file's path, never in a panic, and the IDX reads
//! must stay within a heap bound set by their byte limit, whatever the header claims
//! (measured per thread by `common::Tracking`, so parallel tests do not interfere).
//!
//! `INSIGHT_MUTATION_CASES` sets the number of cases per reader (default 300, a few
//! seconds in all), e.g.
//! `INSIGHT_MUTATION_CASES=20000 cargo test --release -p data --test mutation`;
//! `INSIGHT_MUTATION_SEED` (a `u64`, default 2024) picks another sequence. A failure
//! prints the case's number, its mutations and the start of its bytes; the same seed
//! and case number reproduce it.

mod common;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use common::{gzip, gzip_with_zeros, idx_header, peak_heap};
use data::fashion_mnist::{RawFashionMnist, Source, Split, FULL_TRAIN_LEN};
use data::idx::{encode_idx, read_idx, read_idx_limited, Compression, IdxArray};
use data::words::{ContextWindows, WordList};
use data::DataError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

/// The payload limit of the bounded IDX reads.
const LIMIT: usize = 4096;

/// Heap a read may use beyond its payload: gzip decoder state and buffers, the
/// header, the error.
const READER_HEAP: usize = 256 << 10;

/// Mutated files are cut to this length, so that repeated growth stays cheap.
const MAX_FILE: usize = 1 << 20;

/// Writes `bytes` to a new file at `path`, removing any old one first (overwriting in
/// place makes ext4 flush on truncation, milliseconds per case).
fn replace_file(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
}

/// Cases per reader: `$INSIGHT_MUTATION_CASES`, else 300.
fn cases() -> u64 {
    std::env::var("INSIGHT_MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The base seed: `$INSIGHT_MUTATION_SEED`, else 2024.
fn base_seed() -> u64 {
    std::env::var("INSIGHT_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2024)
}

/// Header field values that break naive arithmetic.
const EXTREMES: [u32; 16] = [
    0,
    1,
    2,
    27,
    28,
    29,
    255,
    256,
    10_000,
    60_000,
    60_001,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFE,
    0xFFFF_FFFF,
    0x0100_0000,
];

/// Byte sequences that are not UTF-8 (a stray continuation byte, an overlong NUL, an
/// encoded surrogate, a code point past U+10FFFF, a sequence cut short, 0xFF).
const NOT_UTF8: [&[u8]; 6] = [
    b"\x80",
    b"\xC0\x80",
    b"\xED\xA0\x80",
    b"\xF4\x90\x80\x80",
    b"\xE2\x82",
    b"\xFF",
];

/// A random offset into `bytes`, or `0` for an empty one (`end` allows one past).
fn offset(rng: &mut StdRng, bytes: &[u8], end: bool) -> usize {
    let n = bytes.len() + usize::from(end);
    if n == 0 {
        0
    } else {
        rng.random_range(0..n)
    }
}

/// Applies one format-independent mutation; returns what it did.
fn mutate_bytes(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    match rng.random_range(0..7) {
        0 if !bytes.is_empty() => {
            let flips = rng.random_range(1..=8);
            for _ in 0..flips {
                let at = offset(rng, bytes, false);
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            format!("{flips} bit flips")
        }
        1 if !bytes.is_empty() => {
            let at = offset(rng, bytes, false);
            let value = match rng.random_range(0..3) {
                0 => 0x00,
                1 => 0xFF,
                _ => rng.random(),
            };
            bytes[at] = value;
            format!("byte {at} = {value:#04x}")
        }
        2 => {
            let at = offset(rng, bytes, false);
            bytes.truncate(at);
            format!("truncated to {at}")
        }
        3 => {
            let at = offset(rng, bytes, true);
            let n = rng.random_range(1..=16);
            let new: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(at..at, new);
            format!("{n} random bytes inserted at {at}")
        }
        4 if !bytes.is_empty() => {
            let at = offset(rng, bytes, false);
            let end = (at + rng.random_range(1..=16)).min(bytes.len());
            bytes.drain(at..end);
            format!("bytes {at}..{end} removed")
        }
        5 if !bytes.is_empty() => {
            let at = offset(rng, bytes, false);
            let end = (at + rng.random_range(1..=64)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            let to = offset(rng, bytes, true);
            bytes.splice(to..to, copy);
            format!("bytes {at}..{end} duplicated at {to}")
        }
        _ => {
            let n = rng.random_range(1..=32);
            bytes.extend((0..n).map(|_| rng.random::<u8>()));
            format!("{n} random bytes appended")
        }
    }
}

/// Applies one mutation aimed at an IDX header (or a generic one).
fn mutate_idx(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    match rng.random_range(0..4) {
        0 if bytes.len() >= 8 => {
            // Overwrite one of the dimension fields (those present in a rank-4 header).
            let field = rng.random_range(1..=4);
            let value = if rng.random_bool(0.8) {
                EXTREMES[rng.random_range(0..EXTREMES.len())]
            } else {
                rng.random()
            };
            let at = 4 * field;
            if bytes.len() < at + 4 {
                bytes.resize(at + 4, 0);
            }
            bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
            format!("dimension field {field} = {value:#x}")
        }
        1 if bytes.len() >= 4 => {
            let rank = rng.random_range(0..=6u8);
            bytes[3] = rank;
            format!("rank byte = {rank}")
        }
        2 if bytes.len() >= 4 => {
            let code = if rng.random_bool(0.5) {
                0x0D
            } else {
                rng.random()
            };
            bytes[2] = code;
            format!("type byte = {code:#04x}")
        }
        _ => mutate_bytes(rng, bytes),
    }
}

/// Applies one mutation aimed at a gzip container (or a generic one).
fn mutate_gzip(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    let n = bytes.len();
    match rng.random_range(0..5) {
        0 if n >= 4 => {
            // FLG: FTEXT, FHCRC, FEXTRA, FNAME, FCOMMENT and reserved bits.
            let flags = rng.random();
            bytes[3] = flags;
            format!("gzip flags = {flags:#04x}")
        }
        1 if n >= 8 => {
            let at = n - 8 + rng.random_range(0..8);
            bytes[at] = rng.random();
            format!("gzip trailer byte {at} overwritten")
        }
        2 => {
            let member = if rng.random_bool(0.5) {
                gzip(&idx_header(&[1]))
            } else {
                vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]
            };
            bytes.extend_from_slice(&member);
            "a second gzip member appended".to_string()
        }
        _ => mutate_bytes(rng, bytes),
    }
}

/// Applies one mutation aimed at a text word list (or a generic one).
fn mutate_words(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    let at = offset(rng, bytes, true);
    let (insert, what): (Vec<u8>, String) = match rng.random_range(0..9) {
        0 => {
            let bad = NOT_UTF8[rng.random_range(0..NOT_UTF8.len())];
            (bad.to_vec(), format!("{bad:x?} (not UTF-8)"))
        }
        1 => (vec![0], "a NUL byte".into()),
        2 => (b".".to_vec(), "'.'".into()),
        3 => {
            let ch = ['a', '\u{e9}', '\u{4e2d}', '\u{1F600}', '\t', ' '][rng.random_range(0..6)];
            let len = rng.random_range(1..=100_000);
            let line: String = std::iter::repeat_n(ch, len).collect();
            (line.into_bytes(), format!("a line of {len} {ch:?}"))
        }
        4 => (b"\r\n".to_vec(), "CRLF".into()),
        5 => ("\u{FEFF}".as_bytes().to_vec(), "a BOM".into()),
        6 => (b"\n  \n\t\n".to_vec(), "blank lines".into()),
        7 => {
            bytes.clear();
            return "emptied".into();
        }
        _ => return mutate_bytes(rng, bytes),
    };
    bytes.splice(at..at, insert);
    format!("{what} inserted at {at}")
}

/// Runs `cases()` mutations of `base` through `read`, which reads the file at the
/// given path and returns `Ok(())`, or an error message and, where the read is
/// bounded, whether the heap it used was within bounds. Panics at the end listing
/// every case that panicked, gave an error not naming the file, or broke a bound.
fn run_cases(
    reader: &str,
    stream: u64,
    base: &[u8],
    file_name: &str,
    mutate: fn(&mut StdRng, &mut Vec<u8>) -> String,
    encode: fn(Vec<u8>) -> Vec<u8>,
    read: &dyn Fn(&Path) -> Vec<Check>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file_name);
    let name = path.display().to_string();
    let seed = base_seed();
    let mut failures = Vec::new();
    let mut errors = 0;
    let total = cases();
    for case in 0..total {
        let mut rng = StdRng::seed_from_u64(seed ^ (stream << 48) ^ case);
        let mut bytes = base.to_vec();
        let steps = rng.random_range(1..=3);
        let what: Vec<String> = (0..steps).map(|_| mutate(&mut rng, &mut bytes)).collect();
        bytes.truncate(MAX_FILE);
        let bytes = encode(bytes);
        replace_file(&path, &bytes);
        let mut problems = Vec::new();
        match catch_unwind(AssertUnwindSafe(|| read(&path))) {
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                problems.push(format!("panicked: {msg}"));
            }
            Ok(checks) => {
                for check in checks {
                    if let Some(msg) = &check.error {
                        errors += 1;
                        if !msg.contains(&name) {
                            problems.push(format!("error does not name the file: {msg}"));
                        }
                    }
                    if let Some((heap, bound)) = check.heap {
                        if heap > bound {
                            problems.push(format!("allocated {heap} bytes, bound {bound}"));
                        }
                    }
                }
            }
        }
        if !problems.is_empty() {
            let head: Vec<String> = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
            failures.push(format!(
                "case {case} ({}; {} bytes, starting {}): {}",
                what.join(", "),
                bytes.len(),
                head.join(""),
                problems.join("; ")
            ));
        }
    }
    eprintln!("{reader}: {total} cases (seed {seed}), {errors} errors, all checked");
    assert!(
        failures.is_empty(),
        "{reader}: {} of {total} cases failed (seed {seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The outcome of one read of a mutated file.
struct Check {
    /// The error message, if the read failed.
    error: Option<String>,
    /// The heap the read used and its bound, where bounded.
    heap: Option<(usize, usize)>,
}

impl Check {
    fn of<T>(result: Result<T, DataError>, heap: Option<(usize, usize)>) -> (Option<T>, Self) {
        match result {
            Ok(v) => (Some(v), Check { error: None, heap }),
            Err(e) => (
                None,
                Check {
                    error: Some(e.to_string()),
                    heap,
                },
            ),
        }
    }
}

/// Uses everything a caller might of an array read from a file.
fn exercise(array: &IdxArray) {
    let (count, len) = (array.item_count(), array.item_len());
    for i in 0..=count.min(64) {
        assert_eq!(array.item(i).is_some(), i < count);
    }
    assert_eq!(count * len, array.data().len());
    let rebuilt = IdxArray::new(array.dims().to_vec(), array.data().to_vec()).unwrap();
    assert_eq!(&rebuilt, array);
    encode_idx(array, Compression::Gzip).unwrap();
}

/// `read_idx` (panics and names only) and `read_idx_limited` (also the heap bound).
fn read_idx_checks(path: &Path) -> Vec<Check> {
    let (array, plain) = Check::of(read_idx(path), None);
    if let Some(array) = array {
        exercise(&array);
    }
    let (result, heap) = peak_heap(|| read_idx_limited(path, LIMIT));
    let (array, bounded) = Check::of(result, Some((heap, LIMIT + READER_HEAP)));
    if let Some(array) = array {
        assert!(array.data().len() <= LIMIT);
        exercise(&array);
    }
    vec![plain, bounded]
}

/// A valid IDX array with varied bytes.
fn sample() -> Vec<u8> {
    let array = IdxArray::new(vec![3, 4, 5], (0..60).map(|i| (i * 37) as u8).collect()).unwrap();
    encode_idx(&array, Compression::None).unwrap()
}

#[test]
fn raw_idx_files() {
    run_cases(
        "raw IDX",
        1,
        &sample(),
        "images-idx3-ubyte",
        mutate_idx,
        |b| b,
        &read_idx_checks,
    );
}

#[test]
fn gzip_idx_files_with_a_damaged_container() {
    let base = encode_idx(
        &IdxArray::new(vec![3, 4, 5], (0..60).collect()).unwrap(),
        Compression::Gzip,
    )
    .unwrap();
    run_cases(
        "gzip container",
        2,
        &base,
        "images-idx3-ubyte.gz",
        mutate_gzip,
        |b| b,
        &read_idx_checks,
    );
}

#[test]
fn gzip_idx_files_with_a_damaged_payload() {
    run_cases(
        "gzip payload",
        3,
        &sample(),
        "images-idx3-ubyte.gz",
        mutate_idx,
        |b| gzip(&b),
        &read_idx_checks,
    );
}

#[test]
fn oversized_headers_cost_only_their_limit() {
    // Random headers of extreme dimensions before 4 MiB of zeros: whatever the header
    // claims, the bounded read allocates at most its limit, and a header over the limit
    // is refused as such.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crafted.gz");
    let mut failures = Vec::new();
    let seed = base_seed();
    for case in 0..cases() {
        let mut rng = StdRng::seed_from_u64(seed ^ (4 << 48) ^ case);
        let rank = rng.random_range(1..=4);
        let dims: Vec<u32> = (0..rank)
            .map(|_| EXTREMES[rng.random_range(0..EXTREMES.len())])
            .collect();
        replace_file(&path, &gzip_with_zeros(&idx_header(&dims), 4));
        let (result, heap) = peak_heap(|| read_idx_limited(&path, LIMIT));
        // The exact sizes (four u32 factors fit in a u128).
        let item: u128 = dims[1..].iter().map(|&d| u128::from(d)).product();
        let total = u128::from(dims[0]) * item;
        let addressable = isize::MAX as u128;
        let ok = match &result {
            Err(DataError::DimsOverflow { .. }) => item > addressable || total > addressable,
            Err(DataError::PayloadTooLarge { needed, .. }) => {
                total <= addressable && total > LIMIT as u128 && *needed as u128 == total
            }
            // Within the limit: 4 MiB of zeros follow, so the payload is too long
            // (or, for an empty array, everything is trailing).
            Err(DataError::TrailingData { expected, .. }) => {
                item <= addressable && total <= LIMIT as u128 && *expected as u128 == total
            }
            _ => false,
        };
        let named = result
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().starts_with(&path.display().to_string()));
        if !ok || !named || heap > LIMIT + READER_HEAP {
            failures.push(format!("dims {dims:?}: {result:?}, heap {heap}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fashion_mnist_splits() {
    // One of the four files of a tiny data set is mutated per case (raw or gzip); the
    // error must name that file, and memory is bounded by the full data set's size.
    let dir = tempfile::tempdir().unwrap();
    let n = 10;
    let mut files = Vec::new();
    for split in Split::ALL {
        let images = IdxArray::new(vec![n, 28, 28], (0..n * 784).map(|i| i as u8).collect());
        let labels = IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect());
        for (stem, array, gz) in [
            (split.images_file(), images.unwrap(), true),
            (split.labels_file(), labels.unwrap(), false),
        ] {
            let raw = encode_idx(&array, Compression::None).unwrap();
            let (name, bytes) = if gz {
                (format!("{stem}.gz"), gzip(&raw))
            } else {
                (stem.to_string(), raw.clone())
            };
            let path = dir.path().join(name);
            replace_file(&path, &bytes);
            files.push((path, raw, gz, bytes));
        }
    }
    let source = Source::Explicit(dir.path().to_path_buf());
    let bound = FULL_TRAIN_LEN * 785 + READER_HEAP;
    let seed = base_seed();
    let mut failures = Vec::new();
    for case in 0..cases() {
        let mut rng = StdRng::seed_from_u64(seed ^ (5 << 48) ^ case);
        let (path, raw, gz, original) = &files[rng.random_range(0..files.len())];
        let mut bytes = raw.clone();
        let what = mutate_idx(&mut rng, &mut bytes);
        let bytes = if *gz { gzip(&bytes) } else { bytes };
        replace_file(path, &bytes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            peak_heap(|| RawFashionMnist::read(source.clone()).map(|_| ()))
        }));
        replace_file(path, original);
        let problem = match outcome {
            Err(_) => Some("panicked".to_string()),
            Ok((Err(e), _)) if !e.to_string().contains(&path.display().to_string()) => {
                Some(format!("error does not name the file: {e}"))
            }
            Ok((_, heap)) if heap > bound => Some(format!("allocated {heap} bytes")),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "case {case} ({}: {what}): {problem}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn word_lists() {
    let base = b"emma\nolivia\nava\nisabella\nsophia\n\nmia\n  charlotte \nAmelia\n".to_vec();
    run_cases(
        "word list",
        6,
        &base,
        "names.txt",
        mutate_words,
        |b| b,
        &|path| {
            let (words, check) = Check::of(WordList::read(path), None);
            if let Some(words) = words {
                assert!(!words.is_empty());
                let vocab = words.vocab();
                for word in words.words() {
                    assert!(!word.contains('.'));
                    vocab.encode(word).unwrap();
                }
                let windows = ContextWindows::build(words.words(), &vocab, 3).unwrap();
                assert_eq!(windows.x().len(), 3 * windows.len());
                let split = words.split(0);
                assert_eq!(
                    split.train.len() + split.valid.len() + split.test.len(),
                    words.len()
                );
            }
            vec![check]
        },
    );
}
