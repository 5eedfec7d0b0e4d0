//! `cryomotion view`: the motions of a trained run explored in the browser. A page embedded in
//! the binary talks to a small HTTP server ([`http`]) whose routes are answered here: the latent
//! embedding of each half with per-particle properties, maps at a particle's latent as
//! isosurfaces ([`isosurface`]), particle subsets from polygons, volume series from paths, and
//! files under the run's directory (nothing outside it).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::analysis::Pca;
use crate::array::Volume;
use crate::io::atoms::write_pdb;
use crate::io::mrc::{Map, read_map};
use crate::io::weights::json_string;
use crate::ops::explore::{Generator, write_map_like, write_subset};
use crate::particles::ParticleTable;
use crate::training::TrainedModel;
use crate::{Error, Result};

pub mod http;
pub mod isosurface;

use http::{Request, Response};

/// The page: HTML, CSS and JavaScript in one file, no network needed.
const PAGE: &str = include_str!("page.html");

/// Most particles of a half drawn in the scatter (an even sample beyond it); polygons count
/// and save every particle.
const MAX_SHOWN: usize = 50_000;

/// Latent neighbours averaged to place a point of a UMAP path in latent space.
const PATH_NEIGHBOURS: usize = 15;

/// One half set's particles in the embedding.
struct HalfView {
    half: usize,
    particles: Vec<usize>,
    /// Rows of `particles` drawn in the scatter.
    shown: Vec<usize>,
    pca: Pca,
    pca_points: Vec<[f64; 2]>,
    umap_points: Option<Vec<[f64; 2]>>,
    clusters: Option<Vec<f64>>,
}

/// Everything the viewer serves.
pub struct Viewer {
    out: PathBuf,
    model: TrainedModel,
    table: ParticleTable,
    map: Map,
    halves: Vec<HalfView>,
    maps: Vec<(&'static str, Map)>,
    current: Mutex<Option<Volume>>,
    saved: AtomicUsize,
}

impl Viewer {
    /// The viewer of the run in `out` (its model, particles and consensus map). Embeddings and
    /// clusters come from `out/explore/halfN/embedding.csv` where explore-latent-space wrote
    /// them; the principal components are computed here either way.
    ///
    /// # Errors
    /// An unreadable embedding or map file.
    pub fn new(out: &Path, model: TrainedModel, table: ParticleTable, map: Map) -> Result<Self> {
        let out = out.canonicalize().map_err(|e| Error::io(e, out))?;
        let mut halves = Vec::new();
        for half in 0..2 {
            let particles: Vec<usize> = (0..model.len()).filter(|&p| model.half_index(p) == half).collect();
            if particles.is_empty() {
                continue;
            }
            let d = model.latent;
            let z: Vec<f32> = particles.iter().flat_map(|&p| model.latent_of(p).to_vec()).collect();
            let pca = Pca::fit(&z, d);
            let pca_points = z
                .chunks_exact(d)
                .map(|r| [pca.project(r, 0), if d > 1 { pca.project(r, 1) } else { 0.0 }])
                .collect();
            let csv = out.join(format!("explore/half{}/embedding.csv", half + 1));
            let (umap_points, clusters) = read_embedding(&csv, &particles)?;
            let shown = even_sample(particles.len(), MAX_SHOWN);
            halves.push(HalfView { half, particles, shown, pca, pca_points, umap_points, clusters });
        }
        let mut maps = vec![("consensus", map.clone())];
        let backprojection = out.join("backprojection/map.mrc");
        if backprojection.is_file() {
            maps.push(("backprojection", read_map(&backprojection)?));
        }
        Ok(Viewer {
            out,
            model,
            table,
            map,
            halves,
            maps,
            current: Mutex::new(None),
            saved: AtomicUsize::new(0),
        })
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        let result = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/") => Ok(Response::ok("text/html; charset=utf-8", PAGE)),
            ("GET", "/api/state") => Ok(Response::json(self.state())),
            ("GET", "/api/mesh") => self.mesh(request),
            ("POST", "/api/latent-map") => self.latent_map(request),
            ("POST", "/api/save-map") => self.save_map(),
            ("POST", "/api/polygon") => self.polygon(request),
            ("POST", "/api/path") => self.path(request),
            ("GET", p) if p.starts_with("/files/") => Ok(self.file(&p["/files/".len()..])),
            _ => Ok(Response::error(404, format!("no such page: {}", request.path))),
        };
        result.unwrap_or_else(|e| Response::error(400, e.to_string()))
    }

    /// Halves, embeddings and colourable properties as JSON.
    fn state(&self) -> String {
        let mut s = format!(
            "{{\"out\":{},\"latent\":{},\"maps\":[{}],\"halves\":[",
            json_string(&self.out.display().to_string()),
            self.model.latent,
            self.maps.iter().map(|(name, _)| json_string(name)).collect::<Vec<_>>().join(",")
        );
        for (k, h) in self.halves.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            let shown = |values: &[[f64; 2]]| points(&h.shown.iter().map(|&r| values[r]).collect::<Vec<_>>());
            let _ = write!(
                s,
                "{{\"half\":{},\"particles\":{},\"pca\":{}",
                h.half + 1,
                h.particles.len(),
                shown(&h.pca_points)
            );
            if let Some(u) = &h.umap_points {
                let _ = write!(s, ",\"umap\":{}", shown(u));
            }
            s.push_str(",\"properties\":{");
            let mut properties: Vec<(String, Vec<f64>)> = Vec::new();
            if let Some(c) = &h.clusters {
                properties.push(("cluster".into(), h.shown.iter().map(|&r| c[r]).collect()));
            }
            let particle =
                |f: &dyn Fn(usize) -> f64| h.shown.iter().map(|&r| f(h.particles[r])).collect::<Vec<f64>>();
            let ps = &self.table.particles;
            properties.push((
                "defocus".into(),
                particle(&|p| 0.5 * (ps[p].ctf.defocus_u_angstrom + ps[p].ctf.defocus_v_angstrom)),
            ));
            for (k, name) in ["rot", "tilt", "psi"].iter().enumerate() {
                properties.push(((*name).into(), particle(&|p| ps[p].euler_deg[k])));
            }
            for j in 0..self.model.latent {
                properties
                    .push((format!("latent{}", j + 1), particle(&|p| self.model.latent_of(p)[j] as f64)));
            }
            let body: Vec<String> = properties
                .iter()
                .map(|(name, values)| format!("{}:{}", json_string(name), numbers(values)))
                .collect();
            s.push_str(&body.join(","));
            s.push_str("}}");
        }
        s.push_str("]}");
        s
    }

    fn half(&self, request: &Request) -> Result<&HalfView> {
        let wanted: usize = request.param("half").unwrap_or("1").parse().map_err(|_| bad("half"))?;
        self.halves
            .iter()
            .find(|h| h.half + 1 == wanted)
            .ok_or_else(|| Error::invalid(format!("half set {wanted} has no particles in this run")))
    }

    /// The isosurface of a map: the last latent map, or a named map of the run.
    fn mesh(&self, request: &Request) -> Result<Response> {
        let source = request.param("source").unwrap_or("consensus");
        let current;
        let volume = if source == "current" {
            current = self.current.lock().expect("viewer state").clone();
            current.as_ref().ok_or_else(|| Error::invalid("no map computed yet: click a particle first"))?
        } else {
            &self
                .maps
                .iter()
                .find(|(name, _)| *name == source)
                .ok_or_else(|| Error::invalid(format!("no map named '{source}'")))?
                .1
                .volume
        };
        Ok(Response::json(self.mesh_json(volume, request.param("threshold"))?))
    }

    fn mesh_json(&self, volume: &Volume, threshold: Option<&str>) -> Result<String> {
        let mut sorted = volume.data.clone();
        sorted.sort_by(f32::total_cmp);
        let quantile = |q: f64| sorted[((sorted.len() - 1) as f64 * q) as usize];
        let default = quantile(0.97);
        let threshold = match threshold {
            Some(t) => t.parse::<f32>().map_err(|_| bad("threshold"))?,
            None => default,
        };
        let triangles = isosurface::isosurface(volume, self.map.voxel_size[0] as f64, threshold);
        let mut s = format!(
            "{{\"threshold\":{threshold},\"default\":{default},\"min\":{},\"max\":{},\"triangles\":[",
            quantile(0.0),
            quantile(1.0)
        );
        for (i, v) in triangles.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let _ = write!(s, "{v:.2}");
        }
        s.push_str("]}");
        Ok(s)
    }

    /// The consensus map moved to a particle's latent (as explore-latent-space makes maps).
    fn latent_map(&self, request: &Request) -> Result<Response> {
        let half = self.half(request)?;
        let index: usize =
            request.param("point").ok_or_else(|| bad("point"))?.parse().map_err(|_| bad("point"))?;
        let row = *half.shown.get(index).ok_or_else(|| bad("point"))?;
        let particle = half.particles[row];
        let volume =
            Generator::new(&self.model, half.half, &self.map).warped_map(self.model.latent_of(particle));
        let json = self.mesh_json(&volume, request.param("threshold"))?;
        *self.current.lock().expect("viewer state") = Some(volume);
        Ok(Response::json(json))
    }

    fn next_name(&self, stem: &str, extension: &str) -> Result<PathBuf> {
        let dir = self.out.join("view");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(e, &dir))?;
        loop {
            let k = self.saved.fetch_add(1, Ordering::SeqCst) + 1;
            let path = dir.join(format!("{stem}_{k:03}{extension}"));
            if !path.exists() {
                return Ok(path);
            }
        }
    }

    fn save_map(&self) -> Result<Response> {
        let current = self.current.lock().expect("viewer state").clone();
        let volume = current.ok_or_else(|| Error::invalid("no map computed yet: click a particle first"))?;
        let path = self.next_name("map", ".mrc")?;
        write_map_like(&path, &volume, &self.map)?;
        Ok(Response::json(format!("{{\"path\":{}}}", json_string(&path.display().to_string()))))
    }

    /// Particles of a half inside a polygon of the embedding; saved as a subset with `save=1`.
    fn polygon(&self, request: &Request) -> Result<Response> {
        let half = self.half(request)?;
        let embedded = embedding(half, request.param("embedding"))?;
        let vertices = parse_points(&request.body)?;
        if vertices.len() < 3 {
            return Err(Error::invalid("a polygon needs at least three vertices"));
        }
        let rows: Vec<usize> = half
            .particles
            .iter()
            .zip(embedded)
            .filter(|(_, p)| inside(&vertices, **p))
            .map(|(&row, _)| row)
            .collect();
        let mut json = format!("{{\"count\":{}", rows.len());
        if request.param("save") == Some("1") {
            if rows.is_empty() {
                return Err(Error::invalid("no particles inside the polygon"));
            }
            let path = self.next_name("selection", "")?;
            let mut files = Vec::new();
            write_subset(&path, &self.table, &rows, &mut files)?;
            let names: Vec<String> = files.iter().map(|f| json_string(&f.display().to_string())).collect();
            let _ = write!(json, ",\"files\":[{}]", names.join(","));
        }
        json.push('}');
        Ok(Response::json(json))
    }

    /// A path drawn in the embedding, as a volume series and a multi-model PDB.
    fn path(&self, request: &Request) -> Result<Response> {
        let half = self.half(request)?;
        let vertices = parse_points(&request.body)?;
        if vertices.len() < 2 {
            return Err(Error::invalid("a path needs at least two points"));
        }
        let steps: usize = request.param("steps").unwrap_or("10").parse().map_err(|_| bad("steps"))?;
        let latents: Vec<Vec<f32>> = resample(&vertices, steps.max(2))
            .into_iter()
            .map(|p| self.latent_at(half, request.param("embedding"), p))
            .collect::<Result<_>>()?;
        let dir = self.next_name("path", "")?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(e, &dir))?;
        let generator = Generator::new(&self.model, half.half, &self.map);
        let mut models = Vec::new();
        for (s, z) in latents.iter().enumerate() {
            write_map_like(&dir.join(format!("map_{s:03}.mrc")), &generator.warped_map(z), &self.map)?;
            models.push(generator.atoms(&generator.deformed(z)));
        }
        write_pdb(dir.join("trajectory.pdb"), &models)?;
        Ok(Response::json(format!(
            "{{\"path\":{},\"steps\":{}}}",
            json_string(&dir.display().to_string()),
            latents.len()
        )))
    }

    /// The latent at a point of the embedding: exact for the principal components, the mean
    /// latent of the nearest particles for UMAP.
    fn latent_at(&self, half: &HalfView, name: Option<&str>, p: [f64; 2]) -> Result<Vec<f32>> {
        let d = self.model.latent;
        if name.unwrap_or("pca") == "pca" {
            let pca = &half.pca;
            let z = (0..d)
                .map(|j| {
                    let second = if d > 1 { p[1] * pca.components[d + j] } else { 0.0 };
                    (pca.mean[j] + p[0] * pca.components[j] + second) as f32
                })
                .collect();
            return Ok(z);
        }
        let embedded = embedding(half, name)?;
        let mut order: Vec<usize> = (0..embedded.len()).collect();
        let distance = |i: usize| (embedded[i][0] - p[0]).powi(2) + (embedded[i][1] - p[1]).powi(2);
        order.sort_by(|&a, &b| distance(a).total_cmp(&distance(b)));
        let near = &order[..PATH_NEIGHBOURS.min(order.len())];
        Ok((0..d)
            .map(|j| {
                near.iter().map(|&i| self.model.latent_of(half.particles[i])[j]).sum::<f32>()
                    / near.len() as f32
            })
            .collect())
    }

    /// A file under the run's directory; anything outside it is refused.
    fn file(&self, relative: &str) -> Response {
        let Ok(path) = self.out.join(relative).canonicalize() else {
            return Response::error(404, format!("no such file: {relative}"));
        };
        if !path.starts_with(&self.out) {
            return Response::error(403, format!("{relative}: outside the run directory"));
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let kind = match path.extension().and_then(|e| e.to_str()) {
                    Some("png") => "image/png",
                    Some("csv" | "star" | "pdb" | "txt" | "log") => "text/plain; charset=utf-8",
                    _ => "application/octet-stream",
                };
                Response::ok(kind, bytes)
            }
            Err(_) => Response::error(404, format!("not a readable file: {relative}")),
        }
    }
}

fn bad(parameter: &str) -> Error {
    Error::invalid(format!("missing or invalid parameter '{parameter}'"))
}

fn embedding<'a>(half: &'a HalfView, name: Option<&str>) -> Result<&'a [[f64; 2]]> {
    match name.unwrap_or("pca") {
        "pca" => Ok(&half.pca_points),
        "umap" => half.umap_points.as_deref().ok_or_else(|| {
            Error::invalid("no UMAP embedding: run explore-latent-space --embedding umap first")
        }),
        other => Err(Error::invalid(format!("unknown embedding '{other}' (pca or umap)"))),
    }
}

/// UMAP coordinates and cluster numbers of particles, where explore-latent-space wrote them.
type Explored = (Option<Vec<[f64; 2]>>, Option<Vec<f64>>);

/// UMAP coordinates and clusters of `particles` (0-based) from an embedding.csv, where present.
fn read_embedding(path: &Path, particles: &[usize]) -> Result<Explored> {
    if !path.is_file() {
        return Ok((None, None));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(e, path))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let column = |name: &str| header.iter().position(|&h| h == name);
    let (id, u1, u2, cluster) = (column("particle"), column("umap1"), column("umap2"), column("cluster"));
    let Some(id) = id else { return Ok((None, None)) };
    let mut umap = std::collections::HashMap::new();
    let mut clusters = std::collections::HashMap::new();
    for (k, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let number = |c: usize| -> Result<f64> {
            fields.get(c).and_then(|v| v.trim().parse().ok()).ok_or_else(|| {
                Error::invalid(format!("column {} is not a number", header[c])).at_row(k + 1).with_path(path)
            })
        };
        let p = number(id)? as usize;
        if let (Some(a), Some(b)) = (u1, u2) {
            umap.insert(p, [number(a)?, number(b)?]);
        }
        if let Some(c) = cluster {
            clusters.insert(p, number(c)?);
        }
    }
    Ok((pick(&umap, particles), pick(&clusters, particles)))
}

/// The values of `particles` (0-based) keyed by 1-based particle number; none unless all are there.
fn pick<T: Copy>(values: &std::collections::HashMap<usize, T>, particles: &[usize]) -> Option<Vec<T>> {
    particles.iter().map(|p| values.get(&(p + 1)).copied()).collect()
}

/// "x,y;x,y;..." as points.
fn parse_points(body: &[u8]) -> Result<Vec<[f64; 2]>> {
    let text = std::str::from_utf8(body).map_err(|_| Error::invalid("the points are not text"))?;
    text.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (x, y) = p.split_once(',').ok_or_else(|| Error::invalid(format!("not a point: '{p}'")))?;
            match (x.trim().parse(), y.trim().parse()) {
                (Ok(x), Ok(y)) => Ok([x, y]),
                _ => Err(Error::invalid(format!("not a point: '{p}'"))),
            }
        })
        .collect()
}

/// `max` of `0..len` evenly spread (all of them when `len <= max`).
fn even_sample(len: usize, max: usize) -> Vec<usize> {
    if len <= max {
        return (0..len).collect();
    }
    (0..max).map(|k| k * len / max).collect()
}

/// Whether `p` is inside the polygon (even-odd rule).
pub fn inside(polygon: &[[f64; 2]], p: [f64; 2]) -> bool {
    let mut odd = false;
    let mut j = polygon.len() - 1;
    for i in 0..polygon.len() {
        let (a, b) = (polygon[i], polygon[j]);
        if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
            odd = !odd;
        }
        j = i;
    }
    odd
}

/// `steps` points evenly spaced along a polyline by arc length, ends included.
fn resample(vertices: &[[f64; 2]], steps: usize) -> Vec<[f64; 2]> {
    let lengths: Vec<f64> = vertices
        .windows(2)
        .map(|w| ((w[1][0] - w[0][0]).powi(2) + (w[1][1] - w[0][1]).powi(2)).sqrt())
        .collect();
    let total: f64 = lengths.iter().sum();
    (0..steps)
        .map(|s| {
            let mut at = total * s as f64 / (steps - 1) as f64;
            for (k, &l) in lengths.iter().enumerate() {
                if at <= l || k == lengths.len() - 1 {
                    let t = if l > 0.0 { (at / l).min(1.0) } else { 0.0 };
                    let (a, b) = (vertices[k], vertices[k + 1]);
                    return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
                }
                at -= l;
            }
            vertices[0]
        })
        .collect()
}

fn numbers(values: &[f64]) -> String {
    let body: Vec<String> =
        values.iter().map(|v| if v.is_finite() { format!("{v:.4}") } else { "null".into() }).collect();
    format!("[{}]", body.join(","))
}

fn points(values: &[[f64; 2]]) -> String {
    let body: Vec<String> = values.iter().map(|p| format!("[{:.4},{:.4}]", p[0], p[1])).collect();
    format!("[{}]", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_inside_a_polygon() {
        let square = [[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]];
        assert!(inside(&square, [1.0, 1.0]));
        assert!(!inside(&square, [3.0, 1.0]));
        // a concave L: the notch is outside
        let l = [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [1.0, 1.0], [1.0, 2.0], [0.0, 2.0]];
        assert!(inside(&l, [0.5, 1.5]) && !inside(&l, [1.5, 1.5]));
    }

    #[test]
    fn large_halves_are_drawn_from_an_even_sample() {
        assert_eq!(even_sample(5, 10), vec![0, 1, 2, 3, 4]);
        let sample = even_sample(1_000_000, 50_000);
        assert_eq!((sample.len(), sample[0], sample[1], sample[49_999]), (50_000, 0, 20, 999_980));
    }

    #[test]
    fn paths_are_resampled_evenly_by_length() {
        let p = resample(&[[0.0, 0.0], [3.0, 0.0], [3.0, 1.0]], 5);
        let expected = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [3.0, 1.0]];
        for (a, b) in p.iter().zip(expected) {
            assert!((a[0] - b[0]).abs() < 1e-12 && (a[1] - b[1]).abs() < 1e-12, "{p:?}");
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
