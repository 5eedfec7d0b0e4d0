//! Sums of isotropic 3D Gaussians (pseudo-atoms, atoms): rendered into a volume, or projected
//! straight into particle images in real space.
//!
//! Positions are in Å relative to the box centre (voxel n/2 of a map; pixel n − n/2 of an image,
//! see [`crate::fft`]); a Gaussian of amplitude a and width σ has density a·exp(−|r−c|²/2σ²).

use crate::array::Volume;
use crate::geometry::Mat3;
use crate::io::atoms::Atom;

/// Gaussians with their centres (Å, relative to the box centre), amplitudes and widths (Å).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GaussianSet {
    /// Centres in Å relative to the box centre.
    pub centres: Vec<[f64; 3]>,
    /// Peak densities.
    pub amplitudes: Vec<f64>,
    /// Standard deviations in Å.
    pub sigmas: Vec<f64>,
}

/// Electrons of a neutral atom of `element` (the weight of an atom's Gaussian).
pub fn electrons(element: &str) -> f64 {
    match element.trim().to_ascii_uppercase().as_str() {
        "H" => 1.0,
        "C" => 6.0,
        "N" => 7.0,
        "O" => 8.0,
        "NA" => 11.0,
        "MG" => 12.0,
        "P" => 15.0,
        "S" => 16.0,
        "CL" => 17.0,
        "K" => 19.0,
        "CA" => 20.0,
        "MN" => 25.0,
        "FE" => 26.0,
        "ZN" => 30.0,
        "SE" => 34.0,
        _ => 6.0,
    }
}

impl GaussianSet {
    /// One Gaussian per atom, weighted by its electrons, of width 0.225 × `resolution` Å
    /// (Chimera's molmap convention), centred on `centre` (Å, in the model's frame).
    pub fn from_atoms(atoms: &[Atom], centre: [f64; 3], resolution: f64) -> Self {
        let sigma = 0.225 * resolution;
        GaussianSet {
            centres: atoms.iter().map(|a| [0, 1, 2].map(|k| a.position[k] - centre[k])).collect(),
            // normalised so that the integral of each Gaussian is its electron count
            amplitudes: atoms
                .iter()
                .map(|a| electrons(&a.element) / (std::f64::consts::TAU * sigma * sigma).powf(1.5))
                .collect(),
            sigmas: vec![sigma; atoms.len()],
        }
    }

    /// Number of Gaussians.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.centres.is_empty()
    }

    /// The Gaussians sampled at voxel centres of an n³ box of `pixel_size` Å (to 4σ).
    pub fn render_volume(&self, n: usize, pixel_size: f64) -> Volume {
        let mut out = Volume::zeros([n; 3]);
        let c = (n / 2) as f64;
        for ((centre, &a), &sigma) in self.centres.iter().zip(&self.amplitudes).zip(&self.sigmas) {
            let p = centre.map(|v| v / pixel_size + c);
            let s = sigma / pixel_size;
            let reach = (4.0 * s).ceil();
            let lo = p.map(|v| ((v - reach).floor().max(0.0)) as usize);
            let hi = p.map(|v| ((v + reach).ceil().min(n as f64 - 1.0)).max(-1.0) as i64);
            let inv = -0.5 / (s * s);
            for z in lo[2] as i64..=hi[2] {
                let dz = z as f64 - p[2];
                for y in lo[1] as i64..=hi[1] {
                    let dy = y as f64 - p[1];
                    for x in lo[0] as i64..=hi[0] {
                        let dx = x as f64 - p[0];
                        let i = out.index(x as usize, y as usize, z as usize);
                        out.data[i] += (a * ((dx * dx + dy * dy + dz * dz) * inv).exp()) as f32;
                    }
                }
            }
        }
        out
    }

    /// Adds the projection of the Gaussians at rotation `a`, translated by −`origin_px`, to an
    /// n × n image (`out`, pixel values = line integrals in voxel units, as
    /// [`crate::imaging::ImageRenderer::render`] gives for the rendered volume).
    pub fn project(&self, a: &Mat3, origin_px: [f64; 2], n: usize, pixel_size: f64, out: &mut [f32]) {
        assert_eq!(out.len(), n * n, "image length");
        let c = (n - n / 2) as f64;
        for ((centre, &amp), &sigma) in self.centres.iter().zip(&self.amplitudes).zip(&self.sigmas) {
            let q = [0, 1].map(|r| (0..3).map(|k| a[r][k] * centre[k]).sum::<f64>() / pixel_size);
            let p = [q[0] + c - origin_px[0], q[1] + c - origin_px[1]];
            let s = sigma / pixel_size;
            // ∫ a·exp(−z²/2s²) dz = a·√(2π)·s
            let peak = amp * (std::f64::consts::TAU).sqrt() * s;
            let reach = (4.0 * s).ceil();
            let inv = -0.5 / (s * s);
            let (x0, x1) =
                (((p[0] - reach).floor().max(0.0)) as usize, (p[0] + reach).ceil().min(n as f64 - 1.0));
            let (y0, y1) =
                (((p[1] - reach).floor().max(0.0)) as usize, (p[1] + reach).ceil().min(n as f64 - 1.0));
            if x1 < 0.0 || y1 < 0.0 {
                continue;
            }
            for y in y0..=y1 as usize {
                let dy = y as f64 - p[1];
                for x in x0..=x1 as usize {
                    let dx = x as f64 - p[0];
                    out[y * n + x] += (peak * ((dx * dx + dy * dy) * inv).exp()) as f32;
                }
            }
        }
    }
}
