//! Reading and writing IDX files, the format of MNIST and Fashion-MNIST.
//!
//! An IDX file is a 4-byte magic number, one big-endian `u32` per dimension, and then
//! the elements in row-major order:
//!
//! ```text
//! 0x00 0x00 <type> <rank>   dim_0 (u32 BE) .. dim_{rank-1} (u32 BE)   payload
//! ```
//!
//! Only type `0x08` (unsigned byte) is supported: it is what every MNIST-style data set
//! uses, and accepting the other codes without a use for them would be untested code.
//! Files may be raw or gzip-compressed; compression is detected from the content (the
//! gzip magic `0x1f 0x8b`), never from the file name.
//!
//! The reader is strict, because a silently misread data set poisons every experiment
//! downstream: a wrong magic, an unsupported type, a rank outside `1..=4`, a header cut
//! short, a payload shorter or longer than the dimensions promise, and a corrupt gzip
//! stream are each a distinct [`DataError`] naming the file.
//!
//! ```
//! use data::idx::{decode_idx, encode_idx, Compression, IdxArray};
//! use std::path::Path;
//!
//! let array = IdxArray::new(vec![2, 3], vec![1, 2, 3, 4, 5, 6])?;
//! let bytes = encode_idx(&array, Compression::Gzip)?;
//! let back = decode_idx(&bytes, Path::new("<memory>"))?;
//! assert_eq!(back, array);
//! assert_eq!(back.item(1), Some(&[4, 5, 6][..]));
//! # Ok::<(), data::DataError>(())
//! ```

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::atomic::write_file_atomic;
use crate::error::{DataError, Result};

/// The IDX type code of unsigned bytes, the only element type supported.
pub const IDX_TYPE_U8: u8 = 0x08;

/// The largest rank accepted (MNIST-style files use 1 for labels and 3 for images).
pub const MAX_IDX_RANK: usize = 4;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Upper bound on the up-front allocation for a gzip payload, so that a lying header
/// cannot make the reader reserve gigabytes before seeing a single payload byte.
const MAX_PREALLOCATION: usize = 1 << 28;

/// How [`write_idx`] and [`encode_idx`] store the bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Gzip at the best compression level, with a zero timestamp so that the same
    /// array always encodes to the same bytes (reproducible files in the repo).
    #[default]
    Gzip,
    /// The plain IDX bytes.
    None,
}

/// An n-dimensional array of bytes as stored in an IDX file: dimension sizes
/// (outermost first) and the elements in row-major order.
///
/// The invariants (rank in `1..=4`, every dimension fits in a `u32`, and the element
/// count equals the product of the dimensions) are checked on construction, so any
/// `IdxArray` can be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    dims: Vec<usize>,
    data: Vec<u8>,
}

impl IdxArray {
    /// Wraps `data` with the dimension sizes `dims`, checking that they agree.
    pub fn new(dims: Vec<usize>, data: Vec<u8>) -> Result<Self> {
        const OP: &str = "IdxArray::new";
        if dims.is_empty() || dims.len() > MAX_IDX_RANK {
            return Err(DataError::invalid(
                OP,
                format!("rank {} is outside 1..={MAX_IDX_RANK}", dims.len()),
            ));
        }
        if let Some(&d) = dims.iter().find(|&&d| u32::try_from(d).is_err()) {
            return Err(DataError::invalid(
                OP,
                format!("dimension {d} does not fit in the u32 an IDX header stores"),
            ));
        }
        let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if expected != Some(data.len()) {
            return Err(DataError::invalid(
                OP,
                format!("dims {dims:?} need {expected:?} bytes, got {}", data.len()),
            ));
        }
        Ok(IdxArray { dims, data })
    }

    /// The dimension sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The number of items: the size of the outermost dimension.
    pub fn item_count(&self) -> usize {
        self.dims[0]
    }

    /// The number of bytes in one item (product of all but the outermost dimension;
    /// 1 for a rank-1 array).
    pub fn item_len(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// The bytes of item `i` (an image, a label), or `None` if `i` is out of range.
    pub fn item(&self, i: usize) -> Option<&[u8]> {
        let len = self.item_len();
        let start = i.checked_mul(len)?;
        self.data.get(start..start.checked_add(len)?)
    }

    /// Splits the array into its dimensions and elements.
    pub fn into_parts(self) -> (Vec<usize>, Vec<u8>) {
        (self.dims, self.data)
    }
}

/// Reads an IDX file, raw or gzip-compressed.
///
/// Every failure (unreadable file, corrupt gzip, bad header, wrong payload length) is
/// an error whose message starts with `path`.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    let path = path.as_ref();
    let bytes = fs::read(path).map_err(|e| DataError::io(path, "read", e))?;
    decode_idx(&bytes, path)
}

/// Decodes the bytes of an IDX file, raw or gzip-compressed; `name` is only used in
/// error messages (it is the path for files, a descriptive name for embedded bytes).
pub fn decode_idx(bytes: &[u8], name: &Path) -> Result<IdxArray> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut decoder = MultiGzDecoder::new(bytes);
        decode_stream(&mut decoder, name, None, |source| DataError::Gzip {
            path: name.to_path_buf(),
            source,
        })
    } else {
        let mut reader = bytes;
        decode_stream(&mut reader, name, Some(bytes.len()), |source| {
            DataError::io(name, "read", source)
        })
    }
}

/// Parses header and payload from `reader`. `size_hint` is the total stream length
/// when known (raw files), used to allocate the payload exactly once.
fn decode_stream<R: Read>(
    reader: &mut R,
    name: &Path,
    size_hint: Option<usize>,
    io_error: impl Fn(io::Error) -> DataError,
) -> Result<IdxArray> {
    let path = || name.to_path_buf();

    let mut magic = [0u8; 4];
    let got = read_full(reader, &mut magic).map_err(&io_error)?;
    if got >= 2 && magic[..2] != [0, 0] {
        return Err(DataError::BadMagic {
            path: path(),
            found: [magic[0], magic[1]],
        });
    }
    if got < magic.len() {
        return Err(DataError::TruncatedHeader {
            path: path(),
            needed: magic.len(),
            found: got,
        });
    }
    if magic[2] != IDX_TYPE_U8 {
        return Err(DataError::UnsupportedIdxType {
            path: path(),
            code: magic[2],
        });
    }
    let rank = magic[3];
    if rank == 0 || usize::from(rank) > MAX_IDX_RANK {
        return Err(DataError::BadRank { path: path(), rank });
    }

    let rank = usize::from(rank);
    let mut dim_bytes = [0u8; 4 * MAX_IDX_RANK];
    let dim_bytes = &mut dim_bytes[..4 * rank];
    let got = read_full(reader, dim_bytes).map_err(&io_error)?;
    if got < dim_bytes.len() {
        return Err(DataError::TruncatedHeader {
            path: path(),
            needed: 4 + dim_bytes.len(),
            found: 4 + got,
        });
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| isize::try_from(n).is_ok())
        .ok_or_else(|| DataError::DimsOverflow {
            path: path(),
            dims: dims.clone(),
        })?;

    let capacity = match size_hint {
        Some(total) => expected.min(total),
        None => expected.min(MAX_PREALLOCATION),
    };
    let mut data = Vec::with_capacity(capacity);
    reader
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(&io_error)?;
    if data.len() < expected {
        return Err(DataError::ShortPayload {
            path: path(),
            expected,
            found: data.len(),
        });
    }
    // Count (without storing) whatever follows the payload.
    let trailing = io::copy(reader, &mut io::sink()).map_err(&io_error)?;
    if trailing > 0 {
        return Err(DataError::TrailingData {
            path: path(),
            expected,
            found: expected.saturating_add(usize::try_from(trailing).unwrap_or(usize::MAX)),
        });
    }
    Ok(IdxArray { dims, data })
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
fn read_full<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Encodes `array` as the bytes of an IDX file, optionally gzip-compressed.
///
/// Encoding is deterministic: the same array and compression give the same bytes.
pub fn encode_idx(array: &IdxArray, compression: Compression) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(4 + 4 * array.dims.len() + array.data.len());
    // Rank <= 4 and every dim fits in u32: both checked by `IdxArray::new`.
    raw.extend_from_slice(&[0, 0, IDX_TYPE_U8, array.dims.len() as u8]);
    for &d in &array.dims {
        raw.extend_from_slice(&(d as u32).to_be_bytes());
    }
    raw.extend_from_slice(&array.data);
    match compression {
        Compression::None => Ok(raw),
        Compression::Gzip => {
            // GzEncoder's default header has mtime 0 and no file name: reproducible.
            let mut encoder = GzEncoder::new(
                Vec::with_capacity(raw.len() / 2),
                flate2::Compression::best(),
            );
            encoder
                .write_all(&raw)
                .and_then(|()| encoder.finish())
                .map_err(|e| DataError::io("<in-memory gzip buffer>", "compress", e))
        }
    }
}

/// Writes `array` to `path` as an IDX file, atomically (a temporary file renamed into
/// place, so a reader never sees a half-written file).
///
/// The file name is not interpreted: pass `.gz` names with [`Compression::Gzip`] by
/// convention, since the reader detects compression from the content anyway.
pub fn write_idx(path: impl AsRef<Path>, array: &IdxArray, compression: Compression) -> Result<()> {
    let path = path.as_ref();
    let bytes = encode_idx(array, compression)?;
    write_file_atomic(path, &bytes)
}
