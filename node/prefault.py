"""Fill the page tables of a bundle's memory-mapped files before the bundle serves.

A node maps its bundle (the arrays with ``np.load(mmap_mode="r")``, the index with usearch's view). The
pages are in the page cache (the replicator has just written them), but each first touch of a page by
this process is still a page fault; a request that walks the HNSW graph of a freshly mapped 1M-item index
touches thousands of new pages, so the first requests on a new version ran tens of ms late. Linux's
``MADV_POPULATE_READ`` (5.14+) faults a mapping in at once; the Rust core calls it (and ``mlock``) in
4 MiB pieces with the GIL released, in the load's low-priority thread.

Faulted-in pages of a file mapping are still page cache: under memory pressure (a replicator writing the
next 1.7 GB version beside the node) the kernel evicts the ones the requests have not touched lately, and
a request that touches one again waits for the disk, with the GIL held if it is in Python. With ``lock``
(``Settings.lock_bundle``, on by default) the mappings are ``mlock``-ed instead, which also faults them in:
they stay resident until the bundle is unloaded (``munmap`` unlocks). Locking needs ``CAP_IPC_LOCK`` or an
``RLIMIT_MEMLOCK`` above the bundle's mapped size; where it fails, the mapping is only faulted in, and one
warning says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import hotpath

log = logging.getLogger(__name__)

# 1 (most kernels' default) lets memory compaction migrate locked pages; a request that touches a page being
# moved waits. In `bench replication` runs with 1, 3 of 4 had a stall of 130-146 ms, with 0, none of 5
# (BENCHMARKS.md, replication, session (8)). A host setting: a container cannot change it.
COMPACT_UNEVICTABLE = Path("/proc/sys/vm/compact_unevictable_allowed")
_compaction_warned: list[bool] = []


def mappings(directory: Path) -> list[tuple[int, int, str]]:
    """(start, length, path) of this process's read-only mappings of files under ``directory``: what
    :func:`prefault` and :func:`release` act on."""
    return hotpath.file_mappings(directory.resolve())


def prefault(directory: Path, lock: bool = False) -> int:
    """Fault in (and with ``lock``, lock in memory) every mapping of a file under ``directory``; the bytes
    covered.

    The Rust core walks the mappings in pieces of ``hotpath.RESIDENCY_PIECE_BYTES`` with the GIL released:
    one ``mlock`` per mapping of the 1M bundle held the process's mmap lock for up to 45-59 ms (the largest
    file, 384 MB), and every request thread that mapped or unmapped memory meanwhile waited that long.

    Returns 0 without raising where the platform cannot (not Linux, a kernel before 5.14): the pages
    are then faulted in by the first requests, as without this call.
    """
    try:
        done = hotpath.prefault_mappings(directory.resolve(), lock)
    except OSError as e:  # no /proc (not Linux)
        log.warning("cannot prefault %s (its first requests take the page faults): %s", directory, e)
        return 0
    unlocked = {path: os.strerror(lock_errno) for path, _, lock_errno, _ in done if lock and lock_errno}
    failed = {path: os.strerror(errno) for path, _, _, errno in done if errno}
    # One line per load for each, not one per mapping.
    _warn(unlocked, len(done), directory, "lock", "they can be evicted under memory pressure")
    if lock and len(unlocked) < len(done):
        warn_if_compaction_moves_locked_pages()
    _warn(failed, len(done), directory, "prefault", "their first requests take the page faults")
    return sum(length for path, length, _, _ in done if path not in failed)


def lock_code() -> int:
    """Lock this process's code in memory (``Settings.lock_code``); the bytes locked.

    Every read-only mapping of a file that the process also maps executable: the interpreter, its shared
    libraries, the extension modules (about 170 MB for a node, shared with every process that maps the
    same files). The pages of a path the requests rarely take (a swap, a rollback, the health service) are
    the ones memory pressure, or a host's proactive reclaim (DAMON's ``pageout``), evicts; the next run of
    that path waits for the disk, with the GIL held if the interpreter runs it, and both regions' nodes,
    swapping at once, wait for the same page: a scheduler trace caught it once. Opt-in: in ``bench
    replication`` the large stalls were no rarer with it (BENCHMARKS.md, replication, session (12)).
    Called after each load, so that the libraries a load imported are locked too; pages already locked
    cost a page-table walk. Where locking fails the mappings are only faulted in, with one warning.
    """
    try:
        done = hotpath.lock_code_mappings()
    except OSError as e:  # no /proc (not Linux)
        log.warning("cannot lock the node's code in memory (it can be evicted under memory pressure): %s", e)
        return 0
    unlocked = {path: os.strerror(lock_errno) for path, _, lock_errno, _ in done if lock_errno}
    _warn(unlocked, len(done), "the node's code", "lock", "they can be evicted under memory pressure")
    return sum(length for path, length, lock_errno, _ in done if not lock_errno)


def release(directory: Path) -> int:
    """Unlock every mapping of a file under ``directory`` and drop its page-table entries, in pieces; the
    bytes released.

    For a bundle about to be unloaded: its final ``munmap`` then has nothing left to unlock or unmap page
    by page, and does not hold the mmap lock for tens of ms (34-37 ms for the 1M bundle's files, one call
    per mapping). The pages stay in the page cache; a request still running on the bundle faults in what it
    touches again. Returns 0 where the platform cannot (the ``munmap`` then does it all).
    """
    try:
        done = hotpath.release_mappings(directory.resolve())
    except OSError as e:  # no /proc (not Linux)
        log.debug("cannot release %s in pieces: %s", directory, e)
        return 0
    failed = {path: os.strerror(errno) for path, _, _, errno in done if errno}
    _warn(failed, len(done), directory, "release", "their munmap does the work")
    return sum(length for path, length, _, _ in done if path not in failed)


def warn_if_compaction_moves_locked_pages(setting: Path = COMPACT_UNEVICTABLE) -> bool:
    """Once per process: a warning when the kernel may migrate the locked bundle's pages; whether it may."""
    try:
        allowed = setting.read_text().strip() == "1"
    except OSError:  # not Linux, or a kernel without the knob: nothing to say
        return False
    if allowed and not _compaction_warned:
        _compaction_warned.append(True)
        log.warning(
            "%s is 1: memory compaction may move the locked bundle's pages, and a request that touches one "
            "waits (100+ ms stalls in bench replication); set vm.compact_unevictable_allowed=0 on serving hosts",
            setting,
        )
    return allowed


def _warn(failed: dict[str, str], total: int, directory: Path | str, what: str, consequence: str) -> None:
    if failed:
        path, reason = next(iter(failed.items()))
        log.warning(
            "cannot %s %d of %d mappings of %s (%s): %s: %s",
            what,
            len(failed),
            total,
            directory,
            consequence,
            path,
            reason,
        )
