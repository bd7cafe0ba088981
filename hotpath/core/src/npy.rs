//! NumPy `.npy` arrays (format 1.0, little-endian, C order) as bundle files:
//! the header, and a checked read-only map of one array. The item rows file
//! (`item_rows.rs`) and the IVF index files (`ivf.rs`) are read through here.

use std::fs::File;
use std::marker::PhantomData;
use std::path::Path;

use memmap2::Mmap;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Magic, two version bytes, the header length (u16 in format 1.0).
const PREAMBLE: usize = MAGIC.len() + 2 + 2;
/// NumPy pads its headers so that the data starts on a multiple of this.
pub(crate) const ALIGN: usize = 64;

/// A value type an array file can hold: only plain numbers, for which every
/// bit pattern is a value (a map is read as a slice of them).
pub(crate) trait Element: Copy {
    /// The header's `descr`.
    const DESCR: &'static str;
    /// The dtype, for messages.
    const DTYPE: &'static str;
    /// What its values are called in a length message.
    const VALUES: &'static str;
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    const DTYPE: &'static str = "little-endian f32";
    const VALUES: &'static str = "floats";
}

impl Element for u32 {
    const DESCR: &'static str = "<u4";
    const DTYPE: &'static str = "little-endian u32";
    const VALUES: &'static str = "u32 values";
}

impl Element for i8 {
    const DESCR: &'static str = "|i1";
    const DTYPE: &'static str = "i8";
    const VALUES: &'static str = "i8 values";
}

/// The format 1.0 header of a C-order array of `T` with this shape, as NumPy
/// writes it, padded so that the data starts on `ALIGN`.
pub(crate) fn header<T: Element>(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims[..] {
        [ref one] => format!("({one},)"),
        _ => format!("({})", dims.join(", ")),
    };
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        T::DESCR
    );
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

/// `(data offset, shape)` of a format 1.0 header of `T` in C order; the error
/// is the reason, for the caller to put beside the file's path.
fn parse_header<T: Element>(bytes: &[u8]) -> Result<(usize, Vec<usize>), String> {
    if bytes.len() < PREAMBLE || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a .npy file (no NumPy magic)".to_owned());
    }
    if bytes[6..8] != [1, 0] {
        return Err(format!(
            "npy format {}.{}, expected 1.0",
            bytes[6], bytes[7]
        ));
    }
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let offset = PREAMBLE + len;
    let dict = bytes
        .get(PREAMBLE..offset)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or("truncated or non-ASCII npy header")?;
    let value = |key: &str| -> Result<&str, String> {
        let at = dict
            .find(&format!("'{key}':"))
            .ok_or_else(|| format!("npy header has no {key:?}: {}", dict.trim()))?;
        Ok(dict[at + key.len() + 3..].trim_start())
    };
    if !value("descr")?.starts_with(&format!("'{}'", T::DESCR)) || cfg!(target_endian = "big") {
        return Err(format!("dtype is not {}: {}", T::DTYPE, dict.trim()));
    }
    if !value("fortran_order")?.starts_with("False") {
        return Err("rows are in Fortran order, expected C order".to_owned());
    }
    let unreadable = |e: &dyn std::fmt::Display| format!("unreadable shape in npy header: {e}");
    let shape = value("shape")?
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inner, _)| inner.split(',').map(str::trim).filter(|d| !d.is_empty()))
        .ok_or_else(|| unreadable(&dict.trim()))?
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|e| unreadable(&e))?;
    Ok((offset, shape))
}

/// `6 rows of 32 floats`, `300 u32 values`: the values a shape holds, for messages.
fn describe<T: Element>(shape: &[usize]) -> String {
    match shape {
        [rows, cols] => format!("{rows} rows of {cols} {}", T::VALUES),
        [len] => format!("{len} {}", T::VALUES),
        _ => format!("shape {shape:?} of {}", T::VALUES),
    }
}

/// A read-only map of one `.npy` array of `T`, checked: its header (format
/// 1.0, dtype, C order, the shape the caller expects), its data on an `align`
/// boundary, and exactly the bytes its shape holds.
#[derive(Debug)]
pub(crate) struct Array<T> {
    map: Mmap,
    offset: usize,
    shape: Vec<usize>,
    len: usize,
    values: PhantomData<T>,
}

impl<T: Element> Array<T> {
    /// Maps `path`; `check_shape` says why a shape is not the one expected.
    /// The error is the reason, for the caller to put beside the path.
    pub(crate) fn open(
        path: &Path,
        align: usize,
        check_shape: impl FnOnce(&[usize]) -> Result<(), String>,
    ) -> Result<Self, String> {
        debug_assert!(align >= std::mem::align_of::<T>() && align.is_power_of_two());
        let file = File::open(path).map_err(|e| e.to_string())?;
        // SAFETY: bundle files are immutable once written (a new version is a
        // new directory); the map is only read, and only after the checks below.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| e.to_string())?;
        let (offset, shape) = parse_header::<T>(&map)?;
        check_shape(&shape)?;
        if offset % align != 0 || map.as_ptr().addr() % align != 0 {
            return Err(format!("data at byte {offset}, not on a {align}-byte line"));
        }
        let len = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let want = len
            .and_then(|n| n.checked_mul(std::mem::size_of::<T>()))
            .and_then(|n| n.checked_add(offset));
        match (len, want) {
            (Some(len), Some(want)) if want == map.len() => Ok(Self {
                map,
                offset,
                shape,
                len,
                values: PhantomData,
            }),
            (_, want) => Err(format!(
                "{} bytes, expected {} ({} after a {offset}-byte header)",
                map.len(),
                want.map_or_else(
                    || "more than can be addressed".to_owned(),
                    |w| w.to_string()
                ),
                describe::<T>(&shape)
            )),
        }
    }

    pub(crate) fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub(crate) fn values(&self) -> &[T] {
        // SAFETY: `open` checked that the map holds `len` values of `T` from
        // `offset`, on a boundary of at least `T`'s alignment; the map is
        // read-only and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(self.offset).cast(), self.len) }
    }
}
