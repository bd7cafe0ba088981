//! The packed item rows as a bundle file: a NumPy `.npy` (format 1.0), f32
//! `[n_items, stride]`, C order, its data 64-byte aligned. Written once by the
//! trainer, memory-mapped read-only by every node process (`npy.rs` maps and
//! checks it).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::npy::{self, ALIGN};

const F32: usize = std::mem::size_of::<f32>();

fn error(path: &Path, reason: impl Into<String>) -> Error {
    Error::ItemRows {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The `.npy` header for `rows x cols` little-endian f32, padded so the data starts on `ALIGN`.
pub(crate) fn header(rows: usize, cols: usize) -> Vec<u8> {
    npy::header::<f32>(&[rows, cols])
}

/// A read-only map of an item rows file, checked: its rows are `stride` floats,
/// start on a 64-byte line, and the file holds exactly `rows * stride` floats.
#[derive(Debug)]
pub(crate) struct MappedRows {
    array: npy::Array<f32>,
}

impl MappedRows {
    pub(crate) fn open(path: &Path, stride: usize) -> Result<Self> {
        let array = npy::Array::open(path, ALIGN, |shape| match *shape {
            [_, cols] if cols == stride => Ok(()),
            [_, cols] => Err(format!(
                "rows of {cols} floats, expected {stride} (the bundle's dimensions)"
            )),
            _ => Err(format!("shape {shape:?}, expected 2 dimensions")),
        })
        .map_err(|reason| error(path, reason))?;
        Ok(Self { array })
    }

    pub(crate) fn rows(&self) -> usize {
        self.array.shape()[0]
    }

    pub(crate) fn floats(&self) -> &[f32] {
        self.array.values()
    }
}

/// Writes `rows` rows of `stride` floats, each filled by `fill(i, row)`, as an item rows file.
pub(crate) fn write(
    path: &Path,
    rows: usize,
    stride: usize,
    mut fill: impl FnMut(usize, &mut [f32]),
) -> Result<()> {
    let io = |e: std::io::Error| error(path, e.to_string());
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io)?);
    out.write_all(&header(rows, stride)).map_err(io)?;
    let mut row = vec![0.0f32; stride];
    let mut bytes = vec![0u8; stride * F32];
    for i in 0..rows {
        fill(i, &mut row);
        for (b, x) in bytes.chunks_exact_mut(F32).zip(&row) {
            b.copy_from_slice(&x.to_le_bytes());
        }
        out.write_all(&bytes).map_err(io)?;
    }
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)
}
