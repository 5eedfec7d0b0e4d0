//! Dense layers: y = x·Wᵀ (+ b) over a batch of rows, with their backward pass.

/// A dense layer of `inputs` → `outputs`, weights row-major (outputs × inputs), optional bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// Weights, outputs × inputs.
    pub weight: Vec<f32>,
    /// Bias (outputs), if the layer has one.
    pub bias: Option<Vec<f32>>,
}

/// Products this large (multiply–adds) are split over the rayon threads; smaller ones, like the
/// decoder's per-tile layers, run on the calling thread (callers parallelise over particles).
const PARALLEL_MACS: usize = 1 << 22;

fn parallelism(m: usize, k: usize, n: usize) -> gemm::Parallelism {
    if m * k * n >= PARALLEL_MACS { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None }
}

/// C (m × n) = α·A·B + β·C, with (row, column) strides for each matrix. The `gemm` crate won our shape benchmark
/// (bench/gemm: ~100 GFLOP/s per core on 32-wide layers, 1.6× matrixmultiply, on par with faer).
#[allow(clippy::too_many_arguments)]
#[inline]
fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: &[f32],
    (rsa, csa): (isize, isize),
    b: &[f32],
    (rsb, csb): (isize, isize),
    beta: f32,
    c: &mut [f32],
    rsc: isize,
) {
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the callers check every buffer against m, k, n and the strides below
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            rsc,
            beta != 0.0,
            a.as_ptr(),
            csa,
            rsa,
            b.as_ptr(),
            csb,
            rsb,
            beta,
            alpha,
            false,
            false,
            false,
            parallelism(m, k, n),
        );
    }
}

impl Linear {
    /// A layer with weights from `init` (called once per weight, row-major) and zero bias.
    pub fn new(inputs: usize, outputs: usize, bias: bool, mut init: impl FnMut() -> f32) -> Self {
        Linear {
            inputs,
            outputs,
            weight: (0..inputs * outputs).map(|_| init()).collect(),
            bias: bias.then(|| vec![0.0; outputs]),
        }
    }

    /// y (rows × outputs) = x (rows × inputs)·Wᵀ + b.
    ///
    /// # Panics
    /// If the buffers do not match `rows`.
    pub fn forward(&self, x: &[f32], rows: usize, y: &mut [f32]) {
        assert_eq!(x.len(), rows * self.inputs, "Linear input length");
        assert_eq!(y.len(), rows * self.outputs, "Linear output length");
        let (i, o) = (self.inputs as isize, self.outputs as isize);
        sgemm(rows, self.inputs, self.outputs, 1.0, x, (i, 1), &self.weight, (1, i), 0.0, y, o);
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(self.outputs) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
    }

    /// dx (rows × inputs) = dy·W: the gradient with respect to the inputs only.
    ///
    /// # Panics
    /// If the buffers do not match the layer.
    pub fn input_gradient(&self, dy: &[f32], rows: usize, dx: &mut [f32]) {
        assert_eq!(dy.len(), rows * self.outputs, "Linear output-gradient length");
        assert_eq!(dx.len(), rows * self.inputs, "input-gradient length");
        let (i, o) = (self.inputs as isize, self.outputs as isize);
        sgemm(rows, self.outputs, self.inputs, 1.0, dy, (o, 1), &self.weight, (i, 1), 0.0, dx, i);
    }

    /// Backward: from dy (rows × outputs) and the forward input x, adds dL/dW to `dw`, dL/db to
    /// `db` (if the layer has a bias) and writes dL/dx to `dx` (if given).
    ///
    /// # Panics
    /// If the buffers do not match `rows`.
    pub fn backward(
        &self,
        x: &[f32],
        dy: &[f32],
        rows: usize,
        dx: Option<&mut [f32]>,
        dw: &mut [f32],
        db: Option<&mut [f32]>,
    ) {
        assert_eq!(x.len(), rows * self.inputs, "Linear input length");
        assert_eq!(dy.len(), rows * self.outputs, "Linear output-gradient length");
        assert_eq!(dw.len(), self.weight.len(), "weight-gradient length");
        let (i, o) = (self.inputs as isize, self.outputs as isize);
        // dW (outputs × inputs) += dyᵀ·x
        sgemm(self.outputs, rows, self.inputs, 1.0, dy, (1, o), x, (i, 1), 1.0, dw, i);
        if let Some(dx) = dx {
            self.input_gradient(dy, rows, dx);
        }
        if let (Some(db), Some(_)) = (db, &self.bias) {
            for row in dy.chunks_exact(self.outputs) {
                db.iter_mut().zip(row).for_each(|(d, g)| *d += g);
            }
        }
    }
}
