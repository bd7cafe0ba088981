"""Type stub for the compiled ``hotpath._native`` module (hand-written)."""

from collections.abc import Iterable
from os import PathLike
from typing import Self, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "RESIDENCY_PIECE_BYTES",
    "AnnIndex",
    "AnnIndexError",
    "Assembler",
    "Blender",
    "HotpathError",
    "ItemRowsError",
    "IvfIndex",
    "IvfIndexError",
    "LayoutError",
    "Reranker",
    "ShapeError",
    "UnknownItemError",
    "__version__",
    "bulk_niceness",
    "file_mappings",
    "item_row_layout",
    "lock_code_mappings",
    "prefault_mappings",
    "release_mappings",
    "write_item_rows",
]

__version__: str
RESIDENCY_PIECE_BYTES: int

class HotpathError(Exception):
    """Base class of every error raised by the hot path."""

class ShapeError(HotpathError, ValueError):
    """An array has the wrong length or shape, or a value is out of its domain."""

class UnknownItemError(HotpathError, IndexError):
    """An item id is not below n_items."""

class LayoutError(HotpathError, TypeError):
    """An argument is not a C-contiguous, aligned ndarray of the expected dtype."""

class AnnIndexError(HotpathError, OSError):
    """An ANN index file cannot be read (the message names it and says why), or a search of it failed."""

class ItemRowsError(HotpathError, OSError):
    """An item rows file cannot be written or mapped, or is not the packed table expected (the message says why)."""

class IvfIndexError(HotpathError, OSError):
    """An IVF index file cannot be mapped, or is not the table expected (the message names it and says why)."""

@final
class AnnIndex:
    """A usearch index file, memory-mapped read-only, searched by any number of threads at once.

    Opening and every search run with the GIL released. The usearch C++ core is
    the version of the pinned Python wheel: same file format, same results.
    """

    @staticmethod
    def open(path: str | PathLike[str], *, threads: int = 32) -> AnnIndex:
        """Map the index at ``path`` with ``threads`` search slots (a search beyond them waits for one).

        Raises ``AnnIndexError`` naming the file if it cannot be read as a usearch index.
        """
    def search(self, vector: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
        """The ``min(k, len)`` nearest entries, best first: ``(keys u32, 1 - distance f32)``.

        ``vector`` is a C-contiguous float32 array of ``ndim`` values (``ShapeError``
        otherwise, naming ``vector``); a negative ``k`` is a ``ShapeError``.
        """
    def __len__(self) -> int: ...
    @property
    def ndim(self) -> int: ...
    @property
    def metric(self) -> str:
        """usearch's name of the metric: ``"ip"``, ``"cos"``, ``"l2sq"``, ..."""
    @property
    def dtype(self) -> str:
        """The stored scalar type: ``"f16"``, ``"f32"``, ``"i8"``, ..."""
    @property
    def connectivity(self) -> int: ...
    @property
    def threads(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def expansion_search(self) -> int: ...
    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        """Set after running searches finish (>= 1)."""

@final
class Assembler:
    """Holds the item feature table; assembles one feature row per candidate.

    Row layout: ``[user_dense | item_dense[i] | emb_dot, genre_dot,
    user_recency, item_age | context]``. The table is either packed from
    arrays (``Assembler(...)``) or an item rows file mapped read-only
    (``Assembler.open``): one row per item, ``[emb | genre | dense |
    first_ts as two f32 halves of its f64 bits]``, zero-padded to a multiple
    of 16 floats.
    """

    def __new__(
        cls,
        item_dense: npt.NDArray[np.float32],
        item_emb: npt.NDArray[np.float32],
        item_genre: npt.NDArray[np.float32],
        item_first_ts: npt.NDArray[np.float64],
    ) -> Self:
        """Copy the tables into one packed row per item.

        The arrays are checked and borrowed read-only with the GIL held; the
        copy itself runs with the GIL released, so Python code must not write
        to them until the constructor returns.
        """
    @staticmethod
    def open(
        path: str | PathLike[str], emb_dim: int, n_genres: int, item_dim: int, *, check_times: bool = True
    ) -> Assembler:
        """Map an item rows file (``write_item_rows``) read-only, with no copy.

        Checks, with the GIL released, its ``.npy`` header (format 1.0, ``<f4``,
        C order, 2-d), that its rows have the stride of these dimensions, that
        its data starts on a 64-byte line, its length, and (unless ``check_times``
        is false: a file whose values were checked before) that no ``first_ts``
        is NaN; raises ``ItemRowsError`` naming the file and the reason.
        """
    @property
    def n_items(self) -> int: ...
    @property
    def item_dim(self) -> int: ...
    @property
    def emb_dim(self) -> int: ...
    @property
    def n_genres(self) -> int: ...
    def n_features(self, user_dim: int, context_dim: int) -> int: ...
    def assemble(
        self,
        user_dense: npt.NDArray[np.float32],
        user_emb: npt.NDArray[np.float32],
        user_genre: npt.NDArray[np.float32],
        user_last_ts: float,
        now_ts: float,
        context: npt.NDArray[np.float32],
        candidates: npt.NDArray[np.uint32],
    ) -> npt.NDArray[np.float32]:
        """Return a C-contiguous float32 array of shape ``(len(candidates), n_features)``."""

@final
class Blender:
    """Merges ranked candidate sources into one deduplicated pool."""

    def __new__(cls, n_items: int) -> Self: ...
    @property
    def n_items(self) -> int: ...
    def blend(
        self,
        sources: Iterable[tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32], int]],
        exclude: npt.NDArray[np.uint32],
        pool_size: int,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
        """Return ``(items, source, score)`` in take order."""

@final
class IvfIndex:
    """Inverted lists over k-means centroids with 8-bit codes (``trainer.ivf``): a deep inner-product search
    whose cost barely grows with ``k``. Built and searched with the GIL released, from any number of threads.
    """

    def __new__(
        cls,
        centroids: npt.NDArray[np.float32],
        offsets: npt.NDArray[np.uint32],
        items: npt.NDArray[np.uint32],
        codes: npt.NDArray[np.int8],
        scale: npt.NDArray[np.float32],
        vectors: npt.NDArray[np.float32],
    ) -> Self:
        """Check and copy the lists (``centroids`` [nlist, D], ``offsets`` [nlist + 1], ``items`` [n] with every
        row of ``vectors`` exactly once, ``codes`` [n, D] in ``items`` order, ``scale`` [D]); ``vectors``
        [n, S >= D], whose rows begin with the embeddings (the embeddings, or the packed item rows), is kept,
        not copied, for the exact re-score (do not write to it). ``ShapeError`` names the array that is wrong."""
    @staticmethod
    def open(directory: str | PathLike[str], vectors: npt.NDArray[np.float32], ndim: int) -> IvfIndex:
        """Map a bundle's IVF files read-only, with no copy: ``ivf_centroids.npy``, ``ivf_offsets.npy``,
        ``ivf_items.npy``, ``ivf_codes.npy`` and ``ivf_scale.npy`` of ``directory`` (``trainer.ivf.FILES``).

        Checks, with the GIL released, what the constructor checks of its arrays, for ``ndim`` dimensions and
        the rows of ``vectors`` (kept as the constructor keeps it): each file's ``.npy`` header (format 1.0,
        the dtype, C order), its shape and length, the offsets, the scales, every item in exactly one list;
        raises ``IvfIndexError`` naming the file and the reason (``ShapeError`` or ``LayoutError`` for
        ``vectors``).
        """
    def search(
        self, vector: npt.NDArray[np.float32], k: int, *, nprobe: int, rescore: int
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
        """The best ``min(k, len)`` items by exact dot product with ``vectors``, best first, ties by item.

        ``nprobe`` lists are scanned (at most ``nlist``; 0 is a ``ShapeError``), and the ``max(rescore, k)``
        best approximate hits are re-scored exactly. ``vector``: C-contiguous float32, ``ndim`` finite values.
        """
    def __len__(self) -> int: ...
    @property
    def ndim(self) -> int: ...
    @property
    def nlist(self) -> int: ...

@final
class Reranker:
    """Genre-capped ordering with seeded epsilon exploration."""

    def __new__(cls, item_primary_genre: npt.NDArray[np.uint16]) -> Self: ...
    @property
    def n_items(self) -> int: ...
    def rerank(
        self,
        candidates: npt.NDArray[np.uint32],
        scores: npt.NDArray[np.float32],
        n_results: int,
        max_per_genre: int,
        epsilon: float,
        seed: int,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
        """Return ``(positions, explored)``; positions index the input arrays."""

def item_row_layout(emb_dim: int, n_genres: int, item_dim: int) -> tuple[int, list[tuple[str, int, int]]]:
    """The packed row of items with these dimensions: ``(stride, [(column, start, stop), ...])`` in floats.

    The columns are ``emb``, ``genre``, ``dense`` and ``first_ts`` (two floats: the low, then the high half of
    its f64 bits), in that order; padding fills the row to ``stride``. ``hotpath.item_rows`` reads a table with it.
    """

def write_item_rows(
    path: str | PathLike[str],
    item_dense: npt.NDArray[np.float32],
    item_emb: npt.NDArray[np.float32],
    item_genre: npt.NDArray[np.float32],
    item_first_ts: npt.NDArray[np.float64],
) -> None:
    """Write the tables' packed rows to ``path`` as an ``.npy`` file that ``Assembler.open`` maps.

    Checked as by ``Assembler(...)``, written with the GIL released (Python code must not write to the
    arrays until it returns); ``ItemRowsError`` if the file cannot be written.
    """

def bulk_niceness(niceness: int) -> int:
    """Set how much lower than the calling thread the work of its later calls into the hot path runs, and
    return the value replaced.

    With ``niceness`` above 0, each call's work (the part that runs with the GIL released) runs on a thread
    of its own whose niceness is the caller's plus ``niceness`` (at most 19; Linux keeps it per thread), and
    the calling thread waits for it at its own priority; with 0 (the default) it runs on the calling thread.
    The calling thread never holds the GIL at the lower priority. ``ShapeError`` unless 0 <= niceness <= 19.
    """

def file_mappings(directory: str | PathLike[str]) -> list[tuple[int, int, str]]:
    """``(start, length, path)`` of this process's read-only mappings of files under ``directory``.

    ``OSError`` if ``/proc/self/maps`` cannot be read.
    """

def lock_code_mappings(piece_bytes: int = ...) -> list[tuple[str, int, int, int]]:
    """Lock this process's code in memory: every read-only mapping of a file that is also mapped executable
    (the interpreter, its shared libraries, the extension modules): their text and read-only data.

    In pieces, with the GIL released; where locking fails the mapping is only faulted in. Returns
    ``(path, length, lock_errno, errno)`` per mapping; ``OSError`` if ``/proc/self/maps`` cannot be read.
    """

def prefault_mappings(
    directory: str | PathLike[str], lock: bool, piece_bytes: int = ...
) -> list[tuple[str, int, int, int]]:
    """Fault in (with ``lock``, lock in memory) every read-only mapping of a file under ``directory``.

    In pieces of ``piece_bytes`` (the mmap lock is held per piece, not per mapping), with the GIL
    released. Where locking fails the mapping is only faulted in. Returns ``(path, length, lock_errno,
    errno)`` per mapping, 0 where that step did not fail; ``OSError`` if ``/proc/self/maps`` cannot be read.
    """

def release_mappings(directory: str | PathLike[str], piece_bytes: int = ...) -> list[tuple[str, int, int, int]]:
    """Unlock every read-only mapping of a file under ``directory`` and drop its page-table entries.

    In pieces, with the GIL released, so that the ``munmap`` that follows has nothing left to do page by
    page. The file's pages stay in the page cache. Returns ``(path, length, 0, errno)`` per mapping.
    """
