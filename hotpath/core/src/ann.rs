//! `AnnIndex`: a usearch index file memory-mapped read-only and searched from
//! any number of threads at once.
//!
//! The usearch crate is pinned to the version of the Python wheel the trainer
//! builds indexes with (same C++ core, same file format, same distance
//! kernels), so a search here returns what `usearch.index.Index.search` returns
//! on the same file. Nothing here touches Python: the binding calls `view` and
//! `search` with the GIL released.
//!
//! Thread slots: the C++ index keeps one search context per "thread slot" and
//! fails a search that finds every slot taken. The index is opened with
//! `threads` slots and a counting gate in front of them, so that a search
//! beyond `threads` concurrent ones waits for a slot instead of failing.

use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError, RwLock};

use usearch::ffi::{IndexOptions, MetricKind, ScalarKind};

use crate::error::{Error, Result};

/// What a search returns: item rows and their scores, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Hits {
    /// The keys of the index, which a bundle's index sets to item rows.
    pub items: Vec<u32>,
    /// `1 - distance` (for the inner-product metric, the dot product).
    pub scores: Vec<f32>,
}

/// A read-only usearch index mapped from a file.
pub struct AnnIndex {
    inner: usearch::Index,
    path: String,
    len: usize,
    ndim: usize,
    metric: &'static str,
    scalar: &'static str,
    slots: Slots,
    /// Searches share it; changing `expansion_search` takes it alone (the C++
    /// index reads that setting without a lock of its own).
    config: RwLock<()>,
}

impl std::fmt::Debug for AnnIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnIndex")
            .field("path", &self.path)
            .field("len", &self.len)
            .field("ndim", &self.ndim)
            .field("metric", &self.metric)
            .field("scalar", &self.scalar)
            .field("threads", &self.slots.total)
            .finish()
    }
}

impl AnnIndex {
    /// Maps the index at `path` (read-only, pages shared with the page cache)
    /// with room for `threads` concurrent searches. Fails with [`Error::Index`] naming the file if it is not a
    /// usearch index this version can read.
    pub fn view(path: &Path, threads: usize) -> Result<Self> {
        let shown = path.display().to_string();
        let fail = |reason: String| Error::Index {
            path: shown.clone(),
            reason,
        };
        if threads == 0 {
            return Err(Error::InvalidValue {
                what: "threads",
                reason: "must be >= 1, got 0".to_owned(),
            });
        }
        let Some(path_str) = path.to_str() else {
            return Err(fail("the path is not valid UTF-8".to_owned()));
        };
        // usearch reads the header through a mapping of the whole file; check
        // first that it is a regular file, so that a directory or a missing
        // path gets the OS's own reason.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => return Err(fail("not a regular file".to_owned())),
            Err(err) => return Err(fail(err.to_string())),
        }
        let meta = usearch::Index::metadata(path_str)
            .map_err(|e| fail(format!("not a usearch index ({})", e.what())))?;
        let metric = metric_name(meta.metric)
            .ok_or_else(|| fail(format!("unsupported metric {:?}", meta.metric)))?;
        let scalar = scalar_name(meta.quantization)
            .ok_or_else(|| fail(format!("unsupported scalar kind {:?}", meta.quantization)))?;
        if meta.multi {
            return Err(fail(
                "a multi-vector index (several vectors per key) is not supported".to_owned(),
            ));
        }
        let ndim = usize::try_from(meta.dimensions)
            .map_err(|_| fail(format!("{} dimensions", meta.dimensions)))?;
        let options = IndexOptions {
            dimensions: ndim,
            metric: meta.metric,
            quantization: meta.quantization,
            // Read from the file by `view`; these only shape the empty index.
            connectivity: 0,
            expansion_add: 0,
            expansion_search: 0,
            multi: false,
        };
        let inner = usearch::Index::new(&options).map_err(|e| fail(e.what().to_owned()))?;
        // `view` keeps the thread limits of the index it replaces, so reserve
        // the slots first (no members: the view sizes those).
        inner
            .reserve_capacity_and_threads(0, threads)
            .map_err(|e| {
                fail(format!(
                    "cannot reserve {threads} thread slots: {}",
                    e.what()
                ))
            })?;
        inner
            .view(path_str)
            .map_err(|e| fail(e.what().to_owned()))?;
        if inner.dimensions() != ndim {
            return Err(fail(format!(
                "header says {ndim} dimensions, the index {}",
                inner.dimensions()
            )));
        }
        let len = inner.size();
        Ok(Self {
            inner,
            path: shown,
            len,
            ndim,
            metric,
            scalar,
            slots: Slots::new(threads),
            config: RwLock::new(()),
        })
    }

    /// The `k` nearest entries to `query` (fewer when the index holds fewer;
    /// none for `k = 0`), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Hits> {
        if query.len() != self.ndim {
            return Err(Error::Length {
                what: "vector",
                expected: self.ndim,
                got: query.len(),
            });
        }
        let k = k.min(self.len);
        if k == 0 {
            return Ok(Hits {
                items: Vec::new(),
                scores: Vec::new(),
            });
        }
        let matches = {
            let _slot = self.slots.acquire();
            let _config = self.config.read().unwrap_or_else(PoisonError::into_inner);
            self.inner.search(query, k)
        }
        .map_err(|e| Error::Index {
            path: self.path.clone(),
            reason: format!("search failed: {}", e.what()),
        })?;
        let mut items = Vec::with_capacity(matches.keys.len());
        for &key in &matches.keys {
            items.push(u32::try_from(key).map_err(|_| Error::Index {
                path: self.path.clone(),
                reason: format!("key {key} does not fit an item row (u32)"),
            })?);
        }
        let scores = matches.distances.iter().map(|&d| 1.0 - d).collect();
        Ok(Hits { items, scores })
    }

    /// The number of vectors.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// usearch's name of the metric: `"ip"`, `"cos"`, `"l2sq"`, ...
    pub fn metric(&self) -> &'static str {
        self.metric
    }

    /// usearch's name of the stored scalar type: `"f16"`, `"f32"`, `"i8"`, ...
    pub fn scalar(&self) -> &'static str {
        self.scalar
    }

    pub fn connectivity(&self) -> usize {
        self.inner.connectivity()
    }

    /// The number of searches that can run at once.
    pub fn threads(&self) -> usize {
        self.slots.total
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn expansion_search(&self) -> usize {
        let _config = self.config.read().unwrap_or_else(PoisonError::into_inner);
        self.inner.expansion_search()
    }

    /// Waits for running searches, then changes the search expansion.
    pub fn set_expansion_search(&self, expansion: usize) -> Result<()> {
        if expansion == 0 {
            return Err(Error::InvalidValue {
                what: "expansion_search",
                reason: "must be >= 1, got 0".to_owned(),
            });
        }
        let _config = self.config.write().unwrap_or_else(PoisonError::into_inner);
        self.inner.change_expansion_search(expansion);
        Ok(())
    }
}

fn metric_name(kind: MetricKind) -> Option<&'static str> {
    Some(match kind {
        MetricKind::IP => "ip",
        MetricKind::Cos => "cos",
        MetricKind::L2sq => "l2sq",
        MetricKind::Pearson => "pearson",
        MetricKind::Haversine => "haversine",
        MetricKind::Divergence => "divergence",
        MetricKind::Hamming => "hamming",
        MetricKind::Tanimoto => "tanimoto",
        MetricKind::Sorensen => "sorensen",
        _ => return None,
    })
}

fn scalar_name(kind: ScalarKind) -> Option<&'static str> {
    Some(match kind {
        ScalarKind::F64 => "f64",
        ScalarKind::F32 => "f32",
        ScalarKind::BF16 => "bf16",
        ScalarKind::F16 => "f16",
        ScalarKind::I8 => "i8",
        ScalarKind::U8 => "u8",
        ScalarKind::B1 => "b1",
        _ => return None,
    })
}

/// A counting gate in front of the C++ index's thread slots.
struct Slots {
    total: usize,
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(total: usize) -> Self {
        Self {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(PoisonError::into_inner);
        *free += 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
#[path = "ann_tests.rs"]
mod tests;
