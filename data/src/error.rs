//! The error type of the data crate.
//!
//! Every variant that comes from a file names that file, and says what was wrong in
//! terms a user can act on, e.g.
//! `/data/train-images-idx3-ubyte.gz: payload too short: the header promises 47040000
//! bytes, found 47039000 (1000 missing)`. Library code never panics on user input: bad
//! files, bad word lists and bad arguments come back as one of these.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

/// What can go wrong while reading, discovering or batching data.
#[derive(Debug, Error)]
pub enum DataError {
    /// The operating system refused a read, write, rename or directory listing.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being attempted ("read", "write", "rename into place", ..).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file starts like gzip (0x1f 0x8b) but does not decompress.
    #[error("{}: corrupt gzip stream: {source}", path.display())]
    Gzip {
        /// The file involved.
        path: PathBuf,
        /// The decoder's complaint.
        #[source]
        source: io::Error,
    },
    /// An IDX file ends before its header (magic and dimension sizes) is complete.
    #[error(
        "{}: truncated IDX header: {found} bytes, but the header needs {needed}",
        path.display()
    )]
    TruncatedHeader {
        /// The file involved.
        path: PathBuf,
        /// Bytes needed for the header.
        needed: usize,
        /// Bytes available.
        found: usize,
    },
    /// The first two bytes of an IDX file are not zero.
    #[error(
        "{}: not an IDX file: magic starts with {:#04x} {:#04x}, expected 0x00 0x00",
        path.display(),
        found[0],
        found[1]
    )]
    BadMagic {
        /// The file involved.
        path: PathBuf,
        /// The two bytes found.
        found: [u8; 2],
    },
    /// The IDX element type is not `0x08` (unsigned byte), the only one supported.
    #[error(
        "{}: unsupported IDX element type {code:#04x}; only 0x08 (unsigned byte) is supported",
        path.display()
    )]
    UnsupportedIdxType {
        /// The file involved.
        path: PathBuf,
        /// The type code found in the third magic byte.
        code: u8,
    },
    /// The IDX rank (fourth magic byte) is outside `1..=4`.
    #[error("{}: IDX rank {rank} is not supported (expected 1 to 4 dimensions)", path.display())]
    BadRank {
        /// The file involved.
        path: PathBuf,
        /// The rank found.
        rank: u8,
    },
    /// The dimension sizes multiply to more elements than fit in memory.
    #[error("{}: IDX dimensions {dims:?} describe more bytes than can be addressed", path.display())]
    DimsOverflow {
        /// The file involved.
        path: PathBuf,
        /// The dimension sizes from the header.
        dims: Vec<usize>,
    },
    /// An IDX header promises a payload larger than the reader's limit; nothing past
    /// the header was read.
    #[error(
        "{}: the IDX header's dimensions {dims:?} need {needed} payload bytes, more than \
         the limit of {limit} bytes; the payload was not read",
        path.display()
    )]
    PayloadTooLarge {
        /// The file involved.
        path: PathBuf,
        /// The dimension sizes from the header.
        dims: Vec<usize>,
        /// Payload bytes the dimensions promise.
        needed: usize,
        /// The largest payload the reader accepts.
        limit: usize,
    },
    /// The IDX payload is shorter than the header promises.
    #[error(
        "{}: payload too short: the header promises {expected} bytes, found {found} ({} missing)",
        path.display(),
        expected - found
    )]
    ShortPayload {
        /// The file involved.
        path: PathBuf,
        /// Payload bytes the dimensions promise.
        expected: usize,
        /// Payload bytes present.
        found: usize,
    },
    /// Bytes follow the IDX payload that the header does not account for.
    #[error(
        "{}: trailing data after the payload: the header promises {expected} bytes, found {found} ({} extra)",
        path.display(),
        found - expected
    )]
    TrailingData {
        /// The file involved.
        path: PathBuf,
        /// Payload bytes the dimensions promise.
        expected: usize,
        /// Payload bytes present.
        found: usize,
    },
    /// The IDX files of a data set are individually valid but do not fit together
    /// (wrong image size, image and label counts differ, a label out of range).
    #[error("{}: {detail}", path.display())]
    InvalidDataset {
        /// The file involved.
        path: PathBuf,
        /// What does not fit.
        detail: String,
    },
    /// A data directory given explicitly does not exist or lacks some of the files.
    #[error("{}: {detail}", path.display())]
    MissingDataset {
        /// The directory involved.
        path: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// A text file (a word list) is not valid UTF-8.
    #[error(
        "{}:{line}: not UTF-8: invalid byte sequence at byte offset {offset}",
        path.display()
    )]
    NotUtf8 {
        /// The file involved.
        path: PathBuf,
        /// One-based line number of the first invalid sequence.
        line: usize,
        /// Byte offset of the first invalid sequence from the start of the file.
        offset: usize,
    },
    /// A word list has no words after trimming and skipping empty lines.
    #[error("{}: the word list is empty (no non-blank lines)", path.display())]
    EmptyWordList {
        /// The file involved.
        path: PathBuf,
    },
    /// A word contains the boundary marker `.`, which the vocabulary reserves for
    /// "start/end of word".
    #[error(
        "{}:{line}: the word {word:?} contains '.', which is reserved as the start/end marker",
        path.display()
    )]
    ReservedChar {
        /// The file involved.
        path: PathBuf,
        /// One-based line number.
        line: usize,
        /// The offending word (after trimming and lowercasing).
        word: String,
    },
    /// A character to encode is not in the vocabulary.
    #[error("encode: character {ch:?} is not in the vocabulary of {vocab_size} symbols")]
    UnknownChar {
        /// The character.
        ch: char,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// An index to decode is not below the vocabulary size.
    #[error("decode: index {index} is out of range for a vocabulary of {vocab_size} symbols")]
    UnknownIndex {
        /// The index.
        index: u32,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// A caller passed an argument that cannot work (a zero batch size, mismatched
    /// tensors, a zero standard deviation, ..).
    #[error("{op}: {detail}")]
    InvalidArgument {
        /// The function that rejected it.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A tensor operation failed (e.g. building a batch tensor on an unavailable
    /// device).
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

impl DataError {
    /// Shorthand for an [`InvalidArgument`](DataError::InvalidArgument) error.
    pub(crate) fn invalid(op: &'static str, detail: impl Into<String>) -> Self {
        DataError::InvalidArgument {
            op,
            detail: detail.into(),
        }
    }

    /// Shorthand for an [`Io`](DataError::Io) error.
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
