//! ZYZ Euler angles (RELION's rot, tilt, psi, in degrees) ↔ rotation matrices.

/// A 3×3 matrix, row-major.
pub type Mat3 = [[f64; 3]; 3];

/// RELION's rotation matrix for Euler angles in degrees (`Euler_angles2matrix`).
pub fn euler_to_matrix(rot: f64, tilt: f64, psi: f64) -> Mat3 {
    let (sa, ca) = rot.to_radians().sin_cos();
    let (sb, cb) = tilt.to_radians().sin_cos();
    let (sg, cg) = psi.to_radians().sin_cos();
    let (cc, cs, sc, ss) = (cb * ca, cb * sa, sb * ca, sb * sa);
    [
        [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
        [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
        [sc, ss, cb],
    ]
}

/// Euler angles (rot, tilt, psi) in degrees of a rotation matrix, as RELION's
/// `Euler_matrix2angles` chooses them (tilt in [0, 180]).
pub fn matrix_to_euler(a: &Mat3) -> (f64, f64, f64) {
    let abs_sb = (a[0][2] * a[0][2] + a[1][2] * a[1][2]).sqrt();
    let (rot, tilt, psi);
    if abs_sb > 16.0 * f32::EPSILON as f64 {
        psi = a[1][2].atan2(-a[0][2]);
        rot = a[2][1].atan2(a[2][0]);
        let sign_sb = if psi.sin().abs() < f32::EPSILON as f64 {
            (-a[0][2] / psi.cos()).signum()
        } else if psi.sin() > 0.0 {
            a[1][2].signum()
        } else {
            -a[1][2].signum()
        };
        tilt = (sign_sb * abs_sb).atan2(a[2][2]);
    } else if a[2][2] > 0.0 {
        rot = 0.0;
        tilt = 0.0;
        psi = (-a[1][0]).atan2(a[0][0]);
    } else {
        rot = 0.0;
        tilt = std::f64::consts::PI;
        psi = a[1][0].atan2(-a[0][0]);
    }
    (rot.to_degrees(), tilt.to_degrees(), psi.to_degrees())
}

/// Rotation matrix of an axis–angle vector (direction = axis, length = angle in radians), by
/// Rodrigues' formula; rotates column vectors counter-clockwise about the axis.
pub fn axis_angle_to_matrix(v: [f64; 3]) -> Mat3 {
    let theta = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if theta < 1e-12 {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    let [x, y, z] = v.map(|c| c / theta);
    let (s, c) = theta.sin_cos();
    let t = 1.0 - c;
    [
        [c + x * x * t, x * y * t - z * s, x * z * t + y * s],
        [y * x * t + z * s, c + y * y * t, y * z * t - x * s],
        [z * x * t - y * s, z * y * t + x * s, c + z * z * t],
    ]
}

/// Axis–angle vector (radians) of a rotation matrix: the inverse of [`axis_angle_to_matrix`].
pub fn matrix_to_axis_angle(r: &Mat3) -> [f64; 3] {
    let cos = ((r[0][0] + r[1][1] + r[2][2] - 1.0) / 2.0).clamp(-1.0, 1.0);
    let theta = cos.acos();
    let w = [r[2][1] - r[1][2], r[0][2] - r[2][0], r[1][0] - r[0][1]];
    if theta < 1e-6 {
        return w.map(|c| c / 2.0);
    }
    if std::f64::consts::PI - theta > 1e-4 {
        let s = theta / (2.0 * theta.sin());
        return w.map(|c| c * s);
    }
    // near 180°: the axis from the largest diagonal term of (R + I) / 2 = a·aᵀ
    let k = (0..3).max_by(|&i, &j| r[i][i].total_cmp(&r[j][j])).unwrap();
    let mut axis = [0.0; 3];
    axis[k] = ((r[k][k] + 1.0) / 2.0).max(0.0).sqrt();
    for i in 0..3 {
        if i != k {
            axis[i] = (r[i][k] + r[k][i]) / (4.0 * axis[k]);
        }
    }
    if w.iter().zip(&axis).map(|(a, b)| a * b).sum::<f64>() < 0.0 {
        axis = axis.map(|c| -c);
    }
    let norm = axis.iter().map(|c| c * c).sum::<f64>().sqrt();
    axis.map(|c| c / norm * theta)
}

/// Matrix product a·b.
pub fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut c = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

/// Transpose (the inverse of a rotation).
pub fn transpose(a: &Mat3) -> Mat3 {
    let mut t = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            t[i][j] = a[j][i];
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rz(deg: f64) -> Mat3 {
        let (s, c) = deg.to_radians().sin_cos();
        [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    }

    fn ry(deg: f64) -> Mat3 {
        let (s, c) = deg.to_radians().sin_cos();
        [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]
    }

    fn max_diff(a: &Mat3, b: &Mat3) -> f64 {
        (0..9).map(|k| (a[k / 3][k % 3] - b[k / 3][k % 3]).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn matrix_is_rz_minus_psi_ry_minus_tilt_rz_minus_rot() {
        for &(rot, tilt, psi) in &[(10.0, 20.0, 30.0), (-170.0, 95.0, 45.0), (235.8, 113.1, 50.5)] {
            let expected = mat_mul(&mat_mul(&rz(-psi), &ry(-tilt)), &rz(-rot));
            assert!(max_diff(&euler_to_matrix(rot, tilt, psi), &expected) < 1e-12);
        }
    }

    #[test]
    fn euler_round_trip_including_gimbal_lock() {
        let cases = [
            (10.0, 20.0, 30.0),
            (-170.0, 95.0, 45.0),
            (0.0, 0.0, 77.0),
            (0.0, 180.0, -33.0),
            (120.0, 179.9, 5.0),
        ];
        for &(rot, tilt, psi) in &cases {
            let a = euler_to_matrix(rot, tilt, psi);
            let (r, t, p) = matrix_to_euler(&a);
            assert!(max_diff(&euler_to_matrix(r, t, p), &a) < 1e-9, "{rot} {tilt} {psi}");
            assert!((0.0..=180.0).contains(&t));
        }
    }

    #[test]
    fn axis_angle_round_trip() {
        for v in [
            [0.1, -0.2, 0.3],
            [1.0, 2.0, -0.5],
            [0.0, 0.0, 1e-8],
            [std::f64::consts::PI - 1e-6, 0.0, 0.0],
            [0.0, -2.2, 2.2],
        ] {
            let m = axis_angle_to_matrix(v);
            let back = matrix_to_axis_angle(&m);
            assert!(max_diff(&axis_angle_to_matrix(back), &m) < 1e-9, "{v:?} -> {back:?}");
        }
    }

    #[test]
    fn axis_angle_about_z_is_rz() {
        let m = axis_angle_to_matrix([0.0, 0.0, 30f64.to_radians()]);
        assert!(max_diff(&m, &rz(30.0)) < 1e-12);
        let m = axis_angle_to_matrix([0.0, -0.5, 0.0]);
        assert!(max_diff(&m, &ry(-0.5f64.to_degrees())) < 1e-12);
    }
}
