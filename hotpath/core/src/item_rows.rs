//! The packed item rows as a bundle file: a NumPy `.npy` (format 1.0), f32
//! `[n_items, stride]`, C order, its data 64-byte aligned. Written once by the
//! trainer, memory-mapped read-only by every node process.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";
/// Magic, two version bytes, the header length (u16 in format 1.0).
const PREAMBLE: usize = MAGIC.len() + 2 + 2;
/// The data offset is a multiple of this (NumPy pads its headers to 64 too).
pub(crate) const ALIGN: usize = 64;
const F32: usize = std::mem::size_of::<f32>();

fn error(path: &Path, reason: impl Into<String>) -> Error {
    Error::ItemRows {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The `.npy` header for `rows x cols` little-endian f32, padded so the data starts on `ALIGN`.
pub(crate) fn header(rows: usize, cols: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let len = (PREAMBLE + dict.len() + 1).next_multiple_of(ALIGN) - PREAMBLE;
    let mut out = Vec::with_capacity(PREAMBLE + len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&u16::try_from(len).expect("a short header").to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(PREAMBLE + len - 1, b' ');
    out.push(b'\n');
    out
}

/// `(data offset, rows, cols)` of a format 1.0 header of little-endian f32 in C order.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(usize, usize, usize)> {
    if bytes.len() < PREAMBLE || &bytes[..MAGIC.len()] != MAGIC {
        return Err(error(path, "not a .npy file (no NumPy magic)"));
    }
    if bytes[6..8] != [1, 0] {
        return Err(error(
            path,
            format!("npy format {}.{}, expected 1.0", bytes[6], bytes[7]),
        ));
    }
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let offset = PREAMBLE + len;
    let dict = bytes
        .get(PREAMBLE..offset)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| error(path, "truncated or non-ASCII npy header"))?;
    let value = |key: &str| -> Result<&str> {
        let at = dict
            .find(&format!("'{key}':"))
            .ok_or_else(|| error(path, format!("npy header has no {key:?}: {}", dict.trim())))?;
        Ok(dict[at + key.len() + 3..].trim_start())
    };
    if !value("descr")?.starts_with("'<f4'") || cfg!(target_endian = "big") {
        return Err(error(
            path,
            format!("dtype is not little-endian f32: {}", dict.trim()),
        ));
    }
    if !value("fortran_order")?.starts_with("False") {
        return Err(error(path, "rows are in Fortran order, expected C order"));
    }
    let shape = value("shape")?;
    let dims: Vec<usize> = shape
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner.split(',').map(str::trim).filter(|d| !d.is_empty()))
        .ok_or_else(|| {
            error(
                path,
                format!("unreadable shape in npy header: {}", dict.trim()),
            )
        })?
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| error(path, format!("unreadable shape in npy header: {e}")))?;
    match dims[..] {
        [rows, cols] => Ok((offset, rows, cols)),
        _ => Err(error(
            path,
            format!("shape {dims:?}, expected 2 dimensions"),
        )),
    }
}

/// A read-only map of an item rows file, checked: its rows are `stride` floats,
/// start on a 64-byte line, and the file holds exactly `rows * stride` floats.
#[derive(Debug)]
pub(crate) struct MappedRows {
    map: Mmap,
    offset: usize,
    len: usize,
    rows: usize,
}

impl MappedRows {
    pub(crate) fn open(path: &Path, stride: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| error(path, e.to_string()))?;
        // SAFETY: bundle files are immutable once written (a new version is a
        // new directory); the map is only read, and only after the checks below.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| error(path, e.to_string()))?;
        let (offset, rows, cols) = parse_header(path, &map)?;
        if cols != stride {
            return Err(error(
                path,
                format!("rows of {cols} floats, expected {stride} (the bundle's dimensions)"),
            ));
        }
        if offset % ALIGN != 0 || map.as_ptr().addr() % ALIGN != 0 {
            return Err(error(
                path,
                format!("data at byte {offset}, not on a {ALIGN}-byte line"),
            ));
        }
        let len = rows.saturating_mul(stride);
        let want = len.saturating_mul(F32).saturating_add(offset);
        if map.len() != want {
            return Err(error(
                path,
                format!(
                    "{} bytes, expected {want} ({rows} rows of {stride} floats after a {offset}-byte header)",
                    map.len()
                ),
            ));
        }
        Ok(Self {
            map,
            offset,
            len,
            rows,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn floats(&self) -> &[f32] {
        // SAFETY: `open` checked that the map holds `len` floats from `offset`,
        // which is 64-byte aligned (>= the alignment of f32); the map is
        // read-only and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.offset).cast(), self.len) }
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
