//! Fixed-size context windows: the `(X, Y)` examples of a character-level model that
//! predicts the next character from the previous `block_size` ones.

use tensor::{Device, Tensor};

use super::vocab::Vocab;
use crate::error::{DataError, Result};

/// Training examples for next-character prediction: for every character of every word
/// (and for the end marker after it), the `block_size` preceding symbol indices and
/// the index to predict. Contexts are padded on the left with the boundary `.` (index
/// 0), exactly like the lectures' `build_dataset`:
///
/// ```text
/// "emma", block 3:   ... -> e   ..e -> m   .em -> m   emm -> a   mma -> .
/// ```
///
/// ```
/// use data::words::{ContextWindows, Vocab};
///
/// let vocab = Vocab::from_words(&["emma"]); // . a e m
/// let w = ContextWindows::build(&["emma"], &vocab, 3)?;
/// assert_eq!(w.x(), [0, 0, 0,  0, 0, 2,  0, 2, 3,  2, 3, 3,  3, 3, 1]);
/// assert_eq!(w.y(), [2, 3, 3, 1, 0]);
/// # Ok::<(), data::DataError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextWindows {
    block_size: usize,
    x: Vec<u32>,
    y: Vec<u32>,
}

impl ContextWindows {
    /// Builds the windows of `words` under `vocab`. Errors if `block_size` is 0 or a
    /// word has a character outside the vocabulary (build the vocabulary from the
    /// whole list, before splitting, so every split shares it).
    pub fn build<S: AsRef<str>>(words: &[S], vocab: &Vocab, block_size: usize) -> Result<Self> {
        if block_size == 0 {
            return Err(DataError::invalid(
                "ContextWindows::build",
                "block size must be at least 1",
            ));
        }
        let examples: usize = words.iter().map(|w| w.as_ref().chars().count() + 1).sum();
        let mut x = Vec::with_capacity(examples * block_size);
        let mut y = Vec::with_capacity(examples);
        let mut context = vec![0u32; block_size];
        for word in words {
            context.fill(0);
            let ids = vocab.encode(word.as_ref())?;
            for ix in ids.into_iter().chain(std::iter::once(0)) {
                x.extend_from_slice(&context);
                y.push(ix);
                context.rotate_left(1);
                context[block_size - 1] = ix;
            }
        }
        Ok(ContextWindows { block_size, x, y })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no examples (only for an empty slice of words).
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// The context length.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// The contexts, row-major `[len, block_size]`.
    pub fn x(&self) -> &[u32] {
        &self.x
    }

    /// The targets, `[len]`.
    pub fn y(&self) -> &[u32] {
        &self.y
    }

    /// The examples as tensors on `device`: `X` is `u32 [N, block_size]` and `Y` is
    /// `u32 [N]`, ready for an embedding lookup and a cross-entropy target.
    pub fn to_tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        let n = self.len();
        Ok((
            Tensor::from_slice(&self.x, [n, self.block_size], device)?,
            Tensor::from_slice(&self.y, [n], device)?,
        ))
    }
}
