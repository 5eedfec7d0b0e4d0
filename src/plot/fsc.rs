//! FSC curves against spatial frequency, labelled in Å, with the 0.143 and 0.5 thresholds.

use super::{LineChart, Series};

/// A chart of FSC curves (label, one value per shell) of an n-pixel box at `pixel_size` Å.
pub fn fsc_chart(title: &str, curves: &[(&str, &[f64])], n: usize, pixel_size: f64) -> LineChart {
    let frequency = |s: usize| s as f64 / (n as f64 * pixel_size);
    let series = curves
        .iter()
        .map(|(label, fsc)| Series {
            label: label.to_string(),
            points: fsc.iter().enumerate().skip(1).map(|(s, f)| (frequency(s), *f)).collect(),
        })
        .collect();
    LineChart {
        title: title.to_string(),
        x_label: "resolution (Å)".into(),
        y_label: "Fourier shell correlation".into(),
        x_range: Some((0.0, frequency(n / 2))),
        y_range: Some((-0.1, 1.05)),
        series,
        hlines: vec![(0.143, "0.143".into()), (0.5, "0.5".into())],
        x_tick_label: Some(|f| if f > 0.0 { format!("{:.1}", 1.0 / f) } else { "inf".into() }),
        dots: false,
    }
}
