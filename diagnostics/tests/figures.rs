//! Every figure is written as a valid PNG of the requested size with something drawn
//! on it; figures without data are skipped; a missing directory is an error.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};

use common::{healthy_tanh_mlp, lesson_cnn, top_level, train_with_diagnostics, Init, TestResult};
use diagnostics::activations::ActivationConfig;
use diagnostics::error::DiagError;
use diagnostics::figures::{write_all_plots, FigureOptions};
use nn::hooks::ModuleFilter;

/// `(width, height, share of pixels that are not the white background)`.
fn inspect_png(path: &Path) -> Result<(u32, u32, f64), Box<dyn std::error::Error>> {
    let decoder = png::Decoder::new(File::open(path)?);
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf)?;
    let channels = frame.color_type.samples();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let pixels = &buf[..frame.buffer_size()];
    let total = pixels.len() / channels;
    let inked = pixels
        .chunks(channels)
        .filter(|px| px.iter().take(3).any(|&c| c != 255))
        .count();
    Ok((frame.width, frame.height, inked as f64 / total as f64))
}

fn names(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect()
}

fn temp_dir(tag: &str) -> Result<PathBuf, std::io::Error> {
    let dir =
        std::env::temp_dir().join(format!("diagnostics-figures-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[test]
fn every_figure_of_a_tanh_run_is_a_valid_png_of_the_requested_size() -> TestResult {
    let config = ActivationConfig::tanh()
        .snapshot_at(0)
        .saturation_map_at("1", 0);
    let (log, _) = train_with_diagnostics(
        healthy_tanh_mlp(0)?,
        true,
        0.03,
        1,
        ModuleFilter::kinds(&["Tanh"]),
        config,
        Vec::new(),
    )?;
    let dir = temp_dir("tanh")?;
    let opts = FigureOptions {
        width: 900,
        height: 640,
        svg: true,
    };
    let files = write_all_plots(&log, &dir, &opts)?;
    let pngs: Vec<String> = names(&files)
        .into_iter()
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert_eq!(
        pngs,
        [
            "activation_means.png",
            "activation_stds.png",
            "color_dim.png",
            "dead_chart.png",
            "dead_per_layer.png",
            "saturation_per_layer.png",
            "activation_histograms.png",
            "saturation_map.png",
            "gradient_histograms.png",
            "grad_data.png",
            "update_data.png",
            "loss.png",
        ]
    );
    for file in &files {
        if file.extension().is_some_and(|e| e == "png") {
            let (w, h, inked) = inspect_png(file)?;
            assert_eq!((w, h), (900, 640), "{}", file.display());
            assert!(
                inked > 0.01,
                "{}: only {:.2}% of pixels drawn",
                file.display(),
                inked * 100.0
            );
        } else {
            let text = std::fs::read_to_string(file)?;
            assert!(
                text.contains("<svg") && text.contains("</svg>"),
                "{}",
                file.display()
            );
        }
    }
    // Line plots, overlays and bar charts have SVGs; the heat map and the map do not.
    assert_eq!(files.len(), 12 + 10);
    assert!(!dir.join("color_dim.svg").exists() && !dir.join("saturation_map.svg").exists());
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[test]
fn figures_without_data_are_skipped() -> TestResult {
    // A ReLU CNN: no bounded layer (no saturation bars), no snapshot, no map.
    let (log, _) = train_with_diagnostics(
        lesson_cnn(Init::Kaiming, 0)?,
        false,
        0.02,
        1,
        top_level(),
        ActivationConfig::relu(),
        Vec::new(),
    )?;
    let dir = temp_dir("relu")?;
    let opts = FigureOptions {
        svg: false,
        ..FigureOptions::default()
    };
    let files = write_all_plots(&log, &dir, &opts)?;
    assert_eq!(
        names(&files),
        [
            "activation_means.png",
            "activation_stds.png",
            "color_dim.png",
            "dead_chart.png",
            "dead_per_layer.png",
            "gradient_histograms.png",
            "grad_data.png",
            "update_data.png",
            "loss.png",
        ]
    );
    let (w, h, inked) = inspect_png(&dir.join("color_dim.png"))?;
    assert_eq!((w, h), (1200, 800));
    assert!(inked > 0.2, "the heat map should fill its panels ({inked})");

    // A directory that does not exist: an error naming the figure and the file.
    let missing = dir.join("no-such-dir");
    let e = write_all_plots(&log, &missing, &opts)
        .err()
        .ok_or("expected an error")?;
    assert!(matches!(e, DiagError::Plot(_)), "{e:?}");
    assert!(e.to_string().contains("activation_means.png"), "{e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
