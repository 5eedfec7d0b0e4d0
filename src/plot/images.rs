//! Grids of grey-scale images (particle images beside their renders) as PNG.

use super::canvas::Canvas;

/// Draws square images (n × n, row-major, y down) in a grid of `columns`, each scaled to
/// `cell` pixels and contrast-stretched to its own mean ± 3 standard deviations.
///
/// # Panics
/// If an image is not n² long.
pub fn image_grid(images: &[&[f32]], n: usize, columns: usize, cell: usize) -> Canvas {
    let columns = columns.max(1);
    let rows = images.len().div_ceil(columns).max(1);
    let gap = 4;
    let mut c = Canvas::new(columns * (cell + gap) + gap, rows * (cell + gap) + gap);
    for (k, image) in images.iter().enumerate() {
        assert_eq!(image.len(), n * n, "image length");
        let len = image.len() as f64;
        let mean = image.iter().map(|&v| v as f64).sum::<f64>() / len;
        let sd = (image.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / len).sqrt().max(1e-30);
        let (x0, y0) = (gap + (k % columns) * (cell + gap), gap + (k / columns) * (cell + gap));
        for y in 0..cell {
            for x in 0..cell {
                let v = image[(y * n / cell) * n + x * n / cell] as f64;
                let g = (((v - mean) / (6.0 * sd) + 0.5).clamp(0.0, 1.0) * 255.0) as u8;
                c.set((x0 + x) as i64, (y0 + y) as i64, [g, g, g]);
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bright_pixels_stay_bright_and_cells_are_placed_in_order() {
        let mut a = vec![0.0f32; 16];
        a[0] = 10.0; // top-left pixel of the first image
        let b = vec![1.0f32; 16];
        let c = image_grid(&[&a, &b], 4, 2, 8);
        assert_eq!(c.width(), 2 * 12 + 4);
        assert!(c.get(4, 4)[0] > 200, "bright corner");
        assert!(c.get(10, 10)[0] < 128, "dark rest");
        // a flat image maps to mid grey
        assert_eq!(c.get(4 + 12 + 3, 7)[0], 127);
    }
}
