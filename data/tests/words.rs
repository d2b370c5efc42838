//! The makemore words data set: reading, vocabulary, context windows and the split.
//! Most checks use inline word lists; two read the lectures' names.txt, shipped in
//! `lessons/data/` (makemore's list, MIT licence: `lessons/data/NOTICE`).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use data::words::{ContextWindows, Vocab, WordList};
use data::DataError;
use tensor::Device;

/// `lessons/data/names.txt` in the repository, if present.
fn names_txt() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lessons/data/names.txt");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} not found", path.display());
        None
    }
}

fn inline(text: &str) -> WordList {
    WordList::from_text(text, Path::new("<inline>")).unwrap()
}

#[test]
fn names_txt_has_the_lectures_vocabulary_and_split() {
    let Some(path) = names_txt() else { return };
    let words = WordList::read(&path).unwrap();
    assert_eq!(words.len(), 32_033); // 32,032 newlines: no newline after the last
    assert_eq!(&words.words()[..3], ["emma", "olivia", "ava"]);
    let vocab = words.vocab();
    assert_eq!(vocab.len(), 27);
    assert_eq!(vocab.stoi('.'), Some(0));
    assert_eq!(vocab.stoi('a'), Some(1));
    assert_eq!(vocab.stoi('z'), Some(26));
    let split = words.split(42);
    // int(0.8 * 32033) = 25626, int(0.9 * 32033) = 28829, as in the lecture.
    assert_eq!(
        (split.train.len(), split.valid.len(), split.test.len()),
        (25_626, 3_203, 3_204)
    );
    let windows = ContextWindows::build(&split.train, &vocab, 3).unwrap();
    let letters: usize = split.train.iter().map(|w| w.len() + 1).sum();
    assert_eq!(windows.len(), letters);
}

#[test]
fn emma_with_block_three_matches_the_lecture() {
    let words = inline("emma\n");
    let vocab = words.vocab(); // . a e m
    let w = ContextWindows::build(words.words(), &vocab, 3).unwrap();
    let contexts: Vec<String> = w.x().chunks(3).map(|c| vocab.decode(c).unwrap()).collect();
    let targets = vocab.decode(w.y()).unwrap();
    assert_eq!(contexts, ["...", "..e", ".em", "emm", "mma"]);
    assert_eq!(targets, "emma.");
    let (x, y) = w.to_tensors(&Device::Cpu).unwrap();
    assert_eq!(x.dims(), &[5, 3]);
    assert_eq!(y.dims(), &[5]);
    assert_eq!(x.to_vec::<u32>().unwrap(), w.x());
    assert_eq!(y.to_vec::<u32>().unwrap(), w.y());
}

#[test]
fn each_word_starts_from_an_empty_context() {
    let words = inline("ab\nba\n");
    let vocab = words.vocab();
    let w = ContextWindows::build(words.words(), &vocab, 2).unwrap();
    let contexts: Vec<String> = w.x().chunks(2).map(|c| vocab.decode(c).unwrap()).collect();
    assert_eq!(contexts, ["..", ".a", "ab", "..", ".b", "ba"]);
    assert_eq!(vocab.decode(w.y()).unwrap(), "ab.ba.");
}

#[test]
fn reading_trims_lowercases_and_skips_blank_lines() {
    let words = inline("  Emma \r\n\n\t\nZOË\nmary-jane\n");
    assert_eq!(words.words(), ["emma", "zoë", "mary-jane"]);
    let vocab = words.vocab();
    assert_eq!(vocab.symbols()[..3], ['.', '-', 'a']);
    assert_eq!(*vocab.symbols().last().unwrap(), 'ë');
}

#[test]
fn split_is_80_10_10_partition_and_fixed_by_the_seed() {
    let text: String = (0..1000).map(|i| format!("w{i}\n")).collect();
    let words = inline(&text);
    let split = words.split(1);
    assert_eq!(
        (split.train.len(), split.valid.len(), split.test.len()),
        (800, 100, 100)
    );
    let all: HashSet<&String> = split
        .train
        .iter()
        .chain(&split.valid)
        .chain(&split.test)
        .collect();
    assert_eq!(all.len(), 1000);
    assert_eq!(words.split(1), split);
    assert_ne!(words.split(2), split);
    let in_file_order: Vec<String> = words.words()[..800].to_vec();
    assert_ne!(split.train, in_file_order, "the words are shuffled");
}

#[test]
fn tiny_lists_split_without_panicking() {
    let one = inline("solo\n").split(0);
    assert_eq!(
        (one.train.len(), one.valid.len(), one.test.len()),
        (0, 0, 1)
    );
    let seven = inline("a\nb\nc\nd\ne\nf\ng\n").split(0);
    assert_eq!(
        (seven.train.len(), seven.valid.len(), seven.test.len()),
        (5, 1, 1)
    );
}

#[test]
fn an_empty_word_list_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blank.txt");
    fs::write(&path, "\n  \n\t\n").unwrap();
    let err = WordList::read(&path).unwrap_err();
    assert!(matches!(err, DataError::EmptyWordList { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the word list is empty (no non-blank lines)",
            path.display()
        )
    );
    let empty = dir.path().join("empty.txt");
    fs::write(&empty, "").unwrap();
    assert!(matches!(
        WordList::read(&empty),
        Err(DataError::EmptyWordList { .. })
    ));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-names.txt");
    let err = WordList::read(&path).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }));
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_word_with_the_boundary_marker_is_rejected_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dots.txt");
    fs::write(&path, "emma\n\nj.r.r.\n").unwrap();
    let err = WordList::read(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:3: the word \"j.r.r.\" contains '.', which is reserved as the start/end marker",
            path.display()
        )
    );
}

#[test]
fn invalid_utf8_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latin1.txt");
    fs::write(&path, b"ren\xe9e\n").unwrap();
    let err = WordList::read(&path).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}:1: not UTF-8: invalid byte sequence at byte offset 3",
            path.display()
        )
    );
    fs::write(&path, b"emma\nava\n\xff\n").unwrap();
    let err = WordList::read(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:3: not UTF-8", path.display())),
        "{err}"
    );
}

#[test]
fn windows_reject_block_zero_and_unknown_characters() {
    let vocab = Vocab::from_words(&["abc"]);
    assert!(ContextWindows::build(&["abc"], &vocab, 0).is_err());
    let err = ContextWindows::build(&["abz"], &vocab, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("'z'"), "{err}");
    let none: [&str; 0] = [];
    assert!(ContextWindows::build(&none, &vocab, 3).unwrap().is_empty());
}
