//! `IvfIndex`: an inverted-file index over the unit-norm item embeddings, for
//! deep inner-product searches (hundreds of hits) whose cost barely grows with
//! the number of hits, unlike a graph search whose expansion is at least `k`.
//!
//! The items are split into `nlist` lists by their nearest k-means centroid
//! (the trainer's `trainer/ivf.py`). A search scores the query against every
//! centroid, scans the `nprobe` best lists with the items' 8-bit codes
//! (`code[d] * scale[d]` approximates the embedding), keeps the `rescore` best
//! approximate hits, scores those exactly with the f32 embeddings, and returns
//! the best `k` by exact score (ties by item id). With `nprobe = nlist` and
//! `rescore` at least the catalog, that is an exact search.
//!
//! The tables are the bundle's five `ivf_*.npy` files: [`IvfIndex::open`] maps
//! them read-only (page cache, shared by every process and version that maps
//! them), [`IvfIndex::new`] copies arrays (the trainer's, the tests').
//!
//! The dot products (`dot16.rs`) run in 16 lanes: with AVX2 when the CPU has
//! it (checked at run time; the search is compiled for AVX2 then), else a
//! portable loop, with the same bits. Per-thread buffers keep a search from
//! allocating, except for the two vectors it returns.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::ann::Hits;
use crate::dot16::dot;
use crate::error::{check_ids, check_len, Error, Result};
use crate::npy::{self, Element};

/// The trainer's arrays, borrowed for [`IvfIndex::new`] (which copies them);
/// in a bundle, the files `ivf_{field}.npy` (see [`IvfIndex::open`]).
#[derive(Debug, Clone, Copy)]
pub struct IvfTables<'a> {
    /// f32 `[nlist, ndim]`, row-major.
    pub centroids: &'a [f32],
    /// `nlist + 1` positions: list `l` holds `items[offsets[l]..offsets[l + 1]]`.
    pub offsets: &'a [u32],
    /// Every item row exactly once, list after list.
    pub items: &'a [u32],
    /// i8 `[len(items), ndim]`: the codes of `items`, in the same order.
    pub codes: &'a [i8],
    /// f32 `[ndim]`: a code `c` in dimension `d` stands for `c * scale[d]`.
    pub scale: &'a [f32],
}

/// The lists and the codes (mapped bundle files, or owned copies); the f32
/// embeddings for the exact re-score are passed to each search (the bundle's
/// mapped table, not copied): item `i`'s embedding is the first `ndim` values
/// of row `i` of a table whose rows are `stride >= ndim` values long (the
/// packed item rows, or the embeddings).
#[derive(Debug)]
pub struct IvfIndex {
    ndim: usize,
    nlist: usize,
    len: usize,
    tables: Storage,
}

/// One of the five tables: copied ([`IvfIndex::new`]) or mapped
/// ([`IvfIndex::open`]).
#[derive(Debug)]
enum Table<T: Element> {
    Owned(Vec<T>),
    Mapped(npy::Array<T>),
}

impl<T: Element> Table<T> {
    fn values(&self) -> &[T] {
        match self {
            Self::Owned(v) => v,
            Self::Mapped(a) => a.values(),
        }
    }
}

/// The five tables, all copied or all mapped.
#[derive(Debug)]
struct Storage {
    centroids: Table<f32>,
    offsets: Table<u32>,
    items: Table<u32>,
    codes: Table<i8>,
    scale: Table<f32>,
}

impl Storage {
    fn tables(&self) -> IvfTables<'_> {
        IvfTables {
            centroids: self.centroids.values(),
            offsets: self.offsets.values(),
            items: self.items.values(),
            codes: self.codes.values(),
            scale: self.scale.values(),
        }
    }
}

/// A (score, row or id) pair; the best first: score descending, then the
/// smaller row or id (a total order, so every selection is deterministic).
type Scored = (f32, u32);

fn best_first(a: &Scored, b: &Scored) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Per-thread buffers reused across searches (no allocation per search once
/// a thread has searched at its largest depth).
#[derive(Default)]
struct Scratch {
    lists: Vec<Scored>,
    hits: Vec<Scored>,
    query: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl IvfIndex {
    /// Checks the tables (shapes, offsets, every item once) and copies them.
    pub fn new(tables: &IvfTables<'_>, ndim: usize) -> Result<Self> {
        let nlist = check(tables, ndim)?;
        Ok(Self {
            ndim,
            nlist,
            len: tables.items.len(),
            tables: Storage {
                centroids: Table::Owned(tables.centroids.to_vec()),
                offsets: Table::Owned(tables.offsets.to_vec()),
                items: Table::Owned(tables.items.to_vec()),
                codes: Table::Owned(tables.codes.to_vec()),
                scale: Table::Owned(tables.scale.to_vec()),
            },
        })
    }

    /// Maps the index files of a bundle directory (`ivf_centroids.npy`,
    /// `ivf_offsets.npy`, `ivf_items.npy`, `ivf_codes.npy`, `ivf_scale.npy`:
    /// a field of [`IvfTables`] each) read-only, no copy, and checks them as
    /// [`IvfIndex::new`] checks its arrays, for `n_items` items (the rows of
    /// the embeddings it will re-score with) of `ndim` dimensions: each
    /// file's header (format 1.0, dtype, C order), shape and length, the
    /// offsets, the scales, and every item in exactly one list. A bad file is
    /// an [`Error::IvfFile`] that names it and says why.
    pub fn open(dir: &Path, n_items: usize, ndim: usize) -> Result<Self> {
        check_ndim(ndim)?;
        let centroids = map::<f32>(dir, "centroids", |shape| match *shape {
            [nlist, d] if nlist >= 1 && d == ndim => Ok(()),
            _ => Err(format!(
                "shape {shape:?}, expected [nlist >= 1, {ndim}] (lists, dimensions)"
            )),
        })?;
        let nlist = centroids.shape()[0];
        let offsets = map::<u32>(
            dir,
            "offsets",
            expect(&[nlist + 1], "one more than the lists"),
        )?;
        let items = map::<u32>(dir, "items", expect(&[n_items], "every item once"))?;
        let codes = map::<i8>(dir, "codes", expect(&[n_items, ndim], "items, dimensions"))?;
        let scale = map::<f32>(dir, "scale", expect(&[ndim], "dimensions"))?;
        let tables = Storage {
            centroids: Table::Mapped(centroids),
            offsets: Table::Mapped(offsets),
            items: Table::Mapped(items),
            codes: Table::Mapped(codes),
            scale: Table::Mapped(scale),
        };
        check(&tables.tables(), ndim).map_err(|err| in_file(dir, err))?;
        Ok(Self {
            ndim,
            nlist,
            len: n_items,
            tables,
        })
    }

    /// The `min(k, len)` best items for `query` by exact dot product with
    /// the first `ndim` values of their rows of `vectors` (f32 `[len, stride]`),
    /// best first, ties by id.
    /// `nprobe` lists are scanned (at most `nlist`; 0 is an error) and the
    /// best `max(rescore, k)` approximate hits are re-scored exactly.
    pub fn search(
        &self,
        query: &[f32],
        vectors: &[f32],
        stride: usize,
        k: usize,
        nprobe: usize,
        rescore: usize,
    ) -> Result<Hits> {
        check_len("vector", self.ndim, query.len())?;
        if stride < self.ndim {
            return Err(Error::InvalidValue {
                what: "stride",
                reason: format!(
                    "rows of {stride} values cannot hold {} dimensions",
                    self.ndim
                ),
            });
        }
        check_len("vectors", self.len * stride, vectors.len())?;
        if let Some(d) = query.iter().position(|x| !x.is_finite()) {
            return Err(Error::InvalidValue {
                what: "vector",
                reason: format!("vector[{d}] = {} is not finite", query[d]),
            });
        }
        if nprobe == 0 {
            return Err(Error::InvalidValue {
                what: "nprobe",
                reason: "must be >= 1, got 0".to_owned(),
            });
        }
        let k = k.min(self.len);
        if k == 0 {
            return Ok(Hits {
                items: Vec::new(),
                scores: Vec::new(),
            });
        }
        let depth = Depth {
            stride,
            k,
            nprobe: nprobe.min(self.nlist),
            rescore: rescore.max(k),
        };
        SCRATCH.with(|scratch| {
            let scratch = &mut *scratch.borrow_mut();
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return Ok(unsafe { self.search_avx2(query, vectors, depth, scratch) });
            }
            Ok(self.search_with::<false>(query, vectors, depth, scratch))
        })
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn search_avx2(
        &self,
        query: &[f32],
        vectors: &[f32],
        depth: Depth,
        scratch: &mut Scratch,
    ) -> Hits {
        self.search_with::<true>(query, vectors, depth, scratch)
    }

    /// The search proper, inlined into each dispatch target; `AVX2` only when
    /// the CPU has it (see `search`).
    #[inline(always)]
    fn search_with<const AVX2: bool>(
        &self,
        query: &[f32],
        vectors: &[f32],
        depth: Depth,
        scratch: &mut Scratch,
    ) -> Hits {
        let ndim = self.ndim;
        let IvfTables {
            centroids,
            offsets,
            items,
            codes,
            scale,
        } = self.tables.tables();
        let Scratch {
            lists,
            hits,
            query: scaled,
        } = scratch;
        lists.clear();
        for (l, row) in centroids.chunks_exact(ndim).enumerate() {
            lists.push((dot::<AVX2, f32>(query, row), l as u32));
        }
        select_best(lists, depth.nprobe);
        scaled.clear();
        scaled.extend(query.iter().zip(scale).map(|(q, s)| q * s));
        hits.clear();
        for &(_, l) in lists.iter() {
            let (start, end) = (
                offsets[l as usize] as usize,
                offsets[l as usize + 1] as usize,
            );
            let list = &codes[start * ndim..end * ndim];
            for (row, code) in (start..end).zip(list.chunks_exact(ndim)) {
                hits.push((dot::<AVX2, i8>(scaled, code), row as u32));
            }
        }
        select_best(hits, depth.rescore);
        for hit in hits.iter_mut() {
            let id = items[hit.1 as usize];
            let start = id as usize * depth.stride;
            let row = &vectors[start..start + ndim];
            *hit = (dot::<AVX2, f32>(query, row), id);
        }
        hits.sort_unstable_by(best_first);
        hits.truncate(depth.k);
        Hits {
            items: hits.iter().map(|h| h.1).collect(),
            scores: hits.iter().map(|h| h.0).collect(),
        }
    }

    /// The number of items (every item is in one list).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn ndim(&self) -> usize {
        self.ndim
    }

    pub fn nlist(&self) -> usize {
        self.nlist
    }
}

/// A search's row stride and depths, already clamped: `k <= len`, `nprobe <= nlist`, `rescore >= k`.
#[derive(Debug, Clone, Copy)]
struct Depth {
    stride: usize,
    k: usize,
    nprobe: usize,
    rescore: usize,
}

/// Keeps the `n` best of `scored` (in no particular order).
fn select_best(scored: &mut Vec<Scored>, n: usize) {
    if n < scored.len() {
        scored.select_nth_unstable_by(n - 1, best_first);
        scored.truncate(n);
    }
}

/// The file of a table, by its field in [`IvfTables`] (the `what` of its errors).
fn file(dir: &Path, what: &str) -> PathBuf {
    dir.join(format!("ivf_{what}.npy"))
}

/// Maps `ivf_{what}.npy` of `dir` (its data on `T`'s alignment: NumPy's 64 is not needed).
fn map<T: Element>(
    dir: &Path,
    what: &str,
    check_shape: impl FnOnce(&[usize]) -> std::result::Result<(), String>,
) -> Result<npy::Array<T>> {
    let path = file(dir, what);
    npy::Array::open(&path, std::mem::align_of::<T>(), check_shape).map_err(|reason| {
        Error::IvfFile {
            path: path.display().to_string(),
            reason,
        }
    })
}

/// A shape check: exactly `want`, or a message that says what its dimensions are.
fn expect<'a>(
    want: &'a [usize],
    meaning: &'a str,
) -> impl FnOnce(&[usize]) -> std::result::Result<(), String> + 'a {
    move |shape| {
        if shape == want {
            Ok(())
        } else {
            Err(format!("shape {shape:?}, expected {want:?} ({meaning})"))
        }
    }
}

/// A table check's error as an error of the file that holds the table.
fn in_file(dir: &Path, err: Error) -> Error {
    let (what, reason) = match &err {
        Error::InvalidValue { what, reason } => (*what, reason.clone()),
        Error::Length {
            what,
            expected,
            got,
        } => (*what, format!("expected length {expected}, got {got}")),
        Error::UnknownItem { what, .. } => (*what, err.to_string()),
        _ => return err,
    };
    Error::IvfFile {
        path: file(dir, what).display().to_string(),
        reason,
    }
}

/// Checks the tables: the shapes (for `ndim`), the offsets, finite scales,
/// every item exactly once. Returns `nlist`.
fn check(tables: &IvfTables<'_>, ndim: usize) -> Result<usize> {
    check_ndim(ndim)?;
    let centroids = tables.centroids;
    if centroids.is_empty() || centroids.len() % ndim != 0 {
        return Err(Error::InvalidValue {
            what: "centroids",
            reason: format!(
                "{} values are not one or more rows of {ndim}",
                centroids.len()
            ),
        });
    }
    let nlist = centroids.len() / ndim;
    let n = tables.items.len();
    check_len("offsets", nlist + 1, tables.offsets.len())?;
    check_offsets(tables.offsets, n)?;
    check_len("codes", n * ndim, tables.codes.len())?;
    check_len("scale", ndim, tables.scale.len())?;
    if let Some(d) = tables
        .scale
        .iter()
        .position(|s| !(s.is_finite() && *s >= 0.0))
    {
        return Err(Error::InvalidValue {
            what: "scale",
            reason: format!(
                "scale[{d}] = {} is not a finite value >= 0",
                tables.scale[d]
            ),
        });
    }
    check_ids("items", tables.items, n)?;
    let mut seen = vec![false; n];
    for (index, &id) in tables.items.iter().enumerate() {
        if std::mem::replace(&mut seen[id as usize], true) {
            return Err(twice(tables.items, index));
        }
    }
    Ok(nlist)
}

/// `items[index]` repeats an earlier item (all are below `items.len()`): so one item is in no list.
#[cold]
fn twice(items: &[u32], index: usize) -> Error {
    let mut seen = vec![false; items.len()];
    for &id in items {
        seen[id as usize] = true;
    }
    let missing = seen.iter().position(|s| !s).unwrap_or(items.len());
    Error::InvalidValue {
        what: "items",
        reason: format!(
            "items[{index}] = {} is in the lists twice, and item {missing} in none",
            items[index]
        ),
    }
}

fn check_ndim(ndim: usize) -> Result<()> {
    if ndim == 0 {
        return Err(Error::InvalidValue {
            what: "ndim",
            reason: "must be >= 1, got 0".to_owned(),
        });
    }
    Ok(())
}

fn check_offsets(offsets: &[u32], n: usize) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::InvalidValue {
            what: "offsets",
            reason,
        })
    };
    if offsets[0] != 0 {
        return bad(format!("offsets[0] = {}, expected 0", offsets[0]));
    }
    if let Some(l) = offsets.windows(2).position(|w| w[1] < w[0]) {
        return bad(format!(
            "offsets[{}] = {} < offsets[{l}] = {}",
            l + 1,
            offsets[l + 1],
            offsets[l]
        ));
    }
    let last = offsets[offsets.len() - 1];
    if last as usize != n {
        return bad(format!(
            "the last offset is {last}, expected {n} (the items)"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "ivf_tests.rs"]
mod tests;
