//! `explore-latent-space`: every result of the motion analysis as files. Embeddings and their
//! plots, k-means clusters (maps, point clouds, particle subsets), trajectories along the
//! principal components, per-Gaussian activity, the two half models compared, and maps at
//! given latents.
//!
//! "The map at a latent" is the consensus map moved by that latent's deformation field (the
//! Gaussians' displacements interpolated onto the voxels, density carried by forward
//! splatting), and, as a second file, the render of the deformed Gaussians; both in the
//! consensus map's box, pixel size and origin.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::analysis::{Pca, UmapOptions, kmeans, umap};
use crate::array::Volume;
use crate::geometry::{ScatteredField, warp_forward};
use crate::io::atoms::{Atom, write_pdb};
use crate::io::cs::write_particles_cs;
use crate::io::mrc::{Map, Mode, write_volume};
use crate::io::npy::NpyArray;
use crate::io::relion::write_particles_star;
use crate::model::GaussianModel;
use crate::ops::gaussian_model::{map_centre, model_atoms};
use crate::particles::{ParticleTable, TableSource};
use crate::plot::{Colouring, LineChart, ScatterPlot, Series};
use crate::rng::Rng;
use crate::training::TrainedModel;
use crate::{Error, Result};

/// Latent means of particles by a half's encoder (half 0 or 1, particle rows).
pub type Encode<'a> = dyn FnMut(usize, &[usize]) -> Result<Vec<f32>> + 'a;

/// Settings of the exploration.
#[derive(Clone, Debug)]
pub struct ExploreOptions {
    /// Half set to explore (1 or 2), or 0 for both and their comparison.
    pub half_set: u8,
    /// k-means clusters per half.
    pub n_clusters: usize,
    /// Also embed with UMAP (PCA is always computed).
    pub umap: bool,
    /// Maps per trajectory.
    pub trajectory_steps: usize,
    /// Principal components with a trajectory.
    pub trajectory_components: usize,
    /// Particles whose deformations colour the plots and give the activity (a seeded sample).
    pub max_points: usize,
    /// Latent vectors (or particle numbers) to render maps at.
    pub latents: Option<PathBuf>,
    /// Seed of samples, clusters and UMAP.
    pub seed: u64,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            half_set: 1,
            n_clusters: 6,
            umap: false,
            trajectory_steps: 10,
            trajectory_components: 2,
            max_points: 5000,
            latents: None,
            seed: 0,
        }
    }
}

/// What was written, for the summary.
#[derive(Clone, Debug, Default)]
pub struct ExploreSummary {
    /// Files written.
    pub files: Vec<PathBuf>,
    /// Per half explored: particles, variance fraction of PC1, cluster sizes.
    pub halves: Vec<(u8, usize, f64, Vec<usize>)>,
    /// With both halves: median RMS difference of their displacement fields (Å) and the
    /// median RMS displacement (Å).
    pub half_difference: Option<(f64, f64)>,
}

/// The maps and point clouds of a half model at latents, in the consensus map's frame.
pub struct Generator<'a> {
    model: &'a TrainedModel,
    half: usize,
    map: &'a Map,
    field: ScatteredField,
    centre: [f64; 3],
}

/// Typical spacing of points: the mean nearest-neighbour distance (searched to 30 Å).
fn mean_spacing(points: &[[f32; 3]]) -> f32 {
    ScatteredField::new(points, 10.0).mean_spacing()
}

fn triples(flat: &[f32]) -> Vec<[f32; 3]> {
    flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect()
}

impl<'a> Generator<'a> {
    /// Maps of half `half` (0 or 1) of `model` in the frame of `map`.
    pub fn new(model: &'a TrainedModel, half: usize, map: &'a Map) -> Self {
        let points = triples(&model.halves[half].consensus.positions);
        let sigma = mean_spacing(&points).max(map.voxel_size[0]);
        Generator { model, half, map, field: ScatteredField::new(&points, sigma), centre: map_centre(map) }
    }

    /// The consensus Gaussians of this half.
    pub fn consensus(&self) -> &GaussianModel {
        &self.model.halves[self.half].consensus
    }

    /// Deformed Gaussian positions (Å, box-centred) at latent `z`.
    pub fn deformed(&self, z: &[f32]) -> Vec<f32> {
        self.model.deformed(self.half, z)
    }

    /// The consensus map moved by the deformation at `z`.
    pub fn warped_map(&self, z: &[f32]) -> Volume {
        let displacements = triples(&self.model.displacements(self.half, z));
        warp_forward(&self.map.volume, self.map.voxel_size[0] as f64, &self.field, &displacements)
    }

    /// The deformed Gaussians rendered in the map's box.
    pub fn gaussian_map(&self, deformed: &[f32]) -> Volume {
        let model = GaussianModel { positions: deformed.to_vec(), ..self.consensus().clone() };
        model.render(self.map.volume.shape[0], self.map.voxel_size[0] as f64)
    }

    /// Pseudo-atoms of deformed positions in the map's frame (B-factors from the widths).
    pub fn atoms(&self, deformed: &[f32]) -> Vec<Atom> {
        let model = GaussianModel { positions: deformed.to_vec(), ..self.consensus().clone() };
        model_atoms(&model, self.centre)
    }

    /// Writes `stem_map.mrc` (warped consensus), `stem_gaussians.mrc` and `stem.pdb` for `z`.
    ///
    /// # Errors
    /// Write failures.
    pub fn write(&self, z: &[f32], stem: &Path, files: &mut Vec<PathBuf>) -> Result<Vec<Atom>> {
        let deformed = self.deformed(z);
        let with = |suffix: &str| PathBuf::from(format!("{}{suffix}", stem.display()));
        write_map_like(&with("_map.mrc"), &self.warped_map(z), self.map)?;
        write_map_like(&with("_gaussians.mrc"), &self.gaussian_map(&deformed), self.map)?;
        let atoms = self.atoms(&deformed);
        write_pdb(with(".pdb"), std::slice::from_ref(&atoms))?;
        files.extend([with("_map.mrc"), with("_gaussians.mrc"), with(".pdb")]);
        Ok(atoms)
    }
}

/// Writes `volume` with the box, pixel size and origin of `like`, so ChimeraX overlays it.
///
/// # Errors
/// Write failures.
pub fn write_map_like(path: &Path, volume: &Volume, like: &Map) -> Result<()> {
    let centre = map_centre(like);
    let origin =
        [0, 1, 2].map(|k| (centre[k] - (like.volume.shape[k] / 2) as f64 * like.voxel_size[k] as f64) as f32);
    write_volume(path, volume, like.voxel_size[0], origin, Mode::Float32)
}

/// Per-particle motion of a sample: amount, direction along the dominant motion, location.
struct Motion {
    sample: Vec<usize>,
    rms: Vec<f64>,
    direction: Vec<f64>,
    location: Vec<[f64; 3]>,
    activity: Vec<f64>,
}

/// Particles drawn evenly at random (seeded), at most `max`, sorted.
fn sample(particles: &[usize], max: usize, seed: u64) -> Vec<usize> {
    let mut order = particles.to_vec();
    let mut rng = Rng::new(seed);
    for i in (1..order.len()).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    order.truncate(max);
    order.sort_unstable();
    order
}

/// The dominant motion: the leading principal direction of the displacement fields of a few
/// particles (power iteration on their Gram matrix), as a unit field (Ng × 3).
fn dominant_motion(fields: &[f32], count: usize) -> Vec<f32> {
    let len = fields.len() / count.max(1);
    let row = |i: usize| &fields[i * len..(i + 1) * len];
    let mean: Vec<f32> =
        (0..len).map(|j| (0..count).map(|i| row(i)[j]).sum::<f32>() / count.max(1) as f32).collect();
    let mut v: Vec<f32> = (0..len).map(|j| row(0)[j] - mean[j] + 1e-3).collect();
    for _ in 0..50 {
        let mut next = vec![0.0f32; len];
        for i in 0..count {
            let dot: f32 = row(i).iter().zip(&mean).zip(&v).map(|((a, m), b)| (a - m) * b).sum();
            next.iter_mut().zip(row(i)).zip(&mean).for_each(|((n, a), m)| *n += dot * (a - m));
        }
        let norm = next.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm == 0.0 {
            break;
        }
        v = next.iter().map(|x| x / norm).collect();
    }
    v
}

fn motion_of(model: &TrainedModel, half: usize, sample: Vec<usize>) -> Motion {
    let d = model.latent;
    let ng = model.halves[half].consensus.len();
    let centres = triples(&model.halves[half].consensus.positions);
    let z: Vec<f32> = sample.iter().flat_map(|&p| model.latent_of(p).to_vec()).collect();
    let few = sample.len().min(500);
    let mode = dominant_motion(&model.displacements(half, &z[..few * d]), few);
    let (mut rms, mut direction, mut location) = (Vec::new(), Vec::new(), Vec::new());
    let mut activity = vec![0.0f64; ng];
    for chunk in z.chunks(256 * d) {
        let fields = model.displacements(half, chunk);
        for field in fields.chunks_exact(ng * 3) {
            let sq: Vec<f64> =
                field.chunks_exact(3).map(|u| u.iter().map(|&x| (x as f64).powi(2)).sum()).collect();
            let total: f64 = sq.iter().sum();
            rms.push((total / ng.max(1) as f64).sqrt());
            // RMS displacement (Å) along the unit dominant field
            direction
                .push(field.iter().zip(&mode).map(|(a, b)| (a * b) as f64).sum::<f64>() / (ng as f64).sqrt());
            let mut at = [0.0f64; 3];
            for (s, c) in sq.iter().zip(&centres) {
                (0..3).for_each(|k| at[k] += s * c[k] as f64 / total.max(1e-30));
            }
            location.push(at);
            activity.iter_mut().zip(&sq).for_each(|(a, s)| *a += s.sqrt());
        }
    }
    activity.iter_mut().for_each(|a| *a /= sample.len().max(1) as f64);
    Motion { sample, rms, direction, location, activity }
}

/// Colours x, y, z of `points` within their bounding box as red, green, blue.
fn location_colours(points: &[[f64; 3]]) -> Vec<[u8; 3]> {
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in points {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    points
        .iter()
        .map(|p| [0, 1, 2].map(|k| (255.0 * (p[k] - lo[k]) / (hi[k] - lo[k]).max(1e-9)).round() as u8))
        .collect()
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(e, dir))
}

fn write_text(path: &Path, text: &str, files: &mut Vec<PathBuf>) -> Result<()> {
    crate::io::atomic::write_atomic(path, text.as_bytes())?;
    files.push(path.to_path_buf());
    Ok(())
}

/// Runs the exploration of `model` (trained on `table`, consensus `map`) into `dir`.
/// `encode(half, particles)` gives latents of particles by either half's encoder (needed only
/// for `half_set == 0`).
///
/// # Errors
/// Bad latents file, empty selection, write failures.
pub fn explore(
    dir: &Path,
    model: &TrainedModel,
    table: &ParticleTable,
    map: &Map,
    options: &ExploreOptions,
    encode: &mut Encode<'_>,
    log: &mut dyn FnMut(&str),
) -> Result<ExploreSummary> {
    if map.volume.shape[0] != map.volume.shape[1] || map.volume.shape[0] != map.volume.shape[2] {
        return Err(Error::invalid("the consensus map must be a cube"));
    }
    let halves: Vec<usize> = match options.half_set {
        0 => vec![0, 1],
        1 | 2 => vec![options.half_set as usize - 1],
        h => return Err(Error::invalid(format!("half set {h}: use 1, 2 or 0 (both)")).in_field("--half-set")),
    };
    let requested = options.latents.as_deref().map(|p| read_latents(p, model)).transpose()?;
    let mut summary = ExploreSummary::default();
    for &h in &halves {
        let particles: Vec<usize> = (0..model.len()).filter(|&p| model.half_index(p) == h).collect();
        if particles.is_empty() {
            return Err(Error::invalid(format!("half set {} has no particles", h + 1)).in_field("--half-set"));
        }
        log(&format!("half set {}: {} particles", h + 1, particles.len()));
        let half_dir = dir.join(format!("half{}", h + 1));
        create_dir(&half_dir)?;
        let result =
            explore_half(&half_dir, model, h, &particles, table, map, options, log, &mut summary.files)?;
        summary.halves.push((h as u8 + 1, particles.len(), result.0, result.1));
        if let Some(rows) = &requested {
            write_requested(&half_dir.join("latents"), model, h, map, rows, &mut summary.files)?;
        }
    }
    if halves.len() == 2 {
        log("comparing the two half models' deformations of every sampled particle");
        summary.half_difference = Some(compare_halves(dir, model, map, options, encode, &mut summary.files)?);
    }
    Ok(summary)
}

/// Latents to render: rows of `latent` numbers, or particle numbers (1-based rows of the STAR),
/// from a text file or a `.npy` array.
enum Requested {
    Latents(Vec<f32>),
    Particles(Vec<usize>),
}

fn read_latents(path: &Path, model: &TrainedModel) -> Result<Requested> {
    let d = model.latent;
    let rows: Vec<Vec<f64>> = if path.extension().is_some_and(|e| e == "npy") {
        let array = NpyArray::read(path)?;
        let values = array.values()?;
        let width = if array.shape.len() == 2 { array.shape[1] } else { 1 };
        values.chunks(width.max(1)).map(|c| c.to_vec()).collect()
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(e, path))?;
        let mut rows = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let row: std::result::Result<Vec<f64>, _> = line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .map(str::parse)
                .collect();
            rows.push(row.map_err(|_| {
                Error::invalid(format!("line {}: not numbers: '{line}'", n + 1)).with_path(path)
            })?);
        }
        rows
    };
    if rows.is_empty() {
        return Err(Error::invalid("no latents in the file").with_path(path).in_field("--latents"));
    }
    let integers = rows.iter().all(|r| r.len() == 1 && r[0].fract() == 0.0 && r[0] >= 1.0);
    if d > 1 && integers {
        let particles: Vec<usize> = rows.iter().map(|r| r[0] as usize - 1).collect();
        if let Some(&bad) = particles.iter().find(|&&p| p >= model.len()) {
            return Err(Error::invalid(format!(
                "particle {} is beyond the {} particles of the run",
                bad + 1,
                model.len()
            ))
            .with_path(path)
            .in_field("--latents"));
        }
        return Ok(Requested::Particles(particles));
    }
    if let Some(r) = rows.iter().find(|r| r.len() != d) {
        return Err(Error::mismatch(format!(
            "a row of {} values, but the model has {d} latent dimensions (or give particle numbers, one per line)",
            r.len()
        ))
        .with_path(path)
        .in_field("--latents"));
    }
    Ok(Requested::Latents(rows.iter().flatten().map(|&v| v as f32).collect()))
}

fn write_requested(
    dir: &Path,
    model: &TrainedModel,
    half: usize,
    map: &Map,
    requested: &Requested,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    create_dir(dir)?;
    let generator = Generator::new(model, half, map);
    let latents: Vec<(String, Vec<f32>)> = match requested {
        Requested::Latents(z) => z
            .chunks(model.latent)
            .enumerate()
            .map(|(i, z)| (format!("latent_{:03}", i + 1), z.to_vec()))
            .collect(),
        Requested::Particles(p) => {
            p.iter().map(|&p| (format!("particle_{:07}", p + 1), model.latent_of(p).to_vec())).collect()
        }
    };
    for (name, z) in latents {
        generator.write(&z, &dir.join(name), files)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn explore_half(
    dir: &Path,
    model: &TrainedModel,
    h: usize,
    particles: &[usize],
    table: &ParticleTable,
    map: &Map,
    options: &ExploreOptions,
    log: &mut dyn FnMut(&str),
    files: &mut Vec<PathBuf>,
) -> Result<(f64, Vec<usize>)> {
    let d = model.latent;
    let z: Vec<f32> = particles.iter().flat_map(|&p| model.latent_of(p).to_vec()).collect();
    let pca = Pca::fit(&z, d);
    let total_variance: f64 = pca.variances.iter().sum();
    let pcs: Vec<[f64; 2]> =
        z.chunks_exact(d).map(|r| [pca.project(r, 0), if d > 1 { pca.project(r, 1) } else { 0.0 }]).collect();
    let embedding_umap = options.umap.then(|| {
        log("UMAP embedding");
        umap(&z, d, &UmapOptions { seed: options.seed, ..Default::default() })
    });
    log(&format!("k-means into {} clusters", options.n_clusters));
    let clusters = kmeans(&z, d, options.n_clusters.max(1), options.seed);

    // embedding table of every particle
    let mut csv = String::from("particle,pc1,pc2");
    if embedding_umap.is_some() {
        csv += ",umap1,umap2";
    }
    csv += ",cluster\n";
    for (row, &p) in particles.iter().enumerate() {
        csv += &format!("{},{:.6},{:.6}", p + 1, pcs[row][0], pcs[row][1]);
        if let Some(u) = &embedding_umap {
            csv += &format!(",{:.5},{:.5}", u[row][0], u[row][1]);
        }
        csv += &format!(",{}\n", clusters.labels[row] + 1);
    }
    write_text(&dir.join("embedding.csv"), &csv, files)?;

    log("per-particle motion of a sample");
    let position: std::collections::HashMap<usize, usize> =
        particles.iter().enumerate().map(|(r, &p)| (p, r)).collect();
    let motion = motion_of(model, h, sample(particles, options.max_points, options.seed));
    let mut csv = String::from(
        "particle,rms_displacement_A,dominant_motion_A,location_x_A,location_y_A,location_z_A\n",
    );
    for (i, &p) in motion.sample.iter().enumerate() {
        let l = motion.location[i];
        csv += &format!(
            "{},{:.4},{:.4},{:.2},{:.2},{:.2}\n",
            p + 1,
            motion.rms[i],
            motion.direction[i],
            l[0],
            l[1],
            l[2]
        );
    }
    write_text(&dir.join("motion.csv"), &csv, files)?;
    plot_embeddings(
        dir,
        "pca",
        "PC",
        &pcs.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>(),
        &position,
        &motion,
        &clusters.labels,
        table,
        files,
    )?;
    if let Some(u) = &embedding_umap {
        let points: Vec<(f64, f64)> = u.iter().map(|p| (p[0] as f64, p[1] as f64)).collect();
        plot_embeddings(dir, "umap", "UMAP ", &points, &position, &motion, &clusters.labels, table, files)?;
    }

    // activity in the B-factor column of the consensus point cloud
    let generator = Generator::new(model, h, map);
    let mut atoms = model_atoms(generator.consensus(), map_centre(map));
    atoms.iter_mut().zip(&motion.activity).for_each(|(a, &m)| a.b_factor = m);
    write_pdb(dir.join("consensus_activity.pdb"), &[atoms])?;
    files.push(dir.join("consensus_activity.pdb"));

    log("cluster maps and particle subsets");
    let cluster_dir = dir.join("clusters");
    create_dir(&cluster_dir)?;
    let mut csv = String::from("cluster,particles");
    (1..=d).for_each(|k| csv += &format!(",latent{k}"));
    csv.push('\n');
    for c in 0..clusters.sizes.len() {
        let centre = &clusters.centres[c * d..(c + 1) * d];
        csv += &format!("{},{}", c + 1, clusters.sizes[c]);
        centre.iter().for_each(|v| csv += &format!(",{v:.6}"));
        csv.push('\n');
        let stem = cluster_dir.join(format!("cluster_{:02}", c + 1));
        generator.write(centre, &stem, files)?;
        let rows: Vec<usize> =
            particles.iter().zip(&clusters.labels).filter(|(_, l)| **l == c).map(|(&p, _)| p).collect();
        write_subset(&stem, table, &rows, files)?;
    }
    write_text(&cluster_dir.join("clusters.csv"), &csv, files)?;

    log("trajectories along the principal components");
    for k in 0..options.trajectory_components.min(d) {
        let mut scores: Vec<f64> = z.chunks_exact(d).map(|r| pca.project(r, k)).collect();
        scores.sort_by(f64::total_cmp);
        let at = |q: f64| scores[((scores.len() - 1) as f64 * q).round() as usize];
        let (lo, hi) = (at(0.05), at(0.95));
        let traj_dir = dir.join(format!("trajectory_pc{}", k + 1));
        create_dir(&traj_dir)?;
        let steps = options.trajectory_steps.max(2);
        let mut models = Vec::new();
        for s in 0..steps {
            let t = lo + (hi - lo) * s as f64 / (steps - 1) as f64;
            let zt: Vec<f32> = (0..d).map(|j| (pca.mean[j] + t * pca.components[k * d + j]) as f32).collect();
            let deformed = generator.deformed(&zt);
            write_map_like(&traj_dir.join(format!("map_{s:03}.mrc")), &generator.warped_map(&zt), map)?;
            write_map_like(
                &traj_dir.join(format!("gaussians_{s:03}.mrc")),
                &generator.gaussian_map(&deformed),
                map,
            )?;
            files.extend([
                traj_dir.join(format!("map_{s:03}.mrc")),
                traj_dir.join(format!("gaussians_{s:03}.mrc")),
            ]);
            models.push(generator.atoms(&deformed));
        }
        write_pdb(traj_dir.join("trajectory.pdb"), &models)?;
        files.push(traj_dir.join("trajectory.pdb"));
    }
    let pc1 = if total_variance > 0.0 { pca.variances[0] / total_variance } else { 0.0 };
    Ok((pc1, clusters.sizes.clone()))
}

/// Writes `stem.star` (and `stem.cs` for a cryoSPARC input) with the particles `rows`.
///
/// # Errors
/// Write failures.
pub fn write_subset(
    stem: &Path,
    table: &ParticleTable,
    rows: &[usize],
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    let star = PathBuf::from(format!("{}.star", stem.display()));
    write_particles_star(&star, table, Some(rows))?;
    files.push(star);
    if matches!(table.source, TableSource::Cs(_)) {
        let cs = PathBuf::from(format!("{}.cs", stem.display()));
        write_particles_cs(&cs, table, Some(rows))?;
        files.push(cs);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn plot_embeddings(
    dir: &Path,
    name: &str,
    axis: &str,
    points: &[(f64, f64)],
    position: &std::collections::HashMap<usize, usize>,
    motion: &Motion,
    labels: &[usize],
    table: &ParticleTable,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    let at: Vec<(f64, f64)> = motion.sample.iter().map(|p| points[position[p]]).collect();
    let title = |what: &str| format!("{}: {what}", name.to_uppercase());
    let plot = |what: &str, points: Vec<(f64, f64)>, colouring: Colouring| ScatterPlot {
        title: title(what),
        x_label: format!("{axis}1"),
        y_label: format!("{axis}2"),
        points,
        colouring,
    };
    let values = |label: &str, values: Vec<f64>| Colouring::Values { values, label: label.into() };
    let sampled = |get: &dyn Fn(usize) -> f64| motion.sample.iter().map(|&p| get(p)).collect::<Vec<f64>>();
    let plots = [
        ("motion", plot("amount of motion", at.clone(), values("RMS disp. (A)", motion.rms.clone()))),
        (
            "direction",
            plot("direction of motion", at.clone(), values("main motion (A)", motion.direction.clone())),
        ),
        (
            "location",
            plot(
                "location of motion",
                at.clone(),
                Colouring::Colours {
                    colours: location_colours(&motion.location),
                    legend: "colour = where\nit moves:\nred x\ngreen y\nblue z".into(),
                },
            ),
        ),
        (
            "tilt",
            plot("tilt", at.clone(), values("tilt (deg)", sampled(&|p| table.particles[p].euler_deg[1]))),
        ),
        ("rot", plot("rot", at.clone(), values("rot (deg)", sampled(&|p| table.particles[p].euler_deg[0])))),
        (
            "defocus",
            plot(
                "defocus",
                at.clone(),
                values(
                    "defocus (A)",
                    sampled(&|p| {
                        let c = &table.particles[p].ctf;
                        (c.defocus_u_angstrom + c.defocus_v_angstrom) / 2.0
                    }),
                ),
            ),
        ),
        (
            "cluster",
            plot(
                "k-means cluster",
                points.to_vec(),
                Colouring::Categories {
                    labels: labels.to_vec(),
                    names: (1..=labels.iter().max().map_or(0, |m| m + 1))
                        .map(|k| format!("cluster {k}"))
                        .collect(),
                },
            ),
        ),
    ];
    for (what, plot) in plots {
        let path = dir.join(format!("{name}_by_{what}.png"));
        plot.write_png(&path)?;
        files.push(path);
    }
    Ok(())
}

/// Each sampled particle deformed by both half models (encoded by each half's encoder), the
/// two displacement fields evaluated at the reference Gaussians (the input map's frame):
/// per-particle and per-region RMS differences. Returns the medians of the difference and of
/// the displacement.
fn compare_halves(
    dir: &Path,
    model: &TrainedModel,
    map: &Map,
    options: &ExploreOptions,
    encode: &mut Encode<'_>,
    files: &mut Vec<PathBuf>,
) -> Result<(f64, f64)> {
    let all: Vec<usize> = (0..model.len()).collect();
    let particles = sample(&all, options.max_points.min(2000), options.seed);
    let reference = triples(&model.reference.positions);
    let nr = reference.len();
    let mut at_reference: Vec<Vec<[f32; 3]>> = Vec::new();
    for h in 0..2 {
        let z = encode(h, &particles)?;
        let centres = triples(&model.halves[h].consensus.positions);
        let field = ScatteredField::new(&centres, mean_spacing(&centres));
        let fields = model.displacements(h, &z);
        let ng = centres.len();
        at_reference.push(
            fields
                .chunks_exact(ng * 3)
                .flat_map(|f| {
                    let f = triples(f);
                    reference.iter().map(|&r| field.sample(&f, r)).collect::<Vec<_>>()
                })
                .collect(),
        );
    }
    let mut per_region = vec![0.0f64; nr];
    let mut mean_difference = vec![[0.0f64; 3]; nr];
    let mut csv = String::from(
        "particle,half_set,rms_difference_A,rms_displacement_half1_A,rms_displacement_half2_A\n",
    );
    let (mut differences, mut displacements) = (Vec::new(), Vec::new());
    for (row, &p) in particles.iter().enumerate() {
        let (a, b) = (&at_reference[0][row * nr..(row + 1) * nr], &at_reference[1][row * nr..(row + 1) * nr]);
        let sq = |u: &[f32; 3]| u.iter().map(|&x| (x as f64).powi(2)).sum::<f64>();
        let mut diff = 0.0;
        for (g, (u, v)) in a.iter().zip(b).enumerate() {
            let e = sq(&[u[0] - v[0], u[1] - v[1], u[2] - v[2]]);
            (0..3).for_each(|k| mean_difference[g][k] += (u[k] - v[k]) as f64 / particles.len() as f64);
            per_region[g] += e;
            diff += e;
        }
        let rms = |x: f64| (x / nr.max(1) as f64).sqrt();
        let (da, db) = (rms(a.iter().map(sq).sum()), rms(b.iter().map(sq).sum()));
        differences.push(rms(diff));
        displacements.push((da + db) / 2.0);
        csv += &format!("{},{},{:.4},{:.4},{:.4}\n", p + 1, model.particle_halves[p], rms(diff), da, db);
    }
    write_text(&dir.join("half_comparison.csv"), &csv, files)?;
    let mut atoms = model_atoms(&model.reference, map_centre(map));
    atoms
        .iter_mut()
        .zip(&per_region)
        .for_each(|(a, &e)| a.b_factor = (e / particles.len().max(1) as f64).sqrt());
    write_pdb(dir.join("half_comparison.pdb"), &[atoms])?;
    files.push(dir.join("half_comparison.pdb"));
    let chart = LineChart {
        title: "Half models compared on the same particles".into(),
        x_label: "RMS displacement, mean of the halves (A)".into(),
        y_label: "RMS difference of the halves (A)".into(),
        series: vec![Series {
            label: "particle".into(),
            points: displacements.iter().copied().zip(differences.iter().copied()).collect(),
        }],
        dots: true,
        ..Default::default()
    };
    chart.write_png(dir.join("half_comparison.png"))?;
    files.push(dir.join("half_comparison.png"));
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let mut summary =
        std::fs::File::create(dir.join("half_comparison.txt")).map_err(|e| Error::io(e, dir))?;
    let (md, mm) = (median(&mut differences), median(&mut displacements));
    let constant = (mean_difference.iter().map(|m| m.iter().map(|x| x * x).sum::<f64>()).sum::<f64>()
        / nr.max(1) as f64)
        .sqrt();
    let _ = writeln!(
        summary,
        "particles {}\nmedian RMS difference of the half models {md:.3} A\nmedian RMS displacement {mm:.3} A\n\
         RMS of the difference common to all particles (the halves' consensus models disagree) {constant:.3} A",
        particles.len()
    );
    files.push(dir.join("half_comparison.txt"));
    Ok((md, mm))
}
