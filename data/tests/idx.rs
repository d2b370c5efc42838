//! The IDX reader and writer: round trips, and one test per kind of corruption, each
//! checking that the error is the right variant and that its message names the file.

use std::fs;
use std::path::{Path, PathBuf};

use data::idx::{encode_idx, read_idx, write_idx, Compression, IdxArray};
use data::DataError;
use proptest::prelude::*;

fn sample() -> IdxArray {
    let data: Vec<u8> = (0..2 * 3 * 4).map(|i| (i * 7) as u8).collect();
    IdxArray::new(vec![2, 3, 4], data).unwrap()
}

/// Writes `bytes` to a fresh file in `dir` and returns its path.
fn file_with(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

/// Gzips `bytes` (as a whole file, not as an IDX array).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Reads `path`, expecting an error whose message starts with the path.
fn read_err(path: &Path) -> DataError {
    let err = read_idx(path).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&path.display().to_string()),
        "message does not start with the file name: {msg}"
    );
    err
}

#[test]
fn round_trip_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    for (compression, name) in [
        (Compression::None, "a.idx"),
        (Compression::Gzip, "a.idx.gz"),
    ] {
        let path = dir.path().join(name);
        write_idx(&path, &sample(), compression).unwrap();
        assert_eq!(read_idx(&path).unwrap(), sample(), "{compression:?}");
    }
    let raw = fs::read(dir.path().join("a.idx")).unwrap();
    assert_eq!(&raw[..4], &[0, 0, 0x08, 3]);
    assert_eq!(&raw[4..8], &2u32.to_be_bytes());
    assert_eq!(raw.len(), 4 + 3 * 4 + 24);
    let gz = fs::read(dir.path().join("a.idx.gz")).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
}

#[test]
fn compression_is_detected_from_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("misleading.gz");
    write_idx(&path, &sample(), Compression::None).unwrap();
    assert_eq!(read_idx(&path).unwrap(), sample());
}

#[test]
fn gzip_encoding_is_reproducible() {
    let a = encode_idx(&sample(), Compression::Gzip).unwrap();
    let b = encode_idx(&sample(), Compression::Gzip).unwrap();
    assert_eq!(a, b);
}

#[test]
fn empty_outer_dimension_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let empty = IdxArray::new(vec![0, 28, 28], vec![]).unwrap();
    let path = dir.path().join("empty.gz");
    write_idx(&path, &empty, Compression::Gzip).unwrap();
    assert_eq!(read_idx(&path).unwrap(), empty);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.gz");
    assert!(matches!(read_err(&path), DataError::Io { .. }));
}

#[test]
fn empty_file_is_a_truncated_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(dir.path(), "empty", &[]);
    assert!(matches!(
        read_err(&path),
        DataError::TruncatedHeader {
            needed: 4,
            found: 0,
            ..
        }
    ));
}

#[test]
fn header_cut_inside_the_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let raw = encode_idx(&sample(), Compression::None).unwrap();
    let path = file_with(dir.path(), "cut", &raw[..10]);
    let err = read_err(&path);
    assert!(
        matches!(
            err,
            DataError::TruncatedHeader {
                needed: 16,
                found: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = encode_idx(&sample(), Compression::None).unwrap();
    raw[1] = 0x01;
    let path = file_with(dir.path(), "magic", &raw);
    let err = read_err(&path);
    assert!(
        matches!(err, DataError::BadMagic { found: [0, 1], .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not an IDX file"), "{err}");
}

#[test]
fn text_file_is_not_idx() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with(dir.path(), "readme.txt", b"hello world\n");
    assert!(matches!(read_err(&path), DataError::BadMagic { .. }));
}

#[test]
fn unsupported_element_type() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = encode_idx(&sample(), Compression::None).unwrap();
    raw[2] = 0x0D; // float
    let path = file_with(dir.path(), "float.idx", &raw);
    let err = read_err(&path);
    assert!(
        matches!(err, DataError::UnsupportedIdxType { code: 0x0D, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("0x0d"), "{err}");
}

#[test]
fn rank_outside_one_to_four() {
    let dir = tempfile::tempdir().unwrap();
    for rank in [0u8, 5, 255] {
        let mut raw = encode_idx(&sample(), Compression::None).unwrap();
        raw[3] = rank;
        let path = file_with(dir.path(), &format!("rank{rank}"), &raw);
        let err = read_err(&path);
        assert!(
            matches!(err, DataError::BadRank { rank: r, .. } if r == rank),
            "{err}"
        );
    }
}

#[test]
fn short_payload_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let raw = encode_idx(&sample(), Compression::None).unwrap();
    let cut = &raw[..raw.len() - 5];
    for (name, bytes) in [("short.idx", cut.to_vec()), ("short.idx.gz", gzip(cut))] {
        let path = file_with(dir.path(), name, &bytes);
        let err = read_err(&path);
        assert!(
            matches!(
                err,
                DataError::ShortPayload {
                    expected: 24,
                    found: 19,
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("found 19 (5 missing)"), "{err}");
    }
}

#[test]
fn trailing_garbage_after_the_payload_raw_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let mut raw = encode_idx(&sample(), Compression::None).unwrap();
    raw.extend_from_slice(b"xyz");
    for (name, bytes) in [("long.idx", raw.clone()), ("long.idx.gz", gzip(&raw))] {
        let path = file_with(dir.path(), name, &bytes);
        let err = read_err(&path);
        assert!(
            matches!(
                err,
                DataError::TrailingData {
                    expected: 24,
                    found: 27,
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("found 27 (3 extra)"), "{err}");
    }
}

#[test]
fn garbage_after_the_gzip_stream() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = encode_idx(&sample(), Compression::Gzip).unwrap();
    bytes.extend_from_slice(b"garbage!");
    let path = file_with(dir.path(), "tail.gz", &bytes);
    assert!(matches!(read_err(&path), DataError::Gzip { .. }));
}

#[test]
fn truncated_gzip_stream() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = encode_idx(&sample(), Compression::Gzip).unwrap();
    let path = file_with(dir.path(), "cut.gz", &bytes[..bytes.len() / 2]);
    let err = read_err(&path);
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains("corrupt gzip stream"), "{err}");
}

#[test]
fn corrupt_gzip_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = encode_idx(&sample(), Compression::Gzip).unwrap();
    let n = bytes.len();
    bytes[n - 8] ^= 0xFF; // the CRC32 of the trailer
    let path = file_with(dir.path(), "crc.gz", &bytes);
    assert!(matches!(read_err(&path), DataError::Gzip { .. }));
}

#[test]
fn corrupt_deflate_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = gzip(&[7u8; 4096]);
    bytes[10] = 0xFF; // first byte of the deflate stream: an invalid block type
    let path = file_with(dir.path(), "deflate.gz", &bytes);
    assert!(matches!(read_err(&path), DataError::Gzip { .. }));
}

#[test]
fn constructor_checks_invariants() {
    assert!(IdxArray::new(vec![], vec![]).is_err());
    assert!(IdxArray::new(vec![1, 1, 1, 1, 1], vec![0]).is_err());
    assert!(IdxArray::new(vec![2, 2], vec![0; 3]).is_err());
    assert!(IdxArray::new(vec![1usize << 33], vec![]).is_err());
    let a = IdxArray::new(vec![3], vec![1, 2, 3]).unwrap();
    assert_eq!((a.item_count(), a.item_len()), (3, 1));
    assert_eq!(a.item(2), Some(&[3][..]));
    assert_eq!(a.item(3), None);
    // Items of zero bytes: in range up to the item count only.
    let empty_items = IdxArray::new(vec![3, 4, 0], vec![]).unwrap();
    assert_eq!(empty_items.item(2), Some(&[][..]));
    assert_eq!(empty_items.item(3), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_array_round_trips(
        dims in prop::collection::vec(0usize..6, 1..=4),
        seed in any::<u8>(),
        gz in any::<bool>(),
    ) {
        let n: usize = dims.iter().product();
        let data: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let array = IdxArray::new(dims, data).unwrap();
        let compression = if gz { Compression::Gzip } else { Compression::None };
        let bytes = encode_idx(&array, compression).unwrap();
        let back = data::idx::decode_idx(&bytes, Path::new("<prop>")).unwrap();
        prop_assert_eq!(back, array);
    }

    #[test]
    fn any_truncation_of_a_raw_file_is_an_error(cut in 0usize..40) {
        let raw = encode_idx(&sample(), Compression::None).unwrap();
        let cut = cut.min(raw.len() - 1);
        let result = data::idx::decode_idx(&raw[..cut], Path::new("<prop>"));
        prop_assert!(result.is_err());
    }
}
