//! File formats, at the edges of the program: MRC maps and stacks, STAR, cryoSPARC .cs (NumPy),
//! PDB/mmCIF atoms, NumPy arrays in pickles; and the particle table's conversion to and from STAR and .cs.

pub mod atomic;
pub mod atoms;
pub mod cs;
pub mod images;
pub mod mrc;
pub mod npy;
pub mod pickle;
pub mod relion;
pub mod star;
pub mod weights;
