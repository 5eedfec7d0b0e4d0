//! Plots as PNG files, drawn without a plotting library: a raster, 8×8 bitmap text, line charts,
//! scatter plots.

mod canvas;
mod chart;
mod fsc;
mod images;
mod scatter;

pub use canvas::{Canvas, Rgb};
pub use chart::{Axes, LineChart, PALETTE, Series, nice_ticks};
pub use fsc::fsc_chart;
pub use images::image_grid;
pub use scatter::{Colouring, ScatterPlot, viridis};
