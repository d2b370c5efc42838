//! The character vocabulary of a word list.

use std::collections::{BTreeSet, HashMap};

use crate::error::{DataError, Result};

/// The start/end-of-word marker, always index 0 of a [`Vocab`].
pub const BOUNDARY: char = '.';

/// A character vocabulary: index 0 is [`BOUNDARY`] (`.`), then the distinct characters
/// of the words in sorted (Unicode scalar) order, as in the lectures' `stoi`/`itos`.
/// For lowercase English names that is 27 symbols: `.` and `a` to `z`.
///
/// ```
/// use data::words::Vocab;
///
/// let vocab = Vocab::from_words(&["emma", "bob"]);
/// assert_eq!(vocab.symbols(), ['.', 'a', 'b', 'e', 'm', 'o']);
/// assert_eq!(vocab.encode("abe")?, vec![1, 2, 3]);
/// assert_eq!(vocab.decode(&[3, 4, 4, 1, 0])?, "emma.");
/// assert!(vocab.encode("z").is_err());
/// # Ok::<(), data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    itos: Vec<char>,
    stoi: HashMap<char, u32>,
}

impl Vocab {
    /// The vocabulary of `words`: [`BOUNDARY`] plus their sorted distinct characters.
    pub fn from_words<S: AsRef<str>>(words: &[S]) -> Self {
        let distinct: BTreeSet<char> = words
            .iter()
            .flat_map(|w| w.as_ref().chars())
            .filter(|&c| c != BOUNDARY)
            .collect();
        let itos: Vec<char> = std::iter::once(BOUNDARY).chain(distinct).collect();
        let stoi = itos.iter().zip(0u32..).map(|(&c, i)| (c, i)).collect();
        Vocab { itos, stoi }
    }

    /// Number of symbols, the boundary marker included.
    pub fn len(&self) -> usize {
        self.itos.len()
    }

    /// Always `false`: the boundary marker is always present.
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }

    /// The symbols in index order (`itos` as a slice).
    pub fn symbols(&self) -> &[char] {
        &self.itos
    }

    /// The index of `c`, if it is in the vocabulary.
    pub fn stoi(&self, c: char) -> Option<u32> {
        self.stoi.get(&c).copied()
    }

    /// The symbol at index `i`, if in range.
    pub fn itos(&self, i: u32) -> Option<char> {
        self.itos.get(i as usize).copied()
    }

    /// The indices of the characters of `text`; an error names the first character
    /// not in the vocabulary.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.chars()
            .map(|ch| {
                self.stoi(ch).ok_or(DataError::UnknownChar {
                    ch,
                    vocab_size: self.len(),
                })
            })
            .collect()
    }

    /// The text of `ids`; an error names the first index out of range.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        ids.iter()
            .map(|&index| {
                self.itos(index).ok_or(DataError::UnknownIndex {
                    index,
                    vocab_size: self.len(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_letters_are_symbols_too_and_sort_by_code_point() {
        let vocab = Vocab::from_words(&["zoë", "a-b"]);
        assert_eq!(vocab.symbols(), ['.', '-', 'a', 'b', 'o', 'z', 'ë']);
        assert_eq!(
            vocab.decode(&vocab.encode("zoë-a").unwrap()).unwrap(),
            "zoë-a"
        );
    }

    #[test]
    fn errors_name_the_symbol_and_the_vocabulary_size() {
        let vocab = Vocab::from_words(&["ab"]);
        let err = vocab.encode("abc").unwrap_err().to_string();
        assert_eq!(
            err,
            "encode: character 'c' is not in the vocabulary of 3 symbols"
        );
        let err = vocab.decode(&[0, 3]).unwrap_err().to_string();
        assert_eq!(
            err,
            "decode: index 3 is out of range for a vocabulary of 3 symbols"
        );
    }
}
