//! Builds the Fashion-MNIST subset that ships in `data/assets/fashion-mnist-subset/` and
//! is embedded in every binary.
//!
//! ```text
//! cargo run --release -p data --bin make_fashion_subset -- [--source DIR] [--out DIR]
//! ```
//!
//! It reads the full data set (from `--source`, else `$FASHION_MNIST_DIR`, else
//! `/usr/share/datasets/fashion-mnist` from `apt-get install dataset-fashion-mnist`,
//! else the user cache; never from the embedded subset itself), keeps the first 500
//! training and the first 100 test images of every class in file order (so train comes
//! only from the full train split and test only from the full test split: 5,000 +
//! 1,000 images), and writes the four gzipped IDX files into `--out` (default: the
//! crate's `assets/fashion-mnist-subset/`). The selection is deterministic and the gzip
//! output has a fixed header, so rerunning it reproduces the committed files byte for
//! byte. Rebuild afterwards: the library embeds the files at compile time.

use std::path::PathBuf;
use std::process::ExitCode;

use data::fashion_mnist::subset::{class_balanced, per_class, ASSET_DIR};
use data::fashion_mnist::{RawFashionMnist, SearchPath, Split};
use data::idx::{write_idx, Compression};
use data::{DataError, Result};

/// Command-line options.
struct Args {
    source: Option<PathBuf>,
    out: PathBuf,
}

/// Parses `--source DIR` and `--out DIR`; `--help` prints the module's usage.
fn parse_args() -> std::result::Result<Option<Args>, String> {
    let mut args = Args {
        source: None,
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(ASSET_DIR),
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(flag) = it.next() {
        match flag.to_str() {
            Some("--help" | "-h") => return Ok(None),
            Some("--source") => {
                args.source = Some(it.next().ok_or("--source needs a directory")?.into());
            }
            Some("--out") => args.out = it.next().ok_or("--out needs a directory")?.into(),
            _ => return Err(format!("unknown argument {}", flag.to_string_lossy())),
        }
    }
    Ok(Some(args))
}

/// Reads the full set, selects the subset and writes it.
fn run(args: &Args) -> Result<()> {
    let search = SearchPath {
        allow_embedded: false,
        ..SearchPath::from_env(args.source.as_deref())
    };
    let full = RawFashionMnist::read(search.resolve()?)?;
    println!("source: {}", full.source);
    if !args.out.is_dir() {
        return Err(DataError::MissingDataset {
            path: args.out.clone(),
            detail: "the output directory does not exist".into(),
        });
    }
    for split in Split::ALL {
        let raw = match split {
            Split::Train => &full.train,
            Split::Test => &full.test,
        };
        let sub = class_balanced(raw, per_class(split))?;
        for (name, array) in [
            (split.images_file(), sub.images()),
            (split.labels_file(), sub.labels()),
        ] {
            let path = args.out.join(format!("{name}.gz"));
            write_idx(&path, array, Compression::Gzip)?;
            let size = std::fs::metadata(&path)
                .map_err(|e| DataError::Io {
                    path: path.clone(),
                    action: "stat",
                    source: e,
                })?
                .len();
            println!(
                "wrote {} ({:?}, {size} bytes)",
                path.display(),
                array.dims()
            );
        }
        println!(
            "{split:?}: {} of {} images, per class {:?}",
            sub.len(),
            raw.len(),
            sub.class_counts()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("usage: make_fashion_subset [--source DIR] [--out DIR]");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("error: {msg}\nusage: make_fashion_subset [--source DIR] [--out DIR]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
