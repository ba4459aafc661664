// Thin wrappers for Linux calls Swift cannot import directly (ioctl is variadic; the
// BLK* request numbers and FALLOC_FL_* flags are function-like macros). No policy here.
#ifndef CLINUXIO_H
#define CLINUXIO_H
#include <stdint.h>

/// Size of a block device in bytes (BLKGETSIZE64). Returns 0 or -errno.
int clinuxio_blk_getsize64(int fd, uint64_t *bytes);
/// Logical sector size of a block device (BLKSSZGET). Returns 0 or -errno.
int clinuxio_blk_logical_block_size(int fd, int *bytes);
/// Discards a byte range on a block device (BLKDISCARD). Returns 0 or -errno.
int clinuxio_blk_discard(int fd, uint64_t offset, uint64_t length);
/// Zeroes a byte range on a block device in the kernel (BLKZEROOUT). Returns 0 or -errno.
int clinuxio_blk_zeroout(int fd, uint64_t offset, uint64_t length);
/// Punches a hole in a file, keeping its size (fallocate PUNCH_HOLE|KEEP_SIZE). 0 or -errno.
int clinuxio_punch_hole(int fd, uint64_t offset, uint64_t length);
/// Zeroes a range of a file, keeping its size (fallocate ZERO_RANGE|KEEP_SIZE). 0 or -errno.
int clinuxio_zero_range(int fd, uint64_t offset, uint64_t length);
/* copy_file_range(2) of exactly `length` bytes (looping on short copies), in the kernel:
   shared extents (reflink) or page-cache copies, no user-space buffer. 0 or -errno;
   -EXDEV/-EINVAL/-EOPNOTSUPP/-ENOSYS mean "not here", and the caller copies itself. */
int clinuxio_copy_range(int fd_in, uint64_t offset_in, int fd_out, uint64_t offset_out, uint64_t length);
/// Allocates a range of a file (fallocate mode 0, may extend the file). 0 or -errno.
int clinuxio_allocate(int fd, uint64_t offset, uint64_t length);
/// Opens with O_DIRECT added to `flags` (O_DIRECT needs _GNU_SOURCE). Returns fd or -errno.
int clinuxio_open_direct(const char *path, int flags, int mode);
/// Opens `path` with `flags` | O_CLOEXEC (no varargs for Swift). Returns fd or -errno.
int clinuxio_open(const char *path, int flags, int mode);
/// The O_DIRECT flag value (a _GNU_SOURCE macro).
int clinuxio_o_direct_flag(void);

/// Reads only what the page cache holds: preadv2(RWF_NOWAIT). Returns bytes read, or -errno
/// (-EAGAIN when the data is not cached and a read would block).
long clinuxio_pread_nowait(int fd, void *buffer, unsigned long length, uint64_t offset);

/* preadv2(RWF_NOWAIT) over several buffers: bytes read, or -errno. */
struct iovec;
long clinuxio_preadv_nowait(int fd, const struct iovec *iov, int count, uint64_t offset);

/* glibc's allocator (mallopt): allocations below `mmap_threshold` come from the heap, and
   free memory at a heap's top goes back to the kernel only past `trim_threshold`, with
   `top_pad` more taken from it per growth. 0 when all were set (always 0 without glibc). */
int clinuxio_tune_allocator(long mmap_threshold, long trim_threshold, long top_pad);

#endif
