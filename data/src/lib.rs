//! Data for the engine: files in, mini-batches of tensors out.
//!
//! - [`idx`]: a strict reader and a writer for IDX files (raw or gzip), the format of
//!   MNIST and Fashion-MNIST. A corrupt or truncated file is an error naming the file.
//! - [`fashion_mnist`]: the data set the lessons train on, found in an explicit
//!   directory, `$FASHION_MNIST_DIR`, the system install, the user cache, or, failing
//!   all of those, a class-balanced subset embedded in the binary, so every program runs
//!   on any machine and says which data it used.
//! - [`loader`]: a [`DataLoader`](loader::DataLoader) over `(x, y)` tensors with seeded
//!   per-epoch shuffling, `drop_last` and per-batch transforms such as
//!   [`Normalize`](loader::Normalize).
//! - [`words`]: the makemore data set: a word list, its character vocabulary, context
//!   windows and the seeded 80/10/10 split.
//!
//! Every fallible function returns [`Result`], whose [`DataError`] says which file (or
//! which function) and what was wrong; nothing here panics on user input.
//!
//! ```
//! use data::fashion_mnist::FashionMnist;
//! use data::loader::{DataLoader, Normalize};
//!
//! let ds = FashionMnist::load_embedded()?; // `FashionMnist::load(None)` searches first
//! println!("{}", ds.description());
//! let norm = Normalize::fit(&ds.train.images)?;
//! let train = DataLoader::new(&ds.train.images, &ds.train.labels, 256)?
//!     .shuffle(0)
//!     .transform(norm);
//! let (xb, yb) = train.epoch(0).next().expect("5000 examples make batches")?;
//! assert_eq!(xb.dims(), &[256, 1, 28, 28]);
//! assert_eq!(yb.dims(), &[256]);
//! # Ok::<(), data::DataError>(())
//! ```

mod atomic;
pub mod error;
pub mod fashion_mnist;
pub mod idx;
pub mod loader;
pub mod words;

pub use error::{DataError, Result};
