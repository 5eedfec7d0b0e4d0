//! Scatter plots of embeddings, coloured by a per-point value (with a colour bar), a category
//! (with a legend) or a colour of its own.

use super::canvas::{Canvas, Rgb};
use super::chart::{Axes, PALETTE, format_tick};

/// How the points are coloured.
#[derive(Clone, Debug)]
pub enum Colouring {
    /// A value per point, mapped through viridis between its 2nd and 98th percentiles.
    Values {
        /// The values.
        values: Vec<f64>,
        /// What they are (colour bar label).
        label: String,
    },
    /// A category per point (0-based), with a name per category.
    Categories {
        /// The category of each point.
        labels: Vec<usize>,
        /// Names of the categories.
        names: Vec<String>,
    },
    /// A colour per point, explained by a legend line.
    Colours {
        /// The colours.
        colours: Vec<Rgb>,
        /// What they mean.
        legend: String,
    },
}

/// A scatter plot.
#[derive(Clone, Debug)]
pub struct ScatterPlot {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// Their colours.
    pub colouring: Colouring,
}

/// Viridis at t ∈ [0, 1] (eight stops, linearly interpolated).
pub fn viridis(t: f64) -> Rgb {
    const STOPS: [Rgb; 8] = [
        [68, 1, 84],
        [70, 50, 127],
        [54, 92, 141],
        [39, 127, 142],
        [31, 161, 135],
        [74, 194, 109],
        [159, 218, 58],
        [253, 231, 37],
    ];
    let s = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (s.floor() as usize).min(STOPS.len() - 2);
    let f = s - k as f64;
    [0, 1, 2].map(|c| (STOPS[k][c] as f64 * (1.0 - f) + STOPS[k + 1][c] as f64 * f).round() as u8)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl ScatterPlot {
    /// Renders the plot.
    pub fn render(&self, width: usize, height: usize) -> Canvas {
        let mut c = Canvas::new(width, height);
        let plot_width = width - 130;
        let axes = Axes::fit(plot_width, height, self.points.iter().copied(), None, None);
        let black = [0, 0, 0];
        axes.draw(&mut c, &self.title, &self.x_label, &self.y_label, None);
        let colours: Vec<Rgb> = match &self.colouring {
            Colouring::Values { values, label } => {
                let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
                sorted.sort_by(f64::total_cmp);
                let (lo, hi) = if sorted.is_empty() {
                    (0.0, 1.0)
                } else {
                    (percentile(&sorted, 0.02), percentile(&sorted, 0.98))
                };
                let span = if hi > lo { hi - lo } else { 1.0 };
                let (x, top, h) = (plot_width as i64 + 20, axes.top as i64 + 20, axes.height as i64 - 40);
                for r in 0..h {
                    c.fill_rect(x, top + r, 16, 1, viridis(1.0 - r as f64 / (h - 1).max(1) as f64));
                }
                c.text(x + 20, top - 4, &format_tick(hi), 1, black);
                c.text(x + 20, top + h - 4, &format_tick(lo), 1, black);
                c.text(x - 10, top - 18, label, 1, black);
                values
                    .iter()
                    .map(|&v| if v.is_finite() { viridis((v - lo) / span) } else { [180; 3] })
                    .collect()
            }
            Colouring::Categories { labels, names } => {
                for (k, name) in names.iter().enumerate().take(30) {
                    let y = axes.top as i64 + 8 + 14 * k as i64;
                    c.fill_rect(plot_width as i64 + 10, y, 10, 10, PALETTE[k % PALETTE.len()]);
                    c.text(plot_width as i64 + 26, y + 1, name, 1, black);
                }
                labels.iter().map(|&l| PALETTE[l % PALETTE.len()]).collect()
            }
            Colouring::Colours { colours, legend } => {
                for (k, line) in legend.lines().enumerate() {
                    c.text(plot_width as i64 + 4, axes.top as i64 + 8 + 14 * k as i64, line, 1, black);
                }
                colours.clone()
            }
        };
        for (&(x, y), colour) in self.points.iter().zip(colours) {
            if x.is_finite() && y.is_finite() && axes.contains(x, y) {
                c.fill_rect(axes.px(x) as i64 - 1, axes.py(y) as i64 - 1, 3, 3, colour);
            }
        }
        c
    }

    /// Renders and writes the plot as a PNG (760 × 560).
    ///
    /// # Errors
    /// Write failures.
    pub fn write_png(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        self.render(760, 560).write_png(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(-3.0), viridis(0.0));
    }

    #[test]
    fn points_are_drawn_in_their_colour_at_their_place() {
        let plot = ScatterPlot {
            title: String::new(),
            x_label: String::new(),
            y_label: String::new(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            colouring: Colouring::Colours { colours: vec![[255, 0, 0], [0, 0, 255]], legend: String::new() },
        };
        let c = plot.render(760, 560);
        let axes = Axes::fit(630, 560, plot.points.iter().copied(), None, None);
        assert_eq!(c.get(axes.px(0.0) as usize, axes.py(0.0) as usize), [255, 0, 0]);
        assert_eq!(c.get(axes.px(1.0) as usize, axes.py(1.0) as usize), [0, 0, 255]);
    }
}
