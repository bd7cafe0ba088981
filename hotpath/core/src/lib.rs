//! edgerank hot path: feature assembly, candidate blending and re-ranking on
//! plain slices. No Python here; `edgerank-hotpath-py` is the binding.

mod assemble;
mod blend;
mod error;
mod ln1p;
mod rerank;
pub mod rng;

pub use assemble::{Assembler, ItemTable, Matrix, UserFeatures, N_CROSS};
pub use blend::{Blended, Blender, Source};
pub use error::{Error, Result};
pub use rerank::{Reranked, Reranker};
