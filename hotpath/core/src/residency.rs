//! Keeping a bundle's file mappings resident, and letting them go, a piece at a time.
//!
//! `mlock`, `madvise(MADV_POPULATE_READ)` and the page-table teardown of `munmap` hold the process's
//! mmap lock for the whole range they are given. Locking the 1M bundle's files one call per mapping
//! kept another thread that mapped and unmapped memory (as Python's arenas and malloc's large
//! buffers do, on the request threads) waiting up to 45-59 ms, and their `munmap` up to 34-37 ms;
//! in pieces of [`PIECE_BYTES`], 0.8-5 ms and 0.4-2.5 ms (BENCHMARKS.md, replication, session (9)).
//!
//! The mappings are found in `/proc/self/maps` by the directory of their files, and only read-only
//! file mappings are touched: dropping the page-table entries of one (`MADV_DONTNEED`) loses nothing,
//! its pages stay in the page cache and come back on the next touch.

use std::path::Path;

/// The size of one piece.
pub const PIECE_BYTES: usize = 4 << 20;

const MADV_POPULATE_READ: libc::c_int = 22; // Linux 5.14+; not in every libc crate's target table

/// One mapping of a file under the directory: `[start, start + len)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub len: usize,
    pub path: String,
}

/// What was done to one mapping; an errno where a step failed (0 = it did not fail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub mapping: Mapping,
    /// `mlock` failed (`lock` only): the mapping was then only faulted in.
    pub lock_errno: i32,
    /// Faulting in, or (`release`) unlocking and dropping the entries, failed.
    pub errno: i32,
}

/// One line of a `/proc/PID/maps` text: (start, end, perms, path); the path may hold spaces and is
/// empty for anonymous memory.
fn parse_line(line: &str) -> Option<(usize, usize, &str, &str)> {
    // address perms offset dev inode path
    let mut fields = line.splitn(6, char::is_whitespace);
    let (range, perms) = (fields.next()?, fields.next()?);
    let path = fields.nth(3).map(str::trim_start).unwrap_or("");
    let (low, high) = range.split_once('-')?;
    let low = usize::from_str_radix(low, 16).ok()?;
    let high = usize::from_str_radix(high, 16).ok()?;
    Some((low, high.max(low), perms, path))
}

/// A mapping of a file that still exists, and that this process cannot write through.
fn read_only_file(perms: &str, path: &str) -> bool {
    path.starts_with('/') && !path.ends_with(" (deleted)") && !perms.contains('w')
}

/// The read-only mappings of files under `directory` in a `/proc/PID/maps` text.
pub fn file_mappings(maps: &str, directory: &Path) -> Vec<Mapping> {
    let mut prefix = directory.to_string_lossy().into_owned();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    maps.lines()
        .filter_map(parse_line)
        .filter(|&(_, _, perms, path)| path.starts_with(&prefix) && read_only_file(perms, path))
        .map(mapping)
        .collect()
}

fn mapping((low, high, _, path): (usize, usize, &str, &str)) -> Mapping {
    Mapping {
        start: low,
        len: high - low,
        path: path.to_string(),
    }
}

/// The read-only mappings of the code in a `/proc/PID/maps` text: of every file that is also mapped
/// executable (the interpreter, its shared libraries, the extension modules and theirs), the text and
/// the read-only data. Data files mapped without `x` (a bundle's arrays) are not code.
pub fn code_mappings(maps: &str) -> Vec<Mapping> {
    let lines: Vec<_> = maps.lines().filter_map(parse_line).collect();
    let code: std::collections::HashSet<&str> = lines
        .iter()
        .filter(|&&(_, _, perms, path)| perms.contains('x') && read_only_file(perms, path))
        .map(|&(_, _, _, path)| path)
        .collect();
    lines
        .into_iter()
        .filter(|&(_, _, perms, path)| code.contains(path) && read_only_file(perms, path))
        .map(mapping)
        .collect()
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `call(address, size)` over the mapping in pieces; the errno of the first failed piece, else 0.
fn in_pieces(m: &Mapping, piece: usize, call: impl Fn(*mut libc::c_void, usize) -> i32) -> i32 {
    let mut offset = 0;
    while offset < m.len {
        let size = piece.min(m.len - offset);
        if call((m.start + offset) as *mut libc::c_void, size) != 0 {
            return errno();
        }
        offset += size;
    }
    0
}

/// This process's read-only mappings of files under `directory` (`/proc/self/maps`).
pub fn this_process_mappings(directory: &Path) -> std::io::Result<Vec<Mapping>> {
    let dir = directory.canonicalize()?;
    Ok(file_mappings(
        &std::fs::read_to_string("/proc/self/maps")?,
        &dir,
    ))
}

/// Fault in every mapping of a file under `directory`, and with `lock`, lock it in memory (where
/// locking fails, the mapping is only faulted in), in pieces of `piece` bytes.
pub fn prefault(directory: &Path, lock: bool, piece: usize) -> std::io::Result<Vec<Outcome>> {
    Ok(fault_in(this_process_mappings(directory)?, lock, piece))
}

/// Lock this process's code in memory ([`code_mappings`]), in pieces of `piece` bytes. A code page
/// that memory pressure or a host's proactive reclaim evicted costs a disk read the next time it
/// runs, with the GIL held when the interpreter runs it; the rarely run paths (a swap, a rollback)
/// are the ones evicted. Where locking fails, the mapping is only faulted in.
pub fn lock_code(piece: usize) -> std::io::Result<Vec<Outcome>> {
    Ok(fault_in(
        code_mappings(&std::fs::read_to_string("/proc/self/maps")?),
        true,
        piece,
    ))
}

fn fault_in(mappings: Vec<Mapping>, lock: bool, piece: usize) -> Vec<Outcome> {
    let piece = piece.max(1);
    let mut out = Vec::new();
    for m in mappings {
        // SAFETY: the range is a whole read-only file mapping of this process, listed by the kernel a
        // moment ago; mlock and MADV_POPULATE_READ change neither its contents nor its layout.
        let lock_errno = if lock {
            in_pieces(&m, piece, |a, n| unsafe { libc::mlock(a, n) })
        } else {
            0
        };
        let errno = if lock && lock_errno == 0 {
            0
        } else {
            in_pieces(&m, piece, |a, n| unsafe {
                libc::madvise(a, n, MADV_POPULATE_READ)
            })
        };
        out.push(Outcome {
            mapping: m,
            lock_errno,
            errno,
        });
    }
    out
}

/// Unlock every mapping of a file under `directory` and drop its page-table entries, in pieces, so
/// that the `munmap` that follows has nothing left to do page by page.
pub fn release(directory: &Path, piece: usize) -> std::io::Result<Vec<Outcome>> {
    let piece = piece.max(1);
    let mut out = Vec::new();
    for m in this_process_mappings(directory)? {
        // SAFETY: a read-only file mapping (see `file_mappings`): unlocking it and dropping its
        // page-table entries loses no data; a later touch faults the page in from the page cache.
        let errno = match in_pieces(&m, piece, |a, n| unsafe { libc::munlock(a, n) }) {
            0 => in_pieces(&m, piece, |a, n| unsafe {
                libc::madvise(a, n, libc::MADV_DONTNEED)
            }),
            e => e,
        };
        out.push(Outcome {
            mapping: m,
            lock_errno: 0,
            errno,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MAPS: &str = "\
7f0000000000-7f0000400000 r--s 00000000 fd:00 12 /b/v1/item_rows.npy
7f0000400000-7f0000401000 rw-s 00000000 fd:00 13 /b/v1/writable.npy
7f0000401000-7f0000402000 r--s 00000000 fd:00 14 /b/v1/gone.npy (deleted)
7f0000402000-7f0000403000 r--p 00000000 fd:00 15 /b/v10/other.npy
7f0000403000-7f0000404000 r--p 00000000 fd:00 16 /b/v1/with space.npy
7f0000404000-7f0000405000 rw-p 00000000 00:00 0 
";

    #[test]
    fn finds_the_read_only_file_mappings_under_the_directory() {
        let found = file_mappings(MAPS, Path::new("/b/v1"));
        assert_eq!(
            found,
            vec![
                Mapping {
                    start: 0x7f00_0000_0000,
                    len: 0x40_0000,
                    path: "/b/v1/item_rows.npy".into()
                },
                Mapping {
                    start: 0x7f00_0040_3000,
                    len: 0x1000,
                    path: "/b/v1/with space.npy".into()
                },
            ]
        );
        assert!(file_mappings(MAPS, Path::new("/elsewhere")).is_empty());
    }

    #[test]
    fn the_code_is_every_read_only_mapping_of_a_file_also_mapped_executable() {
        let maps = "\
55d000000000-55d000001000 r--p 00000000 fd:00 20 /usr/bin/python3.11
55d000001000-55d000002000 r-xp 00001000 fd:00 20 /usr/bin/python3.11
55d000002000-55d000003000 rw-p 00002000 fd:00 20 /usr/bin/python3.11
7f1000000000-7f1000400000 r--s 00000000 fd:00 12 /b/v1/item_rows.npy
7f1000400000-7f1000401000 r--p 00000000 fd:00 21 /usr/lib/locale/locale-archive
7f1000401000-7f1000402000 r-xp 00000000 fd:00 22 /opt/my lib.so
7f1000402000-7f1000403000 r--p 00001000 fd:00 22 /opt/my lib.so
7f1000403000-7f1000404000 r-xp 00000000 fd:00 23 /opt/gone.so (deleted)
7f1000404000-7f1000405000 r-xp 00000000 00:00 0 [vdso]
7f1000405000-7f1000406000 rw-p 00000000 00:00 0 
";
        let code = code_mappings(maps);
        let found: Vec<(usize, usize, &str)> = code
            .iter()
            .map(|m| (m.start, m.len, m.path.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (0x55d0_0000_0000, 0x1000, "/usr/bin/python3.11"),
                (0x55d0_0000_1000, 0x1000, "/usr/bin/python3.11"),
                (0x7f10_0040_1000, 0x1000, "/opt/my lib.so"),
                (0x7f10_0040_2000, 0x1000, "/opt/my lib.so"),
            ]
        );
    }

    /// This test binary's own code: locked, all of it (the test runs with a memlock limit above it
    /// or as root; where locking is refused it is faulted in, and says so).
    #[test]
    fn lock_code_covers_this_binary() {
        let done = lock_code(PIECE_BYTES).unwrap();
        let exe = std::fs::canonicalize("/proc/self/exe").unwrap();
        let exe = exe.to_string_lossy();
        assert!(done.iter().any(|o| o.mapping.path == exe), "{done:?}");
        assert!(done.iter().all(|o| o.errno == 0), "{done:?}");
    }

    /// A file mapped read-only: prefault and release act on it (and only on it), in many pieces,
    /// and its bytes read the same afterwards.
    #[test]
    fn prefault_and_release_a_real_mapping() {
        let dir = std::env::temp_dir().join(format!("edgerank-residency-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("data.bin");
        let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: nothing writes the file while it is mapped (it is this test's own).
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        let done = prefault(&dir, false, 4096).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].errno, 0);
        assert_eq!(done[0].lock_errno, 0);
        assert!(done[0].mapping.len >= data.len());
        let released = release(&dir, 4096).unwrap();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].errno, 0);
        assert_eq!(&map[..], &data[..]);
        drop(map);
        assert!(prefault(&dir, true, 4096).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
