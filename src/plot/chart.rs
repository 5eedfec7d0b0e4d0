//! Line charts (FSC curves, training losses) as PNG.

use super::canvas::{Canvas, Rgb};

/// Colours of successive series.
pub const PALETTE: [Rgb; 6] =
    [[31, 119, 180], [214, 39, 40], [44, 160, 44], [255, 127, 14], [148, 103, 189], [23, 190, 207]];

/// One curve.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points (x, y), in order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart with axes, ticks, labels, a legend and optional horizontal reference lines.
#[derive(Clone, Debug, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// X range; `None` fits the data.
    pub x_range: Option<(f64, f64)>,
    /// Y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// The curves.
    pub series: Vec<Series>,
    /// Horizontal reference lines (y, label).
    pub hlines: Vec<(f64, String)>,
    /// Tick labels for the x axis from the tick value (default: the value).
    pub x_tick_label: Option<fn(f64) -> String>,
    /// Draw each point as a dot instead of joining the points (a scatter plot).
    pub dots: bool,
}

/// About five round tick values covering [lo, hi].
pub fn nice_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if hi.is_nan() || lo.is_nan() || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let first = (lo / step).ceil() * step;
    (0..).map(|k| first + k as f64 * step).take_while(|t| *t <= hi + step * 1e-9).collect()
}

pub(crate) fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = (-(v.abs().log10().floor()) + 1.0).clamp(0.0, 4.0) as usize;
    format!("{v:.digits$}")
}

/// The plot area of a chart: its place on the canvas and the data ranges it shows.
#[derive(Clone, Copy, Debug)]
pub struct Axes {
    /// Left edge of the plot area (pixels).
    pub left: f64,
    /// Top edge of the plot area (pixels).
    pub top: f64,
    /// Width of the plot area (pixels).
    pub width: f64,
    /// Height of the plot area (pixels).
    pub height: f64,
    /// X range shown.
    pub x: (f64, f64),
    /// Y range shown.
    pub y: (f64, f64),
    canvas_width: f64,
    canvas_height: f64,
}

impl Axes {
    /// Axes on a `width` × `height` canvas showing the given ranges, or those of `points`.
    pub fn fit(
        width: usize,
        height: usize,
        points: impl Iterator<Item = (f64, f64)>,
        x_range: Option<(f64, f64)>,
        y_range: Option<(f64, f64)>,
    ) -> Self {
        let (mut x0, mut x1, mut y0, mut y1) =
            (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        let (left, right, top, bottom) = (80.0, 20.0, 40.0, 60.0);
        Axes {
            left,
            top,
            width: width as f64 - left - right,
            height: height as f64 - top - bottom,
            x: x_range.unwrap_or(if x0 < x1 { (x0, x1) } else { (0.0, 1.0) }),
            y: y_range.unwrap_or(if y0 < y1 { (y0, y1) } else { (0.0, 1.0) }),
            canvas_width: width as f64,
            canvas_height: height as f64,
        }
    }

    /// Canvas column of data x.
    pub fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.0) / (self.x.1 - self.x.0) * self.width
    }

    /// Canvas row of data y.
    pub fn py(&self, y: f64) -> f64 {
        self.top + (1.0 - (y - self.y.0) / (self.y.1 - self.y.0)) * self.height
    }

    /// Whether data (x, y) lies inside the shown ranges.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        x >= self.x.0 && x <= self.x.1 && y >= self.y.0 && y <= self.y.1
    }

    /// Grid, ticks, frame, title and axis labels.
    pub fn draw(
        &self,
        c: &mut Canvas,
        title: &str,
        x_label: &str,
        y_label: &str,
        x_tick: Option<fn(f64) -> String>,
    ) {
        let (black, grey) = ([0, 0, 0], [220, 220, 220]);
        let (left, top, pw, ph) = (self.left, self.top, self.width, self.height);
        for t in nice_ticks(self.y.0, self.y.1) {
            c.line((left, self.py(t)), (left + pw, self.py(t)), 1.0, grey);
            let label = format_tick(t);
            let w = Canvas::text_width(&label, 1) as i64;
            c.text(left as i64 - 8 - w, self.py(t) as i64 - 4, &label, 1, black);
        }
        for t in nice_ticks(self.x.0, self.x.1) {
            c.line((self.px(t), top), (self.px(t), top + ph), 1.0, grey);
            let label = x_tick.map_or_else(|| format_tick(t), |f| f(t));
            let w = Canvas::text_width(&label, 1) as f64;
            c.text((self.px(t) - w / 2.0) as i64, (top + ph + 8.0) as i64, &label, 1, black);
        }
        c.line((left, top), (left, top + ph), 1.0, black);
        c.line((left, top + ph), (left + pw, top + ph), 1.0, black);
        let tw = Canvas::text_width(title, 2) as f64;
        c.text(((self.canvas_width - tw) / 2.0) as i64, 10, title, 2, black);
        let xw = Canvas::text_width(x_label, 1) as f64;
        c.text((left + (pw - xw) / 2.0) as i64, (self.canvas_height - 24.0) as i64, x_label, 1, black);
        let yw = Canvas::text_width(y_label, 1) as f64;
        c.text_vertical(12, (top + (ph + yw) / 2.0) as i64, y_label, 1, black);
    }
}

impl LineChart {
    /// Renders the chart.
    pub fn render(&self, width: usize, height: usize) -> Canvas {
        let mut c = Canvas::new(width, height);
        let points = self.series.iter().flat_map(|s| s.points.iter().copied());
        let axes = Axes::fit(width, height, points, self.x_range, self.y_range);
        axes.draw(&mut c, &self.title, &self.x_label, &self.y_label, self.x_tick_label);
        let (left, top, pw) = (axes.left, axes.top, axes.width);
        let (y0, y1) = axes.y;
        let px = |x: f64| axes.px(x);
        let py = |y: f64| axes.py(y);
        let black = [0, 0, 0];
        for (y, label) in &self.hlines {
            if *y > y0 && *y < y1 {
                c.line((left, py(*y)), (left + pw, py(*y)), 1.0, [120, 120, 120]);
                c.text(
                    (left + pw - Canvas::text_width(label, 1) as f64 - 4.0) as i64,
                    py(*y) as i64 - 11,
                    label,
                    1,
                    [90, 90, 90],
                );
            }
        }
        for (k, s) in self.series.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            let inside = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite();
            if self.dots {
                for &(x, y) in s.points.iter().filter(|p| inside(p) && axes.contains(p.0, p.1)) {
                    c.fill_rect(px(x) as i64 - 1, py(y) as i64 - 1, 3, 3, colour);
                }
            }
            for pair in s.points.windows(2).filter(|w| !self.dots && inside(&w[0]) && inside(&w[1])) {
                let clamp = |y: f64| y.clamp(y0, y1);
                c.line(
                    (px(pair[0].0), py(clamp(pair[0].1))),
                    (px(pair[1].0), py(clamp(pair[1].1))),
                    2.0,
                    colour,
                );
            }
            let ly = top as i64 + 8 + 14 * k as i64;
            let lx = (left + pw) as i64 - 170;
            c.fill_rect(lx, ly + 3, 16, 3, colour);
            c.text(lx + 22, ly, &s.label, 1, black);
        }
        c
    }

    /// Renders and writes the chart as a PNG (800 × 500).
    pub fn write_png(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        self.render(800, 500).write_png(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let t = nice_ticks(0.0, 1.0);
        let expected = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), expected.len());
        assert!(t.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-12));
        let t = nice_ticks(-0.13, 0.52);
        assert!(t.first().unwrap() >= &-0.13 && t.last().unwrap() <= &0.52);
        assert!((3..=8).contains(&t.len()));
    }

    #[test]
    fn a_curve_is_drawn_where_its_points_are() {
        let chart = LineChart {
            x_range: Some((0.0, 1.0)),
            y_range: Some((0.0, 1.0)),
            series: vec![Series { label: "a".into(), points: vec![(0.0, 0.5), (1.0, 0.5)] }],
            ..Default::default()
        };
        let c = chart.render(800, 500);
        // y = 0.5 lies half way between top (40) and bottom (440): row 240, in the first colour
        assert_eq!(c.get(400, 240), PALETTE[0]);
        assert_eq!(c.get(400, 300), [255, 255, 255]);
    }
}
