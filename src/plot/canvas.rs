//! An RGB raster with lines, rectangles and 8×8 bitmap text, written as PNG.

use std::path::Path;

use font8x8::UnicodeFonts;

use crate::error::{Error, Result};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// A white RGB raster, origin at the top left.
pub struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: usize, height: usize) -> Self {
        Canvas { width, height, pixels: vec![255; width * height * 3] }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The colour at (x, y).
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = 3 * (y * self.width + x);
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Sets a pixel (ignored outside the canvas).
    pub fn set(&mut self, x: i64, y: i64, colour: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&colour);
        }
    }

    /// Fills a rectangle.
    pub fn fill_rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, colour: Rgb) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, colour);
            }
        }
    }

    /// A line of the given thickness (pixels) from (x0, y0) to (x1, y1).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), thickness: f64, colour: Rgb) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) * 2.0).ceil().max(1.0) as usize;
        let r = (thickness / 2.0).max(0.5);
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            let ri = r.ceil() as i64;
            for dy in -ri..=ri {
                for dx in -ri..=ri {
                    if ((dx * dx + dy * dy) as f64) <= r * r {
                        self.set(x.round() as i64 + dx, y.round() as i64 + dy, colour);
                    }
                }
            }
        }
    }

    /// Width of `text` in pixels at `scale` (8 pixels per character per scale unit).
    pub fn text_width(text: &str, scale: usize) -> usize {
        text.chars().count() * 8 * scale
    }

    /// Draws `text` with its top-left corner at (x, y); characters without a glyph show as '?'.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: usize, colour: Rgb) {
        for (k, c) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(c)
                .or_else(|| font8x8::LATIN_FONTS.get(c))
                .or_else(|| font8x8::GREEK_FONTS.get(c))
                .unwrap_or_else(|| font8x8::BASIC_FONTS.get('?').expect("'?' has a glyph"));
            let left = x + (k * 8 * scale) as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        let (px, py) = (left + (col * scale) as i64, y + (row * scale) as i64);
                        self.fill_rect(px, py, scale as i64, scale as i64, colour);
                    }
                }
            }
        }
    }

    /// Draws `text` rotated 90° anticlockwise (reading upwards), its bottom-left corner at (x, y).
    pub fn text_vertical(&mut self, x: i64, y: i64, text: &str, scale: usize, colour: Rgb) {
        let w = Self::text_width(text, scale);
        let mut strip = Canvas::new(w, 8 * scale);
        strip.text(0, 0, text, scale, colour);
        for sy in 0..strip.height {
            for sx in 0..strip.width {
                let c = strip.get(sx, sy);
                if c != [255, 255, 255] {
                    self.set(x + sy as i64, y - sx as i64, c);
                }
            }
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG, atomically.
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer =
                encoder.write_header().map_err(|e| Error::format(e.to_string()).with_path(path))?;
            writer
                .write_image_data(&self.pixels)
                .map_err(|e| Error::format(e.to_string()).with_path(path))?;
        }
        crate::io::atomic::write_atomic(path, &bytes)
    }
}
