//! edgerank hot path: feature assembly, candidate blending and re-ranking on
//! plain slices, the ANN index (usearch's C++ core) and the IVF index for deep searches. No Python here; `edgerank-hotpath-py` is the binding.

mod ann;
mod assemble;
mod blend;
mod dot16;
mod error;
mod item_rows;
mod ivf;
mod ln1p;
mod npy;
pub mod priority;
mod rerank;
pub mod residency;
pub mod rng;

pub use ann::{AnnIndex, Hits};
pub use assemble::{
    write_item_rows, Assembler, ItemTable, Matrix, RowLayout, UserFeatures, N_CROSS,
};
pub use blend::{Blended, Blender, Source};
pub use error::{Error, Result};
pub use ivf::{IvfIndex, IvfTables};
pub use rerank::{Reranked, Reranker};
