//! Plain dense arrays: volumes and image stacks as contiguous f32, x fastest.
//!
//! Index order is [z][y][x] (MRC order): voxel (x, y, z) is at `(z * ny + y) * nx + x`.

/// A 3D array of f32, x fastest.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Size along x, y, z.
    pub shape: [usize; 3],
    /// Values, `nx * ny * nz` long.
    pub data: Vec<f32>,
}

impl Volume {
    /// A volume of zeros with size (nx, ny, nz).
    pub fn zeros(shape: [usize; 3]) -> Self {
        Volume { shape, data: vec![0.0; shape.iter().product()] }
    }

    /// Wraps `data` of size (nx, ny, nz).
    ///
    /// # Panics
    /// If `data.len()` is not `nx * ny * nz`.
    #[track_caller]
    pub fn from_vec(shape: [usize; 3], data: Vec<f32>) -> Self {
        assert_eq!(data.len(), shape.iter().product::<usize>(), "volume data length");
        Volume { shape, data }
    }

    /// Linear index of voxel (x, y, z).
    #[inline]
    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        (z * self.shape[1] + y) * self.shape[0] + x
    }

    /// Value at voxel (x, y, z).
    #[inline]
    pub fn get(&self, x: usize, y: usize, z: usize) -> f32 {
        self.data[self.index(x, y, z)]
    }
}

/// A stack of 2D images of equal size, x fastest within each image.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageStack {
    /// Number of images.
    pub count: usize,
    /// Size of one image along x and y.
    pub shape: [usize; 2],
    /// Values, `count * ny * nx` long.
    pub data: Vec<f32>,
}

impl ImageStack {
    /// A stack of `count` zero images of size (nx, ny).
    pub fn zeros(count: usize, shape: [usize; 2]) -> Self {
        ImageStack { count, shape, data: vec![0.0; count * shape[0] * shape[1]] }
    }

    /// Pixels per image.
    pub fn image_len(&self) -> usize {
        self.shape[0] * self.shape[1]
    }

    /// Image `k`.
    pub fn image(&self, k: usize) -> &[f32] {
        let n = self.image_len();
        &self.data[k * n..(k + 1) * n]
    }

    /// Image `k`, mutable.
    pub fn image_mut(&mut self, k: usize) -> &mut [f32] {
        let n = self.image_len();
        &mut self.data[k * n..(k + 1) * n]
    }
}
