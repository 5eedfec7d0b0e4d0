//! Small dense linear algebra: symmetric eigendecomposition (for elastic-network normal modes).

mod symmetric_eigen;

pub use symmetric_eigen::symmetric_eigen;
