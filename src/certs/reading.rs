//! The one way credential files are read, for a [`load_directory`](super::load_directory), a
//! `ConfigureCurve` of a directory and every look of a watch alike: a file is opened without
//! blocking and refused unless it is a regular file (a FIFO swapped in is named, never waited
//! on), read up to a limit, and known to be whole only if its [`Stamp`] did not change while
//! it was read. Many files are stamped and read on a few threads.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use super::{FileError, MAX_CERTIFICATE_BYTES};

/// Replaces file reads in tests of reads that hang or panic.
pub(crate) type ReadHook = Arc<dyn Fn(&Path) -> std::io::Result<Vec<u8>> + Send + Sync>;

/// One version of a file, told by what user space cannot set back: the inode, the change
/// time (`touch -r`, `cp -p` and `rsync -t` restore the modification time, never the change
/// time), the size and, where the look read the file, a hash of its content (for
/// filesystems whose change time is coarse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) ctime: (i64, i64),
    pub(crate) mtime: (i64, i64),
    pub(crate) content: Option<u64>,
}

impl Stamp {
    /// The stamp of a file with this metadata and, when it was read, this content.
    pub(crate) fn of(meta: &std::fs::Metadata, content: Option<&[u8]>) -> Stamp {
        use std::hash::{Hash, Hasher};
        use std::os::unix::fs::MetadataExt;
        let content = content.map(|bytes| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            hasher.finish()
        });
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            content,
        }
    }
}

/// A file's content with its metadata when opened, and whether it was unchanged by the end
/// of the read.
pub(crate) struct Steady {
    pub(crate) opened: std::fs::Metadata,
    pub(crate) bytes: Vec<u8>,
    pub(crate) steady: bool,
}

/// Reads a regular file, refusing anything else. The file is opened without blocking and
/// checked after opening, so a FIFO swapped in after a listing is refused, never waited on.
/// A file over `limit` bytes is [`FileError::OverLimit`], not read at all when its size says
/// so (a certificate's reader makes it [`FileError::TooLarge`]).
pub(crate) fn read_regular(
    path: &Path,
    limit: Option<u64>,
    hook: Option<&ReadHook>,
) -> Result<Steady, FileError> {
    if let Some(hook) = hook {
        let opened = std::fs::metadata(path).map_err(FileError::Read)?;
        if let Some(limit) = limit.filter(|limit| opened.len() > *limit) {
            let size = opened.len();
            return Err(FileError::OverLimit { size, limit });
        }
        let bytes = hook(path).map_err(FileError::Read)?;
        let after = std::fs::metadata(path).map_err(FileError::Read)?;
        let steady = Stamp::of(&opened, None) == Stamp::of(&after, None);
        return Ok(Steady {
            opened,
            bytes,
            steady,
        });
    }
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FileError::Read)?;
    let opened = file.metadata().map_err(FileError::Read)?;
    if !opened.is_file() {
        return Err(FileError::NotARegularFile);
    }
    if let Some(limit) = limit.filter(|limit| opened.len() > *limit) {
        let size = opened.len();
        return Err(FileError::OverLimit { size, limit });
    }
    let mut bytes = Vec::with_capacity(opened.len().min(1 << 20) as usize);
    let cap = limit.map_or(u64::MAX, |limit| limit + 1);
    (&mut file)
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(FileError::Read)?;
    if let Some(limit) = limit {
        if bytes.len() as u64 > limit {
            let size = bytes.len() as u64;
            return Err(FileError::OverLimit { size, limit });
        }
    }
    let after = file.metadata().map_err(FileError::Read)?;
    let steady = Stamp::of(&opened, None) == Stamp::of(&after, None);
    Ok(Steady {
        opened,
        bytes,
        steady,
    })
}

/// A certificate file, through [`read_regular`] with [`MAX_CERTIFICATE_BYTES`] as its cap
/// (over it: [`FileError::TooLarge`]).
pub(crate) fn read_certificate(path: &Path, hook: Option<&ReadHook>) -> Result<Steady, FileError> {
    read_regular(path, Some(MAX_CERTIFICATE_BYTES), hook).map_err(|error| match error {
        FileError::OverLimit { .. } => FileError::TooLarge,
        error => error,
    })
}

/// Below this many files they are read on the calling thread; spawning threads would cost
/// more.
pub(crate) const PARALLEL_THRESHOLD: usize = 512;
/// Reading is bound by system calls; a few threads are enough to hide their latency.
const MAX_THREADS: usize = 8;

/// `each` of `items`, in order, on a few threads when there are many (a first look at a
/// large directory): stamping and reading files are bound by system calls. A panic on a
/// helper thread is the caller's panic.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], each: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let part = |part: &[T]| part.iter().map(&each).collect::<Vec<R>>();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    if threads <= 1 || items.len() < PARALLEL_THRESHOLD {
        return part(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let jobs: Vec<_> = items
            .chunks(chunk)
            .map(|items| {
                let spawned = std::thread::Builder::new()
                    .name("zap-read".into())
                    .spawn_scoped(scope, || part(items));
                (items, spawned)
            })
            .collect();
        let mut results = Vec::with_capacity(items.len());
        for (items, spawned) in jobs {
            match spawned {
                Ok(handle) => match handle.join() {
                    Ok(done) => results.extend(done),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // No thread available: do this part here.
                Err(_) => results.extend(part(items)),
            }
        }
        results
    })
}
