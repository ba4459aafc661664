/* Counts a process's heap allocations (LD_PRELOAD), for scripts/alloc-count.sh.
 *
 * Every allocation entry point glibc offers is defined here and forwarded to glibc's own
 * (__libc_*), so nothing is resolved through dlsym while the loader is still running. At exit
 * the totals go to the file named by MALLOC_COUNTER_OUT ("allocations N\nfrees M\nbytes B\n").
 * All threads are counted: the event loops, the I/O workers and any library thread. */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static _Atomic unsigned long long allocations, frees, bytes;

static inline void counted(size_t size) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes, size, memory_order_relaxed);
}

void *malloc(size_t size) {
  counted(size);
  return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
  counted(count * size);
  return __libc_calloc(count, size);
}

/* realloc(NULL, n) allocates and realloc(p, 0) frees; a resize in place or by moving counts
 * as one allocation, as it can cost one. */
void *realloc(void *pointer, size_t size) {
  if (pointer != NULL && size == 0) {
    atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
  } else {
    counted(size);
  }
  return __libc_realloc(pointer, size);
}

void free(void *pointer) {
  if (pointer != NULL) atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
  __libc_free(pointer);
}

void *memalign(size_t alignment, size_t size) {
  counted(size);
  return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
  counted(size);
  return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
  counted(size);
  void *pointer = __libc_memalign(alignment, size);
  if (pointer == NULL) return ENOMEM;
  *out = pointer;
  return 0;
}

void *valloc(size_t size) {
  counted(size);
  return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

__attribute__((destructor)) static void report(void) {
  const char *path = getenv("MALLOC_COUNTER_OUT");
  if (path == NULL) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  char line[160];
  int n = snprintf(line, sizeof line, "allocations %llu\nfrees %llu\nbytes %llu\n",
                   (unsigned long long)atomic_load(&allocations), (unsigned long long)atomic_load(&frees),
                   (unsigned long long)atomic_load(&bytes));
  if (n > 0) (void)!write(fd, line, (size_t)n);
  close(fd);
}
