//! Headers that promise far more than a file should hold. The IDX reader refuses a
//! payload over its byte limit from the header alone, and the Fashion-MNIST reader
//! refuses a header that does not fit the data set (28x28 images, as many labels as
//! images, no more examples than the full split) before reading either payload; in
//! both cases nothing past the header is read, decompressed or allocated.
//!
//! Memory is measured with a global allocator that tracks each thread's live heap
//! bytes (`common::Tracking`), so the bounds hold while other tests run in parallel.

mod common;

use std::cell::Cell;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::{gzip_with_zeros, idx_header, peak_heap};
use data::fashion_mnist::{FashionMnist, Split};
use data::idx::{
    decode_idx_limited, encode_idx, read_idx, read_idx_limited, write_idx, Compression, IdxArray,
    IdxReader, DEFAULT_MAX_PAYLOAD_BYTES,
};
use data::DataError;

#[global_allocator]
static ALLOC: common::Tracking = common::Tracking;

/// What a rejected read may allocate: the decoder's buffers and the error, nowhere
/// near the payload the crafted files promise (gigabytes) or hold (256 MiB).
const HEADER_ONLY_HEAP: usize = 1 << 20;

/// Decompressed zeros after the crafted headers, in MiB: enough that reading them
/// would break [`HEADER_ONLY_HEAP`] by far, small enough that a regression fails the
/// test rather than the machine.
const ZEROS_MIB: usize = 256;

/// The crafted file of the issue: a `train-images-idx3-ubyte.gz` whose header says
/// 1,000,000 x 60 x 60 (3.6 GB), followed by 256 MiB of zeros (about 260 KB on disk).
fn crafted_images() -> Vec<u8> {
    gzip_with_zeros(&idx_header(&[1_000_000, 60, 60]), ZEROS_MIB)
}

/// Writes a valid data set of `n` training and `n` test examples into `dir`.
fn write_tiny_set(dir: &Path, n: usize) {
    for split in Split::ALL {
        let images = IdxArray::new(vec![n, 28, 28], vec![7; n * 784]).unwrap();
        let labels = IdxArray::new(vec![n], (0..n).map(|i| (i % 10) as u8).collect()).unwrap();
        let gz = |stem: &str| dir.join(format!("{stem}.gz"));
        write_idx(gz(split.images_file()), &images, Compression::Gzip).unwrap();
        write_idx(gz(split.labels_file()), &labels, Compression::Gzip).unwrap();
    }
}

fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

/// Asserts that `err` is an [`DataError::InvalidDataset`] naming `path` whose message
/// contains `detail`.
fn assert_invalid(err: &DataError, path: &Path, detail: &str) {
    let msg = err.to_string();
    assert!(matches!(err, DataError::InvalidDataset { .. }), "{msg}");
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains(detail), "{msg}");
}

#[test]
fn the_crafted_file_is_refused_by_read_idx_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("train-images-idx3-ubyte.gz"),
        &crafted_images(),
    );
    let (result, heap) = peak_heap(|| read_idx(&path));
    let err = result.unwrap_err();
    match &err {
        DataError::PayloadTooLarge {
            path: p,
            dims,
            needed,
            limit,
        } => {
            assert_eq!(p, &path);
            assert_eq!(dims, &[1_000_000, 60, 60]);
            assert_eq!(*needed, 3_600_000_000);
            assert_eq!(*limit, DEFAULT_MAX_PAYLOAD_BYTES);
        }
        other => panic!("expected PayloadTooLarge, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("[1000000, 60, 60]"), "{msg}");
    assert!(msg.contains("need 3600000000 payload bytes"), "{msg}");
    assert!(msg.contains("limit of 1073741824 bytes"), "{msg}");
    assert!(heap < HEADER_ONLY_HEAP, "read_idx allocated {heap} bytes");
}

#[test]
fn the_crafted_file_is_refused_by_the_fashion_mnist_reader_from_its_header() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_set(dir.path(), 10);
    let images = write(
        &dir.path().join("train-images-idx3-ubyte.gz"),
        &crafted_images(),
    );
    let (result, heap) = peak_heap(|| FashionMnist::load(Some(dir.path())));
    assert_invalid(
        &result.unwrap_err(),
        &images,
        "expected images of shape [N, 28, 28], found [1000000, 60, 60]",
    );
    assert!(heap < HEADER_ONLY_HEAP, "the loader allocated {heap} bytes");
}

#[test]
fn more_images_than_the_full_split_are_refused_from_the_header() {
    for (split, n) in [(Split::Train, 60_001), (Split::Test, 10_001)] {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_set(dir.path(), 10);
        let header = idx_header(&[n, 28, 28]);
        let images = write(
            &dir.path().join(format!("{}.gz", split.images_file())),
            &gzip_with_zeros(&header, 64),
        );
        let (result, heap) = peak_heap(|| FashionMnist::load(Some(dir.path())));
        let name = if split == Split::Train {
            "training"
        } else {
            "test"
        };
        assert_invalid(
            &result.unwrap_err(),
            &images,
            &format!(
                "{n} images, more than the {} of the full {name} split",
                split.full_len()
            ),
        );
        assert!(heap < HEADER_ONLY_HEAP, "{split:?}: allocated {heap} bytes");
    }
}

#[test]
fn both_headers_are_checked_before_either_payload() {
    // Headers alone, no payloads: a header mismatch must be reported, not the short
    // payload that reading first would run into.
    let dir = tempfile::tempdir().unwrap();
    write_tiny_set(dir.path(), 10);
    let images = write(
        &dir.path().join("train-images-idx3-ubyte"),
        &idx_header(&[10, 28, 28]),
    );
    fs::remove_file(dir.path().join("train-images-idx3-ubyte.gz")).unwrap();
    let labels = dir.path().join("train-labels-idx1-ubyte.gz");
    let in_images = format!("11 labels for 10 images in {}", images.display());
    for (dims, detail) in [
        (&[11][..], in_images.as_str()),
        (&[10, 1][..], "expected labels of shape [N], found [10, 1]"),
    ] {
        write(&labels, &common::gzip(&idx_header(dims)));
        let err = FashionMnist::load(Some(dir.path())).unwrap_err();
        assert_invalid(&err, &labels, detail);
    }
    // With matching headers the payloads are read, and the missing one reported.
    write(&labels, &common::gzip(&idx_header(&[10])));
    let err = FashionMnist::load(Some(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::ShortPayload { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&images.display().to_string()),
        "{err}"
    );
}

/// A reader that counts the bytes taken from `inner`.
struct Counting<R> {
    inner: R,
    taken: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken.set(self.taken.get() + n);
        Ok(n)
    }
}

#[test]
fn the_reader_takes_only_the_header_from_the_stream() {
    let header = idx_header(&[1_000_000, 60, 60]);
    let mut raw = header.clone();
    raw.resize(header.len() + (4 << 20), 0);
    let gz = crafted_images();
    for (kind, bytes) in [("raw", &raw), ("gzip", &gz)] {
        let taken = Rc::new(Cell::new(0));
        let stream = Counting {
            inner: bytes.as_slice(),
            taken: Rc::clone(&taken),
        };
        let reader = IdxReader::new(stream, Path::new("<crafted>")).unwrap();
        assert_eq!(reader.header().dims(), &[1_000_000, 60, 60], "{kind}");
        assert_eq!(reader.header().payload_len(), 3_600_000_000, "{kind}");
        assert_eq!(reader.is_gzip(), kind == "gzip");
        let after_header = taken.get();
        let err = reader.read_payload(DEFAULT_MAX_PAYLOAD_BYTES).unwrap_err();
        assert!(
            matches!(err, DataError::PayloadTooLarge { .. }),
            "{kind}: {err}"
        );
        assert!(err.to_string().starts_with("<crafted>: "), "{err}");
        assert_eq!(taken.get(), after_header, "{kind}: read_payload read on");
        if kind == "raw" {
            // Exactly the magic and three dimensions, unbuffered.
            assert_eq!(after_header, 16);
        } else {
            // The decoder's input buffer at most, of a file of some 260 KB.
            assert!(
                after_header <= 64 << 10,
                "took {after_header} of {}",
                gz.len()
            );
        }
    }
}

#[test]
fn the_limit_is_inclusive_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let array = IdxArray::new(vec![2, 3, 4], (0..24).collect()).unwrap();
    for compression in [Compression::None, Compression::Gzip] {
        let bytes = encode_idx(&array, compression).unwrap();
        let path = write(&dir.path().join("a.idx"), &bytes);
        assert_eq!(read_idx_limited(&path, 24).unwrap(), array);
        assert_eq!(decode_idx_limited(&bytes, &path, 24).unwrap(), array);
        for err in [
            read_idx_limited(&path, 23).unwrap_err(),
            decode_idx_limited(&bytes, &path, 23).unwrap_err(),
        ] {
            assert!(
                matches!(
                    &err,
                    DataError::PayloadTooLarge { needed: 24, limit: 23, dims, .. } if dims == &[2, 3, 4]
                ),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "{}: the IDX header's dimensions [2, 3, 4] need 24 payload bytes, more \
                     than the limit of 23 bytes; the payload was not read",
                    path.display()
                )
            );
        }
    }
}

#[test]
fn a_header_within_the_limit_but_beyond_the_file_costs_a_bounded_allocation() {
    // 1 GiB promised (the default limit), 1 MiB present: the reader may reserve up to
    // its preallocation cap (64 MiB) before finding the payload short, never the 1 GiB.
    let dir = tempfile::tempdir().unwrap();
    let header = idx_header(&[1 << 14, 1 << 16]);
    let path = write(&dir.path().join("short.gz"), &gzip_with_zeros(&header, 1));
    let (result, heap) = peak_heap(|| read_idx(&path));
    let err = result.unwrap_err();
    assert!(
        matches!(err, DataError::ShortPayload { expected, found, .. } if expected == 1 << 30 && found == 1 << 20),
        "{err}"
    );
    assert!(
        heap <= (64 << 20) + HEADER_ONLY_HEAP,
        "allocated {heap} bytes"
    );
}

#[test]
fn headers_whose_item_size_overflows_are_refused() {
    // Zero items of an unaddressable size: the product is 0, but item_len would overflow.
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir.path().join("zero.idx"),
        &idx_header(&[0, u32::MAX, u32::MAX, u32::MAX]),
    );
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, DataError::DimsOverflow { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&path.display().to_string()),
        "{err}"
    );
    assert!(IdxArray::new(vec![0, 1 << 31, 1 << 31, 1 << 31], vec![]).is_err());
}
