//! Simulated particle datasets with known ground truth, from a map.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::array::Volume;
use crate::error::{Error, Result};
use crate::geometry::euler_to_matrix;
use crate::imaging::{Ctf, FourierProjector, ImageRenderer};
use crate::io::mrc::{Mode, MrcStackWriter};
use crate::io::star::{DataBlock, StarFile, Table};
use crate::particles::{OpticsGroup, ParticleCtf};
use crate::rng::Rng;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimulateOptions {
    /// Number of particles.
    pub count: usize,
    /// Pixel size in Å (the map's).
    pub pixel_size: f64,
    /// Signal-to-noise ratio (see [`simulate`]); `None` for noise-free images.
    pub snr: Option<f64>,
    /// Defocus range in Å (underfocus positive), drawn uniformly; astigmatism up to `astigmatism`.
    pub defocus_range: [f64; 2],
    /// Largest |defocus U − defocus V| in Å.
    pub astigmatism: f64,
    /// Acceleration voltage in kV.
    pub voltage_kv: f64,
    /// Spherical aberration in mm.
    pub spherical_aberration_mm: f64,
    /// Amplitude contrast.
    pub amplitude_contrast: f64,
    /// Apply the CTF.
    pub ctf: bool,
    /// Standard deviation of the particles' offsets from the box centre, in Å.
    pub shift_sigma_angstrom: f64,
    /// Seed: the same seed gives the same dataset, whatever the thread count.
    pub seed: u64,
    /// Poses (rot, tilt, psi) to use in turn instead of uniformly random ones.
    pub poses_from: Option<Vec<[f64; 3]>>,
    /// Standard deviation (degrees) of the rotation error written into the STAR file (the truth
    /// keeps the exact pose), as a consensus refinement of flexible particles would have.
    pub pose_error_deg: f64,
    /// Standard deviation (Å, per axis) of the origin error written into the STAR file.
    pub shift_error_angstrom: f64,
    /// For atomic sources, write every atom's true displacement per particle (`displacements.npy`).
    pub write_displacements: bool,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            count: 1000,
            pixel_size: 1.0,
            snr: Some(0.1),
            defocus_range: [10000.0, 25000.0],
            astigmatism: 500.0,
            voltage_kv: 300.0,
            spherical_aberration_mm: 2.7,
            amplitude_contrast: 0.1,
            ctf: true,
            shift_sigma_angstrom: 0.0,
            seed: 0,
            poses_from: None,
            pose_error_deg: 0.0,
            shift_error_angstrom: 0.0,
            write_displacements: false,
        }
    }
}

/// The true parameters of one simulated particle.
#[derive(Clone, Debug)]
pub struct TruePose {
    /// rot, tilt, psi in degrees.
    pub euler_deg: [f64; 3],
    /// Origin (x, y) in Å, RELION's sign.
    pub origin_angstrom: [f64; 2],
    /// CTF parameters.
    pub ctf: ParticleCtf,
    /// Half set.
    pub random_subset: u8,
    /// Conformation: the position t ∈ [0, 1] along a path, or one amplitude (Å) per normal mode;
    /// empty for a single map.
    pub conformation: Vec<f64>,
}

/// Draws every particle's parameters from the seed (independent of threads); `space` is the
/// number of conformation coordinates and the range each is drawn from uniformly.
pub fn draw_poses(options: &SimulateOptions, space: (usize, f64, f64)) -> Vec<TruePose> {
    let mut rng = Rng::new(options.seed);
    (0..options.count)
        .map(|i| {
            let uniform = rng.uniform_euler();
            let euler_deg = match &options.poses_from {
                Some(list) if !list.is_empty() => list[i % list.len()],
                _ => uniform,
            };
            let origin_angstrom =
                [rng.normal() * options.shift_sigma_angstrom, rng.normal() * options.shift_sigma_angstrom];
            let u = rng.range(options.defocus_range[0], options.defocus_range[1]);
            let v = u - rng.range(0.0, options.astigmatism);
            let ctf = ParticleCtf {
                defocus_u_angstrom: u,
                defocus_v_angstrom: v,
                defocus_angle_deg: rng.range(0.0, 180.0),
                ..Default::default()
            };
            let random_subset = 1 + (rng.next_u64() & 1) as u8;
            let conformation = (0..space.0).map(|_| rng.range(space.1, space.2)).collect();
            TruePose { euler_deg, origin_angstrom, ctf, random_subset, conformation }
        })
        .collect()
}

/// The poses written into the STAR file: the true ones with a random rotation of angle
/// |N(0, σ)| about a uniform axis and a N(0, σ_s) origin error per axis (from their own seed).
pub fn perturbed_poses(poses: &[TruePose], options: &SimulateOptions) -> Vec<TruePose> {
    use crate::geometry::{axis_angle_to_matrix, mat_mul, matrix_to_euler};
    let mut rng = Rng::new(options.seed ^ 0x0E44_0E44_0E44);
    poses
        .iter()
        .map(|p| {
            let mut q = p.clone();
            if options.pose_error_deg > 0.0 {
                let angle = (rng.normal() * options.pose_error_deg).to_radians();
                let axis = [rng.normal(), rng.normal(), rng.normal()];
                let norm = axis.iter().map(|c| c * c).sum::<f64>().sqrt().max(1e-12);
                let error = axis_angle_to_matrix(axis.map(|c| c / norm * angle));
                let [rot, tilt, psi] = p.euler_deg;
                let (r, t, s) = matrix_to_euler(&mat_mul(&error, &euler_to_matrix(rot, tilt, psi)));
                q.euler_deg = [r, t, s];
            }
            if options.shift_error_angstrom > 0.0 {
                for o in &mut q.origin_angstrom {
                    *o += rng.normal() * options.shift_error_angstrom;
                }
            }
            q
        })
        .collect()
}

/// The optics group of a simulation.
pub fn optics_group(options: &SimulateOptions, box_size: usize) -> OpticsGroup {
    OpticsGroup {
        number: 1,
        name: "opticsGroup1".into(),
        pixel_size: options.pixel_size,
        image_size: Some(box_size),
        voltage_kv: options.voltage_kv,
        spherical_aberration_mm: options.spherical_aberration_mm,
        amplitude_contrast: options.amplitude_contrast,
        ctf_premultiplied: false,
    }
}

/// What the particles are images of.
pub enum Source {
    /// One map (box n, centre n/2): every particle shows the same structure.
    Map(Volume),
    /// Atomic models. With one frame and `modes`, each particle is the model displaced along
    /// normal modes with independent uniform amplitudes; with several frames, a path through
    /// them, interpolated linearly between consecutive frames, each particle's position along it
    /// uniform in [0, 1]. Atoms become Gaussians weighted by their electrons, of width
    /// 0.225 × `resolution` Å, centred on the first frame's centroid.
    Atoms {
        /// Frames of matched atoms (same atoms, same order).
        frames: Vec<Vec<crate::io::atoms::Atom>>,
        /// Normal-mode motion of the first frame.
        modes: Option<AtomModes>,
        /// Resolution of the atomic density in Å.
        resolution: f64,
        /// Box size of the particles.
        box_size: usize,
    },
}

/// Motion along normal modes: per mode, the displacement of every atom for an amplitude of 1 Å
/// (RMS over the atoms), and the largest amplitude drawn.
#[derive(Clone, Debug)]
pub struct AtomModes {
    /// `displacements[k][i]`: displacement of atom i along mode k, RMS 1 Å over the atoms.
    pub displacements: Vec<Vec<[f64; 3]>>,
    /// Amplitudes are drawn uniformly in [−amplitude, amplitude] Å.
    pub amplitude: f64,
}

impl AtomModes {
    /// ANM modes of the Cα (P for nucleotides) of `atoms`; every atom follows its residue's Cα.
    pub fn anm(atoms: &[crate::io::atoms::Atom], count: usize, cutoff: f64, amplitude: f64) -> Self {
        let is_node = |a: &crate::io::atoms::Atom| a.name == "CA" || a.name == "P";
        let nodes: Vec<&crate::io::atoms::Atom> = atoms.iter().filter(|a| is_node(a)).collect();
        let coords: Vec<[f64; 3]> = nodes.iter().map(|a| a.position).collect();
        let modes = crate::model::anm_modes(&coords, cutoff, 1.0, count);
        let residue =
            |a: &crate::io::atoms::Atom| (a.chain.clone(), a.residue_number, a.insertion_code.clone());
        let node_of: std::collections::HashMap<_, usize> =
            nodes.iter().enumerate().map(|(k, a)| (residue(a), k)).collect();
        let scale = (nodes.len() as f64).sqrt(); // unit vector → RMS 1 Å per node
        let displacements = modes
            .vectors
            .iter()
            .map(|v| {
                atoms
                    .iter()
                    .map(|a| match node_of.get(&residue(a)) {
                        Some(&k) => [v[3 * k] * scale, v[3 * k + 1] * scale, v[3 * k + 2] * scale],
                        None => [0.0; 3],
                    })
                    .collect()
            })
            .collect();
        AtomModes { displacements, amplitude }
    }
}

impl Source {
    /// Number of conformation coordinates per particle and the range each is drawn from.
    pub fn conformation_space(&self) -> (usize, f64, f64) {
        match self {
            Source::Map(_) => (0, 0.0, 0.0),
            Source::Atoms { modes: Some(m), .. } => (m.displacements.len(), -m.amplitude, m.amplitude),
            Source::Atoms { .. } => (1, 0.0, 1.0),
        }
    }

    fn box_size(&self) -> usize {
        match self {
            Source::Map(v) => v.shape[0],
            Source::Atoms { box_size, .. } => *box_size,
        }
    }

    /// The Gaussians at a conformation (see [`TruePose::conformation`]).
    pub fn gaussians_at(&self, conformation: &[f64]) -> Option<crate::imaging::GaussianSet> {
        let Source::Atoms { frames, resolution, modes, .. } = self else { return None };
        let centre = centroid(&frames[0]);
        if let Some(modes) = modes {
            let atoms: Vec<crate::io::atoms::Atom> = frames[0]
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let mut atom = a.clone();
                    for (d, amplitude) in modes.displacements.iter().zip(conformation) {
                        (0..3).for_each(|k| atom.position[k] += amplitude * d[i][k]);
                    }
                    atom
                })
                .collect();
            return Some(crate::imaging::GaussianSet::from_atoms(&atoms, centre, *resolution));
        }
        let t = conformation.first().copied().unwrap_or(0.0);
        let s = t.clamp(0.0, 1.0) * (frames.len() - 1) as f64;
        let k = (s.floor() as usize).min(frames.len() - 2);
        let f = s - k as f64;
        let atoms: Vec<crate::io::atoms::Atom> = frames[k]
            .iter()
            .zip(&frames[k + 1])
            .map(|(a, b)| {
                let mut atom = a.clone();
                atom.position = [0, 1, 2].map(|d| (1.0 - f) * a.position[d] + f * b.position[d]);
                atom
            })
            .collect();
        Some(crate::imaging::GaussianSet::from_atoms(&atoms, centre, *resolution))
    }
}

/// Mean position of atoms.
pub fn centroid(atoms: &[crate::io::atoms::Atom]) -> [f64; 3] {
    let n = atoms.len().max(1) as f64;
    [0, 1, 2].map(|d| atoms.iter().map(|a| a.position[d]).sum::<f64>() / n)
}

/// Keeps, in every frame, only the atoms present in all frames (matched by chain, residue
/// number, insertion code and atom name; first alternate location), in the first frame's order.
pub fn match_atoms(models: &[Vec<crate::io::atoms::Atom>]) -> Vec<Vec<crate::io::atoms::Atom>> {
    use std::collections::HashMap;
    type Key = (String, i64, String, String);
    let key = |a: &crate::io::atoms::Atom| -> Key {
        (a.chain.clone(), a.residue_number, a.insertion_code.clone(), a.name.clone())
    };
    let maps: Vec<HashMap<Key, &crate::io::atoms::Atom>> = models
        .iter()
        .map(|atoms| {
            let mut m = HashMap::new();
            for a in atoms.iter().filter(|a| !a.hetero) {
                m.entry(key(a)).or_insert(a);
            }
            m
        })
        .collect();
    let mut order: Vec<Key> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for a in models[0].iter().filter(|a| !a.hetero) {
        let k = key(a);
        if maps.iter().all(|m| m.contains_key(&k)) && seen.insert(k.clone()) {
            order.push(k);
        }
    }
    maps.iter().map(|m| order.iter().map(|k| (*m[k]).clone()).collect()).collect()
}

/// Renders one particle without noise: the structure at the particle's conformation, at its
/// pose, CTF-modulated, translated by −origin.
pub struct ParticleRenderer<'a> {
    source: &'a Source,
    projector: Option<FourierProjector>,
    optics: OpticsGroup,
    ctf_on: bool,
}

impl<'a> ParticleRenderer<'a> {
    /// A renderer of `source`'s particles as `simulate` draws them (with the CTF when `ctf_on`).
    pub fn new(source: &'a Source, optics: OpticsGroup, ctf_on: bool) -> Self {
        let projector = match source {
            Source::Map(map) => Some(FourierProjector::new(map, 2)),
            Source::Atoms { .. } => None,
        };
        ParticleRenderer { source, projector, optics, ctf_on }
    }

    /// The noise-free image (n × n) of the particle `pose` into `out`; `ctf` (half plane) and
    /// `centred` (n × n) are scratch.
    pub fn render(
        &self,
        renderer: &mut ImageRenderer,
        pose: &TruePose,
        ctf: &mut [f32],
        centred: &mut [f32],
        out: &mut [f32],
    ) {
        let n = self.source.box_size();
        if self.ctf_on {
            Ctf::new(&self.optics, &pose.ctf).fill_half_plane(n, self.optics.pixel_size, false, ctf);
        }
        let [rot, tilt, psi] = pose.euler_deg;
        let a = euler_to_matrix(rot, tilt, psi);
        let origin = [
            pose.origin_angstrom[0] / self.optics.pixel_size,
            pose.origin_angstrom[1] / self.optics.pixel_size,
        ];
        let ctf = self.ctf_on.then_some(&*ctf);
        match &self.projector {
            Some(projector) => renderer.render(projector, &a, origin, ctf, out),
            None => {
                let gaussians = self.source.gaussians_at(&pose.conformation).expect("atomic source");
                centred.iter_mut().for_each(|v| *v = 0.0);
                gaussians.project(&a, [0.0; 2], n, self.optics.pixel_size, centred);
                renderer.filter(centred, origin, ctf, out);
            }
        }
    }
}

/// Simulates particles from `source` into `dir`: `particles.mrcs`, `particles.star` (RELION
/// 3.1, true poses, CTF, rlnRandomSubset), `truth.csv`, and for atomic sources the maps along the
/// path (`conformation_0.mrc` … `conformation_4.mrc` at t = 0, ¼, ½, ¾, 1, with the origin that
/// overlays them on the models in ChimeraX). Returns the noise standard deviation.
///
/// SNR is defined as RELION and CryoBench do: the variance of the noise-free, CTF-modulated
/// projections over the whole box, averaged over all particles, divided by the variance of the
/// white Gaussian noise added.
pub fn simulate(source: &Source, options: &SimulateOptions, dir: &Path) -> Result<f64> {
    let n = source.box_size();
    let particles = ParticleRenderer::new(source, optics_group(options, n), options.ctf);
    let optics = &particles.optics;
    let poses = draw_poses(options, source.conformation_space());
    let hx = n / 2 + 1;
    // pass 1: the signal variance of every noise-free image
    let signal_variance: f64 = poses
        .par_iter()
        .map_init(
            || (ImageRenderer::new(n), vec![0.0f32; hx * n], vec![0.0f32; n * n], vec![0.0f32; n * n]),
            |(renderer, ctf, centred, image), pose| {
                particles.render(renderer, pose, ctf, centred, image);
                variance(image)
            },
        )
        .sum::<f64>()
        / poses.len().max(1) as f64;
    let noise_sigma = match options.snr {
        Some(snr) if snr > 0.0 => (signal_variance / snr).sqrt(),
        Some(snr) => return Err(Error::invalid(format!("SNR must be positive, got {snr}")).in_field("--snr")),
        None => 0.0,
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))?;
    // pass 2: images in order, in parallel blocks, each particle's noise from its own seed
    let stack_path = dir.join("particles.mrcs");
    let mut writer = MrcStackWriter::create(&stack_path, [n, n], options.pixel_size as f32, Mode::Float32)?;
    for block in poses.chunks(512).enumerate() {
        let (b, block) = block;
        let images: Vec<Vec<f32>> = block
            .par_iter()
            .enumerate()
            .map_init(
                || (ImageRenderer::new(n), vec![0.0f32; hx * n], vec![0.0f32; n * n]),
                |(renderer, ctf, centred), (k, pose)| {
                    let mut image = vec![0.0f32; n * n];
                    particles.render(renderer, pose, ctf, centred, &mut image);
                    if noise_sigma > 0.0 {
                        let mut rng = Rng::new(
                            options.seed
                                ^ 0x5EED_0000_0000
                                ^ ((b * 512 + k) as u64).wrapping_mul(0x9E37_79B9),
                        );
                        image.iter_mut().for_each(|v| *v += (rng.normal() * noise_sigma) as f32);
                    }
                    image
                },
            )
            .collect();
        for image in &images {
            writer.push(image)?;
        }
    }
    writer.finish()?;
    write_star(
        &dir.join("particles.star"),
        &perturbed_poses(&poses, options),
        optics,
        "particles.mrcs",
        options.ctf,
    )?;
    write_truth(&dir.join("truth.csv"), &poses)?;
    if let Source::Atoms { frames, .. } = source {
        let centre = centroid(&frames[0]);
        let origin = centre.map(|c| (c - (n / 2) as f64 * options.pixel_size) as f32);
        if options.write_displacements {
            write_displacements(&dir.join("displacements.npy"), source, &poses)?;
        }
        for (name, conformation) in conformation_maps(source) {
            let map = source
                .gaussians_at(&conformation)
                .expect("atomic source")
                .render_volume(n, options.pixel_size);
            let path = dir.join(format!("{name}.mrc"));
            crate::io::mrc::write_volume(&path, &map, options.pixel_size as f32, origin, Mode::Float32)?;
        }
    }
    Ok(noise_sigma)
}

/// The named conformations written as maps: along a path `conformation_0` … `conformation_4`
/// (t = 0, ¼, ½, ¾, 1); for modes `mode_K_min` and `mode_K_max` (mode K at ∓ the amplitude).
pub fn conformation_maps(source: &Source) -> Vec<(String, Vec<f64>)> {
    match source {
        Source::Map(_) => Vec::new(),
        Source::Atoms { modes: Some(m), .. } => {
            let k = m.displacements.len();
            (0..k)
                .flat_map(|mode| {
                    [("min", -m.amplitude), ("max", m.amplitude)].map(|(tag, a)| {
                        let mut c = vec![0.0; k];
                        c[mode] = a;
                        (format!("mode_{}_{tag}", mode + 1), c)
                    })
                })
                .collect()
        }
        Source::Atoms { .. } => (0..5).map(|k| (format!("conformation_{k}"), vec![k as f64 / 4.0])).collect(),
    }
}

/// Every atom's displacement from the reference (conformation 0 of a path, the rest pose of
/// modes) for every particle: float32, shape (particles, atoms, 3), in Å, streamed to disk.
fn write_displacements(path: &Path, source: &Source, poses: &[TruePose]) -> Result<()> {
    let (dims, lo, _) = source.conformation_space();
    let reference_conformation = vec![if dims == 1 { lo } else { 0.0 }; dims];
    let reference = source.gaussians_at(&reference_conformation).expect("atomic source");
    let mut file = crate::io::atomic::AtomicFile::create(path)?;
    file.write_all(&crate::io::npy::float32_header(&[poses.len(), reference.len(), 3]))?;
    let mut bytes = Vec::with_capacity(reference.len() * 12);
    for pose in poses {
        let moved = source.gaussians_at(&pose.conformation).expect("atomic source");
        bytes.clear();
        for (m, r) in moved.centres.iter().zip(&reference.centres) {
            for k in 0..3 {
                bytes.extend_from_slice(&((m[k] - r[k]) as f32).to_le_bytes());
            }
        }
        file.write_all(&bytes)?;
    }
    file.commit()
}

fn variance(image: &[f32]) -> f64 {
    let n = image.len() as f64;
    let mean = image.iter().map(|&v| v as f64).sum::<f64>() / n;
    image.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n
}

fn write_star(path: &Path, poses: &[TruePose], optics: &OpticsGroup, stack: &str, ctf: bool) -> Result<()> {
    let optics_table = crate::io::relion::optics_table(std::slice::from_ref(optics))?;
    let mut columns = vec![
        "rlnImageName",
        "rlnAngleRot",
        "rlnAngleTilt",
        "rlnAnglePsi",
        "rlnOriginXAngst",
        "rlnOriginYAngst",
        "rlnOpticsGroup",
        "rlnRandomSubset",
    ];
    if ctf {
        columns.extend(["rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"]);
    }
    let mut particles = Table::new(&columns)?;
    for (i, p) in poses.iter().enumerate() {
        let mut row = vec![
            format!("{:06}@{stack}", i + 1),
            format!("{:.6}", p.euler_deg[0]),
            format!("{:.6}", p.euler_deg[1]),
            format!("{:.6}", p.euler_deg[2]),
            format!("{:.6}", p.origin_angstrom[0]),
            format!("{:.6}", p.origin_angstrom[1]),
            "1".into(),
            p.random_subset.to_string(),
        ];
        if ctf {
            row.extend([
                format!("{:.3}", p.ctf.defocus_u_angstrom),
                format!("{:.3}", p.ctf.defocus_v_angstrom),
                format!("{:.3}", p.ctf.defocus_angle_deg),
            ]);
        }
        particles.push_row(&row)?;
    }
    let mut optics_block = DataBlock::with_table("optics", optics_table);
    optics_block.comments = vec!["# version 30001".into()];
    let mut particles_block = DataBlock::with_table("particles", particles);
    particles_block.comments = vec!["# version 30001".into()];
    StarFile { blocks: vec![optics_block, particles_block] }.write(path)
}

fn write_truth(path: &Path, poses: &[TruePose]) -> Result<()> {
    let dims = poses.first().map_or(0, |p| p.conformation.len());
    let mut text = String::from(
        "particle,rot,tilt,psi,origin_x_angstrom,origin_y_angstrom,defocus_u,defocus_v,defocus_angle,half_set",
    );
    match dims {
        0 => {}
        1 => text += ",conformation",
        _ => (1..=dims).for_each(|k| text += &format!(",mode_{k}_angstrom")),
    }
    text.push('\n');
    for (i, p) in poses.iter().enumerate() {
        text += &format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:.6},{:.3},{:.3},{:.3},{}",
            i + 1,
            p.euler_deg[0],
            p.euler_deg[1],
            p.euler_deg[2],
            p.origin_angstrom[0],
            p.origin_angstrom[1],
            p.ctf.defocus_u_angstrom,
            p.ctf.defocus_v_angstrom,
            p.ctf.defocus_angle_deg,
            p.random_subset,
        );
        p.conformation.iter().for_each(|c| text += &format!(",{c:.6}"));
        text.push('\n');
    }
    crate::io::atomic::write_atomic(path, text.as_bytes())
}

/// Paths `simulate` writes under `dir`.
pub fn output_paths(dir: &Path) -> [PathBuf; 3] {
    [dir.join("particles.mrcs"), dir.join("particles.star"), dir.join("truth.csv")]
}
