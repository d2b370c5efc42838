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
//! It is also bounded: the header is parsed before any payload is read
//! ([`IdxReader`] hands it to the caller to check), and a header promising more than
//! a byte limit ([`DEFAULT_MAX_PAYLOAD_BYTES`] for [`read_idx`] and [`decode_idx`],
//! the caller's for [`read_idx_limited`], [`decode_idx_limited`] and
//! [`IdxReader::read_payload`]) is [`DataError::PayloadTooLarge`] before anything is
//! allocated. Files are streamed, so a small gzip file that decompresses to gigabytes
//! costs no more memory than the limit.
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

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::atomic::write_file_atomic;
use crate::error::{DataError, Result};

/// The IDX type code of unsigned bytes, the only element type supported.
pub const IDX_TYPE_U8: u8 = 0x08;

/// The largest rank accepted (MNIST-style files use 1 for labels and 3 for images).
pub const MAX_IDX_RANK: usize = 4;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Upper bound on the up-front allocation for a gzip payload (64 MiB, more than the
/// largest Fashion-MNIST file), so that a header promising more than the stream holds
/// costs at most this much before the payload turns out short.
const MAX_PREALLOCATION: usize = 1 << 26;

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
        let Some(expected) = payload_len(&dims) else {
            return Err(DataError::invalid(
                OP,
                format!("dims {dims:?} describe more bytes than can be addressed"),
            ));
        };
        if expected != data.len() {
            return Err(DataError::invalid(
                OP,
                format!("dims {dims:?} need {expected} bytes, got {}", data.len()),
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
        if i >= self.item_count() {
            return None;
        }
        let len = self.item_len();
        let start = i.checked_mul(len)?;
        self.data.get(start..start.checked_add(len)?)
    }

    /// Splits the array into its dimensions and elements.
    pub fn into_parts(self) -> (Vec<usize>, Vec<u8>) {
        (self.dims, self.data)
    }
}

/// The payload limit of [`read_idx`] and [`decode_idx`]: 1 GiB, twenty times the
/// largest Fashion-MNIST file (47,040,000 bytes of training images) and enough for any
/// MNIST-style data set, yet small enough that a header claiming gigabytes is refused
/// before anything is allocated. Use [`read_idx_limited`] or [`decode_idx_limited`]
/// (or [`IdxReader`]) to choose another.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// The header of an IDX file: its dimension sizes, outermost first.
///
/// [`IdxReader`] parses and checks it (magic, element type, rank, and that the
/// dimensions describe an addressable number of bytes) before reading any payload, so
/// a caller can reject a file by its header alone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdxHeader {
    dims: Vec<usize>,
    payload_len: usize,
}

impl IdxHeader {
    /// The dimension sizes, outermost first (1 to [`MAX_IDX_RANK`] of them).
    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The number of items: the size of the outermost dimension.
    pub fn item_count(&self) -> usize {
        self.dims[0]
    }

    /// The number of bytes in one item (product of all but the outermost dimension;
    /// 1 for a rank-1 file).
    pub fn item_len(&self) -> usize {
        self.dims[1..].iter().product()
    }

    /// The number of payload bytes the dimensions promise (their product).
    pub fn payload_len(&self) -> usize {
        self.payload_len
    }

    /// The length of the header itself on disk: the magic and one `u32` per dimension.
    pub fn encoded_len(&self) -> usize {
        4 + 4 * self.dims.len()
    }
}

/// A reader positioned after the header of an IDX file (raw or gzip): look at
/// [`header`](IdxReader::header), then [`read_payload`](IdxReader::read_payload) with
/// a byte limit, or drop it to read nothing more.
///
/// ```
/// use data::idx::{encode_idx, Compression, IdxArray, IdxReader};
/// use std::path::Path;
///
/// let bytes = encode_idx(&IdxArray::new(vec![2, 3], vec![0; 6])?, Compression::Gzip)?;
/// let reader = IdxReader::from_bytes(&bytes, Path::new("<memory>"))?;
/// assert_eq!(reader.header().dims(), &[2, 3]);
/// let array = reader.read_payload(6)?; // at most 6 payload bytes
/// assert_eq!(array.data(), &[0; 6]);
///
/// // The same header with a limit of 5 bytes is refused before the payload is read.
/// let reader = IdxReader::from_bytes(&bytes, Path::new("<memory>"))?;
/// assert!(reader.read_payload(5).unwrap_err().to_string().contains("limit of 5"));
/// # Ok::<(), data::DataError>(())
/// ```
pub struct IdxReader<'a> {
    name: PathBuf,
    header: IdxHeader,
    stream: Box<dyn Read + 'a>,
    gzip: bool,
    /// Bytes left after the header, when known (raw files and byte slices): the
    /// payload is then allocated exactly once.
    remaining: Option<u64>,
}

impl fmt::Debug for IdxReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdxReader")
            .field("name", &self.name)
            .field("header", &self.header)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl IdxReader<'static> {
    /// Opens the IDX file at `path` and reads its header. Every failure is an error
    /// whose message starts with `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| DataError::io(path, "open", e))?;
        let len = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        IdxReader::with_hint(file, path, len)
    }
}

impl<'a> IdxReader<'a> {
    /// Reads the header of the IDX bytes `bytes` (raw or gzip); `name` stands for
    /// them in error messages.
    pub fn from_bytes(bytes: &'a [u8], name: &Path) -> Result<Self> {
        IdxReader::with_hint(bytes, name, u64::try_from(bytes.len()).ok())
    }

    /// Reads the header from any byte stream holding an IDX file (raw or gzip);
    /// `name` stands for it in error messages. Only the header is consumed (and, for
    /// gzip, what the decoder buffers).
    pub fn new(reader: impl Read + 'a, name: &Path) -> Result<Self> {
        IdxReader::with_hint(reader, name, None)
    }

    /// [`new`](IdxReader::new), with the total length of the stream if known.
    fn with_hint(mut reader: impl Read + 'a, name: &Path, total: Option<u64>) -> Result<Self> {
        let mut prefix = [0u8; 2];
        let got =
            read_full(&mut reader, &mut prefix).map_err(|e| DataError::io(name, "read", e))?;
        let chained = io::Cursor::new(prefix).take(got as u64).chain(reader);
        let gzip = prefix[..got] == GZIP_MAGIC;
        let mut stream: Box<dyn Read + 'a> = if gzip {
            Box::new(MultiGzDecoder::new(chained))
        } else {
            Box::new(chained)
        };
        let header = read_header(&mut stream, name, |e| stream_error(name, gzip, e))?;
        let remaining = total
            .filter(|_| !gzip)
            .map(|t| t.saturating_sub(header.encoded_len() as u64));
        Ok(IdxReader {
            name: name.to_path_buf(),
            header,
            stream,
            gzip,
            remaining,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &IdxHeader {
        &self.header
    }

    /// The name used in error messages (the path, for files).
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Whether the file is gzip-compressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// Reads the payload, which must be exactly as long as the header promises and
    /// at most `max_payload_bytes` long; the limit is checked against the header
    /// before anything is read or allocated.
    ///
    /// Errors name the file: [`DataError::PayloadTooLarge`] over the limit,
    /// [`DataError::ShortPayload`] and [`DataError::TrailingData`] for a payload of
    /// the wrong length, [`DataError::Gzip`] or [`DataError::Io`] when the stream
    /// breaks.
    pub fn read_payload(self, max_payload_bytes: usize) -> Result<IdxArray> {
        let IdxReader {
            name,
            header,
            mut stream,
            gzip,
            remaining,
        } = self;
        let expected = header.payload_len;
        if expected > max_payload_bytes {
            return Err(DataError::PayloadTooLarge {
                path: name,
                dims: header.dims,
                needed: expected,
                limit: max_payload_bytes,
            });
        }
        let io_error = |e| stream_error(&name, gzip, e);
        let capacity = match remaining {
            Some(left) => expected.min(usize::try_from(left).unwrap_or(usize::MAX)),
            None => expected.min(MAX_PREALLOCATION),
        };
        let mut data = Vec::with_capacity(capacity);
        (&mut stream)
            .take(expected as u64)
            .read_to_end(&mut data)
            .map_err(io_error)?;
        if data.len() < expected {
            return Err(DataError::ShortPayload {
                path: name,
                expected,
                found: data.len(),
            });
        }
        // Count (without storing) whatever follows the payload.
        let trailing = io::copy(&mut stream, &mut io::sink()).map_err(io_error)?;
        if trailing > 0 {
            return Err(DataError::TrailingData {
                path: name,
                expected,
                found: expected.saturating_add(usize::try_from(trailing).unwrap_or(usize::MAX)),
            });
        }
        Ok(IdxArray {
            dims: header.dims,
            data,
        })
    }
}

/// The error for a failed read of the (decompressed or raw) stream.
fn stream_error(name: &Path, gzip: bool, source: io::Error) -> DataError {
    if gzip {
        DataError::Gzip {
            path: name.to_path_buf(),
            source,
        }
    } else {
        DataError::io(name, "read", source)
    }
}

/// Reads an IDX file, raw or gzip-compressed, whose payload is at most
/// [`DEFAULT_MAX_PAYLOAD_BYTES`].
///
/// Every failure (unreadable file, corrupt gzip, bad header, a payload over the limit
/// or of the wrong length) is an error whose message starts with `path`.
pub fn read_idx(path: impl AsRef<Path>) -> Result<IdxArray> {
    read_idx_limited(path, DEFAULT_MAX_PAYLOAD_BYTES)
}

/// Reads an IDX file whose payload is at most `max_payload_bytes`: a header promising
/// more is [`DataError::PayloadTooLarge`], raised before any payload is read. The
/// file is streamed, so memory use is bounded by the limit, not by what the file
/// (or its decompression) would produce.
pub fn read_idx_limited(path: impl AsRef<Path>, max_payload_bytes: usize) -> Result<IdxArray> {
    IdxReader::open(path)?.read_payload(max_payload_bytes)
}

/// Decodes the bytes of an IDX file, raw or gzip-compressed, whose payload is at most
/// [`DEFAULT_MAX_PAYLOAD_BYTES`]; `name` is only used in error messages (it is the path
/// for files, a descriptive name for embedded bytes).
pub fn decode_idx(bytes: &[u8], name: &Path) -> Result<IdxArray> {
    decode_idx_limited(bytes, name, DEFAULT_MAX_PAYLOAD_BYTES)
}

/// [`decode_idx`] with a payload limit of `max_payload_bytes` (see
/// [`read_idx_limited`]).
pub fn decode_idx_limited(bytes: &[u8], name: &Path, max_payload_bytes: usize) -> Result<IdxArray> {
    IdxReader::from_bytes(bytes, name)?.read_payload(max_payload_bytes)
}

/// The number of bytes `dims` describe, if it and the size of one item (all but the
/// outermost dimension) are addressable (at most `isize::MAX`).
fn payload_len(dims: &[usize]) -> Option<usize> {
    let fits = |n: usize| isize::try_from(n).is_ok();
    let inner = dims.get(1..)?;
    let item = if inner.contains(&0) {
        0
    } else {
        inner
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&n| fits(n))?
    };
    dims.first()?.checked_mul(item).filter(|&n| fits(n))
}

/// Parses and checks the header at the start of `reader`.
fn read_header<R: Read>(
    reader: &mut R,
    name: &Path,
    io_error: impl Fn(io::Error) -> DataError,
) -> Result<IdxHeader> {
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
    let payload_len = payload_len(&dims).ok_or_else(|| DataError::DimsOverflow {
        path: path(),
        dims: dims.clone(),
    })?;
    Ok(IdxHeader { dims, payload_len })
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
