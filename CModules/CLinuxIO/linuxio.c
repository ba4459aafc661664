#define _GNU_SOURCE
#include "CLinuxIO.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

int clinuxio_blk_getsize64(int fd, uint64_t *bytes) {
    return ioctl(fd, BLKGETSIZE64, bytes) == 0 ? 0 : -errno;
}

int clinuxio_blk_logical_block_size(int fd, int *bytes) {
    return ioctl(fd, BLKSSZGET, bytes) == 0 ? 0 : -errno;
}

int clinuxio_blk_discard(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = { offset, length };
    return ioctl(fd, BLKDISCARD, range) == 0 ? 0 : -errno;
}

int clinuxio_blk_zeroout(int fd, uint64_t offset, uint64_t length) {
    uint64_t range[2] = { offset, length };
    return ioctl(fd, BLKZEROOUT, range) == 0 ? 0 : -errno;
}

int clinuxio_punch_hole(int fd, uint64_t offset, uint64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0 ? 0 : -errno;
}

int clinuxio_zero_range(int fd, uint64_t offset, uint64_t length) {
    return fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)offset, (off_t)length) == 0 ? 0 : -errno;
}

int clinuxio_copy_range(int fd_in, uint64_t offset_in, int fd_out, uint64_t offset_out, uint64_t length) {
    loff_t in = (loff_t)offset_in, out = (loff_t)offset_out;
    while (length > 0) {
        ssize_t n = copy_file_range(fd_in, &in, fd_out, &out, (size_t)length, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO; /* source ended early */
        length -= (uint64_t)n;
    }
    return 0;
}

int clinuxio_allocate(int fd, uint64_t offset, uint64_t length) {
    return fallocate(fd, 0, (off_t)offset, (off_t)length) == 0 ? 0 : -errno;
}

int clinuxio_open_direct(const char *path, int flags, int mode) {
    int fd = open(path, flags | O_DIRECT | O_CLOEXEC, mode);
    return fd >= 0 ? fd : -errno;
}

int clinuxio_open(const char *path, int flags, int mode) {
    int fd;
    do {
        fd = open(path, flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    return fd >= 0 ? fd : -errno;
}

int clinuxio_o_direct_flag(void) {
    return O_DIRECT;
}

long clinuxio_pread_nowait(int fd, void *buffer, unsigned long length, uint64_t offset) {
    struct iovec iov = { buffer, length };
    ssize_t n = preadv2(fd, &iov, 1, (off_t)offset, RWF_NOWAIT);
    return n >= 0 ? (long)n : -errno;
}

long clinuxio_preadv_nowait(int fd, const struct iovec *iov, int count, uint64_t offset) {
    ssize_t n = preadv2(fd, iov, count, (off_t)offset, RWF_NOWAIT);
    return n >= 0 ? (long)n : -errno;
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int clinuxio_tune_allocator(long mmap_threshold, long trim_threshold, long top_pad) {
#if defined(__GLIBC__)
  int ok = mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold);
  ok &= mallopt(M_TRIM_THRESHOLD, (int)trim_threshold);
  ok &= mallopt(M_TOP_PAD, (int)top_pad);
  return ok ? 0 : -1;
#else
  (void)mmap_threshold; (void)trim_threshold; (void)top_pad;
  return 0;
#endif
}
