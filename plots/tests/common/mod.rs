//! Helpers shared by the integration tests: scratch directories outside the repo and a
//! PNG reader that checks the file format before looking at pixels.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A directory named after the test, unique per process and call.
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("plots-test-{test}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Self(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Names of the files in the directory, sorted (to check no temp file is left).
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.0)
            .expect("read scratch dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A decoded 8-bit RGB image.
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Image {
    /// The pixel at (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = 3 * (y as usize * self.width as usize + x as usize);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Share of pixels in the rectangle `[x0, x1) x [y0, y1)` that are not white.
    pub fn ink_fraction(&self, (x0, y0): (u32, u32), (x1, y1): (u32, u32)) -> f64 {
        let mut ink = 0usize;
        for y in y0..y1 {
            for x in x0..x1 {
                if self.pixel(x, y) != [255, 255, 255] {
                    ink += 1;
                }
            }
        }
        ink as f64 / ((x1 - x0) as f64 * (y1 - y0) as f64)
    }

    /// Share of non-white pixels in the whole image.
    pub fn ink(&self) -> f64 {
        self.ink_fraction((0, 0), (self.width, self.height))
    }

    /// Number of distinct colours (capped), a rough measure of how much is drawn.
    pub fn distinct_colours(&self) -> usize {
        let mut seen = std::collections::HashSet::new();
        for px in self.rgb.chunks_exact(3) {
            seen.insert([px[0], px[1], px[2]]);
            if seen.len() > 10_000 {
                break;
            }
        }
        seen.len()
    }
}

/// Reads `path`, checks the PNG signature and that the IHDR chunk declares
/// `width` x `height`, then decodes it to RGB.
pub fn read_png(path: &Path, width: u32, height: u32) -> Image {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "PNG signature of {}",
        path.display()
    );
    // The first chunk: 4-byte length (13), "IHDR", big-endian width and height.
    assert_eq!(&bytes[12..16], b"IHDR");
    let declared_w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let declared_h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    assert_eq!(
        (declared_w, declared_h),
        (width, height),
        "IHDR size of {}",
        path.display()
    );

    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    Image {
        width: info.width,
        height: info.height,
        rgb: buf,
    }
}

/// Asserts the figure is more than a blank page: some ink, several colours.
pub fn assert_drawn(image: &Image, min_ink: f64) {
    let ink = image.ink();
    assert!(
        ink > min_ink,
        "only {:.2}% of pixels are drawn",
        ink * 100.0
    );
    assert!(
        image.distinct_colours() > 4,
        "only {} colours",
        image.distinct_colours()
    );
}

/// Share of non-white pixels in the title strip (top 56 pixels of a scale-1 image,
/// the middle third of the width).
pub fn title_ink(image: &Image) -> f64 {
    image.ink_fraction((image.width / 3, 12), (2 * image.width / 3, 52))
}

/// Reads an SVG document and checks it looks like one of the given size.
pub fn read_svg(path: &Path, width: u32, height: u32) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(
        text.starts_with("<svg"),
        "SVG starts with <svg: {}",
        &text[..40.min(text.len())]
    );
    assert!(text.trim_end().ends_with("</svg>"), "SVG is closed");
    assert!(text.contains(&format!("width=\"{width}\"")));
    assert!(text.contains(&format!("height=\"{height}\"")));
    // Balanced text elements: every <text> is closed.
    assert_eq!(
        text.matches("<text").count(),
        text.matches("</text>").count()
    );
    text
}
