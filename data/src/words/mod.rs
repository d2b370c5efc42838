//! The makemore data set: a list of words (names, in the lectures) from which a
//! character-level model learns to make more.
//!
//! [`WordList`] reads any newline-separated list; [`Vocab`] maps its characters to
//! indices with `.` (index 0) marking the start and end of a word; [`ContextWindows`]
//! turns words into the `(X, Y)` pairs of a fixed-context model (Karpathy's
//! `build_dataset`); [`WordList::split`] makes the seeded 80/10/10 split of the words.
//!
//! ```
//! use data::words::{ContextWindows, WordList};
//! use std::path::Path;
//!
//! let words = WordList::from_text("emma\nOlivia\n\n  ava \n", Path::new("<inline>"))?;
//! assert_eq!(words.words(), ["emma", "olivia", "ava"]); // trimmed, lowercased
//! let vocab = words.vocab();
//! assert_eq!(vocab.symbols(), ['.', 'a', 'e', 'i', 'l', 'm', 'o', 'v']);
//! let windows = ContextWindows::build(words.words(), &vocab, 3)?;
//! assert_eq!(windows.len(), 5 + 7 + 4); // one example per letter, plus the end marker
//! let (x, y) = windows.to_tensors(&tensor::Device::Cpu)?;
//! assert_eq!(x.dims(), &[16, 3]);
//! assert_eq!(y.dims(), &[16]);
//! # Ok::<(), data::DataError>(())
//! ```

mod context;
mod vocab;

pub use context::ContextWindows;
pub use vocab::{Vocab, BOUNDARY};

use std::fs;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::error::{DataError, Result};

/// A non-empty list of words: one per non-blank line, trimmed and lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordList {
    source: PathBuf,
    words: Vec<String>,
}

impl WordList {
    /// Reads a newline-separated word list (UTF-8). Blank lines are skipped; words are
    /// trimmed and lowercased. Any character may occur except `.`, which is reserved as
    /// the start/end marker.
    ///
    /// Errors, each naming the file: it cannot be read, it is not UTF-8 (the line and
    /// byte offset of the first bad sequence), it has no words, or a word contains `.`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| DataError::io(path, "read", e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let offset = e.utf8_error().valid_up_to();
            let before = &e.as_bytes()[..offset];
            DataError::NotUtf8 {
                path: path.to_path_buf(),
                line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
                offset,
            }
        })?;
        Self::from_text(&text, path)
    }

    /// Parses words from `text` as [`read`](WordList::read) does; `source` names the
    /// text in error messages (a path, or something like `<inline>`).
    pub fn from_text(text: &str, source: &Path) -> Result<Self> {
        let mut words = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let word = line.trim();
            if word.is_empty() {
                continue;
            }
            let word = word.to_lowercase();
            if word.contains(BOUNDARY) {
                return Err(DataError::ReservedChar {
                    path: source.to_path_buf(),
                    line: i + 1,
                    word,
                });
            }
            words.push(word);
        }
        if words.is_empty() {
            return Err(DataError::EmptyWordList {
                path: source.to_path_buf(),
            });
        }
        Ok(WordList {
            source: source.to_path_buf(),
            words,
        })
    }

    /// The words, in file order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Number of words (at least 1).
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always `false`: an empty list is rejected on construction.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Where the words came from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The vocabulary of these words: `.` plus their sorted distinct characters.
    pub fn vocab(&self) -> Vocab {
        Vocab::from_words(&self.words)
    }

    /// The seeded 80/10/10 split of the lectures: shuffle the words with a generator
    /// seeded by `seed`, then cut at `floor(0.8 n)` and `floor(0.9 n)`. The same seed
    /// gives the same split (with this crate's pinned `rand`; the order differs from
    /// Python's `random.shuffle`).
    ///
    /// ```
    /// use data::words::WordList;
    /// use std::path::Path;
    ///
    /// let text: String = (0..100).map(|i| format!("w{i}\n")).collect();
    /// let words = WordList::from_text(&text, Path::new("<inline>"))?;
    /// let split = words.split(7);
    /// assert_eq!((split.train.len(), split.valid.len(), split.test.len()), (80, 10, 10));
    /// assert_eq!(split, words.split(7));
    /// # Ok::<(), data::DataError>(())
    /// ```
    pub fn split(&self, seed: u64) -> WordSplit {
        let mut words = self.words.clone();
        words.shuffle(&mut StdRng::seed_from_u64(seed));
        let n = words.len();
        let (n1, n2) = (n * 8 / 10, n * 9 / 10);
        let test = words.split_off(n2);
        let valid = words.split_off(n1);
        WordSplit {
            train: words,
            valid,
            test,
        }
    }
}

/// The words of a [`WordList`] split into training, validation and test sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WordSplit {
    /// The first 80% of the shuffled words: fit the parameters on these.
    pub train: Vec<String>,
    /// The next 10%: tune hyper-parameters on these.
    pub valid: Vec<String>,
    /// The last 10%: report the final loss on these, rarely.
    pub test: Vec<String>,
}
