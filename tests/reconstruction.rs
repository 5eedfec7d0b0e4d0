//! Reconstruction: noise-free round trips from known maps.

use cryomotion::array::Volume;
use cryomotion::fft::Complex32;
use cryomotion::geometry::euler_to_matrix;
use cryomotion::imaging::{Ctf, FourierProjector, ImageRenderer};
use cryomotion::io::mrc::read_map;
use cryomotion::particles::{OpticsGroup, ParticleCtf};
use cryomotion::reconstruction::{FourierAccumulator, fsc};
use cryomotion::rng::Rng;

use crate::imaging::correlation;
use crate::util::shared;

fn optics() -> OpticsGroup {
    OpticsGroup {
        number: 1,
        name: "optics1".into(),
        pixel_size: 2.0,
        image_size: Some(64),
        voltage_kv: 300.0,
        spherical_aberration_mm: 2.7,
        amplitude_contrast: 0.1,
        ctf_premultiplied: false,
    }
}

/// Projects `truth` at `count` random poses and shifts (with random CTFs if `with_ctf`), then
/// inserts the images back through the full image path.
fn round_trip(truth: &Volume, count: usize, with_ctf: bool) -> Volume {
    let n = truth.shape[0];
    let projector = FourierProjector::new(truth, 2);
    let mut renderer = ImageRenderer::new(n);
    let mut acc = FourierAccumulator::new(n, 2);
    let mut rng = Rng::new(99);
    let hx = n / 2 + 1;
    let (mut image, mut spectrum, mut ctf, mut ctf2) =
        (vec![0.0; n * n], vec![Complex32::default(); hx * n], vec![0.0; hx * n], vec![0.0; hx * n]);
    for _ in 0..count {
        let [rot, tilt, psi] = rng.uniform_euler();
        let a = euler_to_matrix(rot, tilt, psi);
        let origin = [rng.range(-4.0, 4.0), rng.range(-4.0, 4.0)];
        let particle = ParticleCtf {
            defocus_u_angstrom: rng.range(8000.0, 25000.0),
            defocus_v_angstrom: rng.range(8000.0, 25000.0),
            defocus_angle_deg: rng.range(0.0, 180.0),
            ..Default::default()
        };
        Ctf::new(&optics(), &particle).fill_half_plane(n, 2.0, false, &mut ctf);
        renderer.render(&projector, &a, origin, with_ctf.then_some(&ctf[..]), &mut image);
        renderer.spectrum(&image, origin, &mut spectrum);
        if with_ctf {
            spectrum.iter_mut().zip(&ctf).for_each(|(v, c)| *v *= *c);
            ctf2.iter_mut().zip(&ctf).for_each(|(w, c)| *w = c * c);
        }
        acc.insert(&a, &spectrum, with_ctf.then_some(&ctf2[..]));
    }
    acc.reconstruct(None)
}

fn check_against_truth(truth: &Volume, map: &Volume, label: &str) {
    let n = truth.shape[0];
    let curve = fsc(truth, map);
    let last = (0.8 * (n / 2) as f64) as usize;
    for (s, f) in curve.iter().enumerate().take(last + 1).skip(1) {
        assert!(*f >= 0.9, "{label}: FSC with the truth {f:.3} at shell {s} of {}", n / 2);
    }
    // same density scale: least-squares scale of map onto truth
    let scale = map.data.iter().zip(&truth.data).map(|(a, b)| (a * b) as f64).sum::<f64>()
        / map.data.iter().map(|a| (a * a) as f64).sum::<f64>();
    assert!((scale - 1.0).abs() < 0.05, "{label}: density scale {scale:.3}");
    assert!(correlation(&map.data, &truth.data) > 0.98, "{label}");
}

#[test]
fn noise_free_round_trip_reproduces_the_map() {
    let truth = read_map(shared("prody_adk/1ake.mrc")).unwrap().volume;
    let map = round_trip(&truth, 3000, false);
    check_against_truth(&truth, &map, "no CTF");
}

#[test]
fn noise_free_round_trip_with_ctf_reproduces_the_map() {
    let truth = read_map(shared("prody_adk/1ake.mrc")).unwrap().volume;
    let map = round_trip(&truth, 3000, true);
    check_against_truth(&truth, &map, "CTF");
}
