//! The Linux system calls swap needs beyond `std`: mapping a snapshot over linear memory,
//! asking for readahead, stamping a file's modification time, and copying file ranges inside
//! the kernel.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

/// The host's page size in bytes.
pub(crate) fn host_page_bytes() -> usize {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Maps `len` bytes of `file`, from `offset`, copy-on-write over the existing mapping at `addr`.
///
/// On error the range may have been unmapped (Linux removes the old mapping before creating the
/// new one), so the caller must not access it afterwards.
///
/// # Safety
///
/// `addr..addr + len` must be a page-aligned range of the caller's own, read-write mapping that
/// nothing else uses and that no Rust reference points into while this runs; after the call its
/// contents are the file's. `offset` must be page-aligned and `offset + len` at most the file's
/// length, or accesses beyond the end of the file raise SIGBUS.
pub(crate) unsafe fn map_file_private_fixed(
    addr: *mut u8,
    len: usize,
    file: &File,
    offset: u64,
) -> io::Result<()> {
    let offset = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))?;
    // SAFETY: the caller guarantees the range is its own and unused (see above); MAP_FIXED then
    // only replaces pages the caller owns, and MAP_PRIVATE keeps the guest's writes out of the
    // file.
    let mapped = unsafe {
        libc::mmap(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            file.as_raw_fd(),
            offset,
        )
    };
    fixed_mapping_result(mapped, addr)
}

/// Maps fresh zero pages, private and anonymous, over the existing mapping at `addr`: the pages
/// a snapshot holds as holes. (Mapping a hole from the file would do the same on most
/// filesystems, but tmpfs allocates a page when a hole is first read, and raises SIGBUS when it
/// is full.)
///
/// On error the range may have been unmapped, as with [`map_file_private_fixed`].
///
/// # Safety
///
/// `addr..addr + len` must be a page-aligned range of the caller's own, read-write mapping that
/// nothing else uses and that no Rust reference points into while this runs; after the call it
/// reads as zeros.
pub(crate) unsafe fn map_zero_private_fixed(addr: *mut u8, len: usize) -> io::Result<()> {
    // SAFETY: as for map_file_private_fixed: the range is the caller's own and unused.
    let mapped = unsafe {
        libc::mmap(
            addr.cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    fixed_mapping_result(mapped, addr)
}

/// What a `MAP_FIXED` mmap that asked for `addr` returned, as a result.
fn fixed_mapping_result(mapped: *mut libc::c_void, addr: *mut u8) -> io::Result<()> {
    if mapped == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    if mapped.cast::<u8>() != addr {
        // MAP_FIXED either maps at `addr` or fails; anything else is a kernel contract breach.
        return Err(io::Error::other("mmap placed a mapping at another address"));
    }
    Ok(())
}

/// Sets the file's modification time, leaving its access time alone.
pub(crate) fn set_modification_time(file: &File, seconds: i64, nanoseconds: i64) -> io::Result<()> {
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: seconds as libc::time_t,
            tv_nsec: nanoseconds as _,
        },
    ];
    // SAFETY: `times` is a live array of two timespecs, as futimens requires, and the descriptor
    // belongs to `file` for the duration of the call.
    let result = unsafe { libc::futimens(file.as_raw_fd(), times.as_ptr()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies `len` bytes from `from` at `from_offset` to `to` at `to_offset`, inside the kernel when
/// the filesystem allows (no bytes pass through this process), otherwise through a small buffer.
pub(crate) fn copy_file_range(
    from: &File,
    from_offset: u64,
    to: &File,
    to_offset: u64,
    len: u64,
) -> io::Result<()> {
    let (mut from_at, mut to_at, mut left) = (from_offset, to_offset, len);
    while left > 0 {
        let mut off_in = libc::loff_t::try_from(from_at)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        let mut off_out = libc::loff_t::try_from(to_at)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
        let request = usize::try_from(left).unwrap_or(usize::MAX).min(1 << 30);
        // SAFETY: both descriptors are open for the duration of the call and the offset pointers
        // point at live locals; the kernel reads and writes only those and the two files.
        let copied = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                to.as_raw_fd(),
                &mut off_out,
                request,
                0,
            )
        };
        if copied < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::ENOSYS | libc::EXDEV | libc::EINVAL | libc::EOPNOTSUPP) => {
                    copy_through_buffer(from, from_at, to, to_at, left)
                }
                _ => Err(error),
            };
        }
        if copied == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the previous snapshot ended early",
            ));
        }
        let copied = copied as u64;
        from_at += copied;
        to_at += copied;
        left -= copied;
    }
    Ok(())
}

fn copy_through_buffer(
    from: &File,
    mut from_at: u64,
    to: &File,
    mut to_at: u64,
    mut left: u64,
) -> io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    while left > 0 {
        let step = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        from.read_exact_at(&mut buffer[..step], from_at)?;
        to.write_all_at(&buffer[..step], to_at)?;
        from_at += step as u64;
        to_at += step as u64;
        left -= step as u64;
    }
    Ok(())
}

/// Starts reading the file pages behind `addr..addr + len` into the page cache without waiting
/// (`MADV_WILLNEED`); anonymous parts are left alone. Advisory: errors are ignored.
///
/// # Safety
///
/// `addr..addr + len` must lie inside a mapping of the caller's; the call changes no content.
pub(crate) unsafe fn will_need(addr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees the range is mapped; MADV_WILLNEED only schedules reads.
    unsafe { libc::madvise(addr.cast(), len, libc::MADV_WILLNEED) };
}
