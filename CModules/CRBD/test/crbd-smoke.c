/*
 * crbd-smoke: exercises CModules/CRBD against a real cluster (scripts/ceph/mini-ceph.sh).
 * Not part of the SwiftPM target (exclude "test" there); build and run by hand:
 *
 *   gcc -Wall -Wextra -Werror -std=c11 -I CModules/CRBD/include CModules/CRBD/crbd.c CModules/CRBD/test/crbd-smoke.c -ldl -lpthread -o /tmp/crbd-smoke
 *   eval "$(scripts/ceph/mini-ceph.sh /tmp/ceph)"; /tmp/crbd-smoke full
 *
 * Modes:
 *   full     every wrapper on a fresh image, plus lock hand-over, break and blocklist
 *   connect  only connect (for the wrong-keyring and stopped-cluster checks); exit 2 on failure
 *   load     only crbd_load (e.g. CRBD_LIBRBD=libnope.so.1 crbd-smoke load); exit 3 on failure
 *   hold POOL IMAGE   (used by full) write to IMAGE, print "locked PID", sleep until killed
 * Environment: CEPH_CONF (the cluster), CRBD_POOL (default rbd), CRBD_TIMEOUT (seconds for
 * client_mount_timeout and rados_mon_op_timeout, default 5).
 */
#define _GNU_SOURCE
#include "CRBD.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ULL * 1024ULL)

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int failures = 0;
/* CHECK keeps going after a failure so one run shows every problem; the exit code
 * reports it. */
#define CHECK(cond, ...)                                \
  do {                                                  \
    if (cond) {                                         \
      printf("ok   ");                                  \
    } else {                                            \
      printf("FAIL ");                                  \
      failures++;                                       \
    }                                                   \
    printf(__VA_ARGS__);                                \
    printf("\n");                                       \
    fflush(stdout);                                     \
  } while (0)
#define NOTE(...)               \
  do {                          \
    printf("     ");            \
    printf(__VA_ARGS__);        \
    printf("\n");               \
    fflush(stdout);             \
  } while (0)

/* ------------------------------------------------------------------ completions */

/* One in-flight operation: the callback stores the result and wakes the waiter, as the
 * Swift side will (with a continuation instead of a condition variable). */
struct op {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  int64_t ret;
  pthread_t cb_thread;
};

static void on_complete(crbd_completion_t c, void *arg) {
  struct op *op = arg;
  int64_t r = crbd_aio_get_return_value(c);
  crbd_aio_release(c); /* releasing inside the callback is allowed */
  pthread_mutex_lock(&op->mu);
  op->ret = r;
  op->cb_thread = pthread_self();
  op->done = 1;
  pthread_cond_signal(&op->cv);
  pthread_mutex_unlock(&op->mu);
}

static crbd_completion_t op_begin(struct op *op) {
  memset(op, 0, sizeof *op);
  pthread_mutex_init(&op->mu, NULL);
  pthread_cond_init(&op->cv, NULL);
  crbd_completion_t c = NULL;
  int r = crbd_aio_create_completion(op, on_complete, &c);
  if (r < 0) {
    printf("FAIL aio_create_completion: %d\n", r);
    exit(1);
  }
  return c;
}

/* Waits for the completion (at most 60 s) unless submission already failed. */
static int64_t op_end(struct op *op, crbd_completion_t c, int submit_rc) {
  int64_t r;
  if (submit_rc < 0) {
    crbd_aio_release(c); /* never submitted: no callback will come */
    r = submit_rc;
  } else {
    struct timespec limit;
    clock_gettime(CLOCK_REALTIME, &limit);
    limit.tv_sec += 60;
    pthread_mutex_lock(&op->mu);
    while (!op->done)
      if (pthread_cond_timedwait(&op->cv, &op->mu, &limit) == ETIMEDOUT) break;
    r = op->done ? op->ret : -ETIMEDOUT;
    pthread_mutex_unlock(&op->mu);
    if (!op->done) {
      printf("FAIL completion did not fire within 60 s\n");
      exit(1);
    }
  }
  pthread_mutex_destroy(&op->mu);
  pthread_cond_destroy(&op->cv);
  return r;
}

/* Synchronous helpers built on the aio calls. */
static int64_t do_readv(crbd_image_t img, const struct iovec *iov, int n, uint64_t off) {
  struct op op;
  crbd_completion_t c = op_begin(&op);
  return op_end(&op, c, crbd_aio_readv(img, iov, n, off, c));
}
static int64_t do_read(crbd_image_t img, void *buf, size_t len, uint64_t off) {
  struct iovec v = {.iov_base = buf, .iov_len = len};
  return do_readv(img, &v, 1, off);
}
static int64_t do_writev(crbd_image_t img, const struct iovec *iov, int n, uint64_t off) {
  struct op op;
  crbd_completion_t c = op_begin(&op);
  return op_end(&op, c, crbd_aio_writev(img, iov, n, off, c));
}
static int64_t do_write(crbd_image_t img, const void *buf, size_t len, uint64_t off) {
  struct iovec v = {.iov_base = (void *)buf, .iov_len = len};
  return do_writev(img, &v, 1, off);
}
static int64_t do_flush(crbd_image_t img) {
  struct op op;
  crbd_completion_t c = op_begin(&op);
  return op_end(&op, c, crbd_aio_flush(img, c));
}
static int64_t do_discard(crbd_image_t img, uint64_t off, uint64_t len) {
  struct op op;
  crbd_completion_t c = op_begin(&op);
  return op_end(&op, c, crbd_aio_discard(img, off, len, c));
}
static int64_t do_write_zeroes(crbd_image_t img, uint64_t off, uint64_t len) {
  struct op op;
  crbd_completion_t c = op_begin(&op);
  return op_end(&op, c, crbd_aio_write_zeroes(img, off, len, c, 0, 0));
}
static int64_t do_caw(crbd_image_t img, uint64_t off, size_t len, const void *cmp, const void *buf,
                      uint64_t *mismatch) {
  struct op op;
  crbd_completion_t c = op_begin(&op);
  return op_end(&op, c, crbd_aio_compare_and_write(img, off, len, cmp, buf, c, mismatch, 0));
}

static int all_equal(const unsigned char *p, size_t n, unsigned char v) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != v) return 0;
  return 1;
}

/* ------------------------------------------------------------------ diff / watch */

struct extents {
  int n;
  uint64_t off[64];
  uint64_t len[64];
  int exists[64];
};

static int on_extent(uint64_t off, size_t len, int exists, void *arg) {
  struct extents *e = arg;
  if (e->n < 64) {
    e->off[e->n] = off;
    e->len[e->n] = len;
    e->exists[e->n] = exists;
  }
  e->n++;
  return 0;
}

static void print_extents(const char *what, const struct extents *e) {
  NOTE("%s: %d extent(s)", what, e->n);
  for (int i = 0; i < e->n && i < 64; i++)
    NOTE("  [%llu, %llu) len %llu (%.3f-%.3f MiB) %s", (unsigned long long)e->off[i],
         (unsigned long long)(e->off[i] + e->len[i]), (unsigned long long)e->len[i],
         (double)e->off[i] / MiB, (double)(e->off[i] + e->len[i]) / MiB,
         e->exists[i] ? "data" : "zero");
}

/* 1 when every byte of [off, off+len) lies in some reported data extent (extents may
 * split the range, e.g. at object boundaries). */
static int covers(const struct extents *e, uint64_t off, uint64_t len) {
  for (uint64_t at = off; at < off + len;) {
    int hit = 0;
    for (int i = 0; i < e->n && i < 64; i++)
      if (e->exists[i] && e->off[i] <= at && at < e->off[i] + e->len[i]) {
        at = e->off[i] + e->len[i];
        hit = 1;
        break;
      }
    if (!hit) return 0;
  }
  return 1;
}

static struct {
  pthread_mutex_t mu;
  int fired;
  double at;
} watch = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

static void on_update(void *arg) {
  (void)arg;
  pthread_mutex_lock(&watch.mu);
  if (watch.fired++ == 0) watch.at = now();
  pthread_mutex_unlock(&watch.mu);
}

/* ------------------------------------------------------------------ connecting */

static unsigned timeout_s(void) {
  const char *t = getenv("CRBD_TIMEOUT");
  return t != NULL && atoi(t) > 0 ? (unsigned)atoi(t) : 5;
}

/* Returns 0 and a connected handle, or the failing step's negative errno. */
static int connect_cluster(crbd_rados_t *out, double *elapsed) {
  crbd_rados_t c = NULL;
  int r = crbd_rados_create2(&c, NULL, "client.admin", 0);
  if (r < 0) return r;
  r = crbd_rados_conf_read_file(c, NULL); /* $CEPH_CONF */
  if (r == 0) r = crbd_rados_set_timeouts(c, timeout_s(), timeout_s(), 30);
  double t0 = now();
  if (r == 0) r = crbd_rados_connect(c);
  *elapsed = now() - t0;
  if (r < 0) {
    crbd_rados_shutdown(c);
    return r;
  }
  *out = c;
  return 0;
}

static int mode_load(void) {
  char err[1024];
  int r = crbd_load(err, sizeof err);
  printf("crbd_load = %d (%s)%s%s\n", r, r == 0 ? "ok" : strerror(-r), r ? ": " : "", err);
  if (r == 0) return 0;
  crbd_rados_t c = NULL;
  int w = crbd_rados_create2(&c, NULL, NULL, 0);
  CHECK(w == -ENOSYS, "a wrapper after a failed load returns -ENOSYS (got %d)", w);
  return 3;
}

static int mode_connect(void) {
  char err[1024];
  if (crbd_load(err, sizeof err) != 0) {
    printf("crbd_load failed: %s\n", err);
    return 3;
  }
  crbd_rados_t c;
  double dt;
  int r = connect_cluster(&c, &dt);
  printf("crbd_rados_connect = %d (%s) after %.2f s (client_mount_timeout %u s)\n", r,
         r == 0 ? "ok" : strerror(-r), dt, timeout_s());
  if (r < 0) return 2;
  crbd_rados_shutdown(c);
  return 0;
}

/* Runs "this-program hold POOL IMAGE" and waits for its "locked PID" line. */
static FILE *start_holder(const char *pool, const char *image, char *line, size_t linelen,
                          int *pid) {
  static char self[512], cmd[1024];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  self[n > 0 ? n : 0] = '\0';
  /* exec: the pid read back is the helper itself, not a shell */
  snprintf(cmd, sizeof cmd, "exec %.500s hold %.200s %.200s", self, pool, image);
  FILE *p = popen(cmd, "r");
  *pid = 0;
  if (p != NULL && fgets(line, (int)linelen, p) != NULL) sscanf(line, "locked %d", pid);
  return p;
}

/* ------------------------------------------------------------------ full run */

static int mode_full(void) {
  char err[1024];
  const char *pool = getenv("CRBD_POOL") ? getenv("CRBD_POOL") : "rbd";
  char name[64];
  snprintf(name, sizeof name, "crbd-smoke-%d", (int)getpid());

  /* ---- load */
  double t0 = now();
  int r = crbd_load(err, sizeof err);
  CHECK(r == 0, "crbd_load in %.1f ms %s", (now() - t0) * 1e3, err);
  if (r) return 1;
  int maj = 0, min = 0, ext = 0;
  crbd_version(&maj, &min, &ext);
  NOTE("librbd %d.%d.%d; compare_and_write %d, write_zeroes %d, lock_break %d, blocklist_add %d",
       maj, min, ext, crbd_has_symbol("rbd_aio_compare_and_write"),
       crbd_has_symbol("rbd_aio_write_zeroes"), crbd_has_symbol("rbd_lock_break"),
       crbd_has_symbol("rados_blocklist_add"));
  CHECK(crbd_has_symbol("no_such_symbol") == 0, "crbd_has_symbol of an unknown name is 0");

  /* ---- connect */
  crbd_rados_t A = NULL;
  double dt;
  r = connect_cluster(&A, &dt);
  CHECK(r == 0, "connect = %d in %.3f s", r, dt);
  if (r) return 1;
  uint64_t gid = 0;
  char addrs[256] = "";
  CHECK(crbd_rados_get_instance_id(A, &gid) == 0 && gid > 0, "instance id client.%llu",
        (unsigned long long)gid);
  CHECK(crbd_rados_getaddrs(A, addrs, sizeof addrs) == 0, "getaddrs '%s'", addrs);
  char tiny[4];
  CHECK(crbd_rados_getaddrs(A, tiny, sizeof tiny) == -ERANGE, "getaddrs into 4 bytes: -ERANGE");

  crbd_ioctx_t io = NULL;
  r = crbd_rados_ioctx_create(A, pool, &io);
  CHECK(r == 0, "ioctx_create(%s) = %d", pool, r);
  if (r) return 1;
  crbd_ioctx_t nopool = NULL;
  r = crbd_rados_ioctx_create(A, "no-such-pool", &nopool);
  CHECK(r == -ENOENT, "ioctx_create(no-such-pool) = %d (-ENOENT)", r);

  /* ---- image */
  int order = 0;
  r = crbd_create(io, name, 64 * MiB, &order);
  CHECK(r == 0, "create %s/%s 64 MiB = %d, order %d", pool, name, r, order);
  r = crbd_create(io, name, 64 * MiB, &order);
  CHECK(r == -EEXIST, "create again = %d (-EEXIST)", r);
  crbd_image_t img = NULL;
  r = crbd_open(io, name, &img, NULL);
  CHECK(r == 0, "open = %d", r);
  if (r) return 1;
  crbd_image_t missing = NULL;
  r = crbd_open(io, "no-such-image", &missing, NULL);
  CHECK(r == -ENOENT, "open(no-such-image) = %d (-ENOENT)", r);

  crbd_image_info_t info;
  r = crbd_stat(img, &info);
  CHECK(r == 0 && info.size == 64 * MiB && info.obj_size == 4 * MiB && info.num_objs == 16 &&
            info.order == 22,
        "stat: size %llu obj_size %llu num_objs %llu order %d", (unsigned long long)info.size,
        (unsigned long long)info.obj_size, (unsigned long long)info.num_objs, info.order);
  uint64_t features = 0;
  r = crbd_get_features(img, &features);
  CHECK(r == 0, "features 0x%llx (exclusive-lock %d, object-map %d, fast-diff %d)",
        (unsigned long long)features, !!(features & CRBD_FEATURE_EXCLUSIVE_LOCK),
        !!(features & CRBD_FEATURE_OBJECT_MAP), !!(features & CRBD_FEATURE_FAST_DIFF));

  struct extents e = {0};
  r = crbd_diff_iterate2(img, NULL, 0, 64 * MiB, 1, 0, on_extent, &e);
  CHECK(r == 0 && e.n == 0, "diff_iterate2 on a new image: %d extents", e.n);

  /* ---- 1 MiB writev in uneven iovecs, straddling the 4 MiB object boundary */
  const uint64_t woff = 3 * MiB + 512 * 1024;
  const size_t wlen = 1 * MiB;
  unsigned char *src = malloc(wlen), *dst = malloc(wlen);
  srand(42);
  for (size_t i = 0; i < wlen; i++) src[i] = (unsigned char)rand();
  struct iovec wv[1024], rv[1024];
  int wn = 0, rn = 0;
  for (size_t at = 0; at < wlen; wn++) {
    size_t n = 512 + (size_t)(rand() % 8192); /* 512..8703 bytes: odd sizes on purpose */
    if (n > wlen - at) n = wlen - at;
    wv[wn] = (struct iovec){.iov_base = src + at, .iov_len = n};
    at += n;
  }
  for (size_t at = 0; at < wlen; rn++) { /* different split for the read */
    size_t n = 4096 * (1 + (size_t)(rand() % 7)) + 1;
    if (n > wlen - at) n = wlen - at;
    rv[rn] = (struct iovec){.iov_base = dst + at, .iov_len = n};
    at += n;
  }
  t0 = now();
  int64_t rr = do_writev(img, wv, wn, woff);
  CHECK(rr == 0, "aio_writev 1 MiB in %d iovecs at %.1f MiB -> %lld in %.1f ms", wn,
        (double)woff / MiB, (long long)rr, (now() - t0) * 1e3);
  t0 = now();
  rr = do_flush(img);
  CHECK(rr == 0, "aio_flush -> %lld in %.1f ms", (long long)rr, (now() - t0) * 1e3);
  memset(dst, 0xEE, wlen);
  t0 = now();
  rr = do_readv(img, rv, rn, woff);
  CHECK(rr == (int64_t)wlen, "aio_readv 1 MiB in %d iovecs -> %lld (the byte count) in %.1f ms", rn,
        (long long)rr, (now() - t0) * 1e3);
  CHECK(memcmp(src, dst, wlen) == 0, "read back byte-exact");
  unsigned char *big = malloc(8 * MiB);
  rr = do_read(img, big, 4096, 60 * MiB);
  CHECK(rr == 4096 && all_equal(big, 4096, 0), "read of never-written space -> %lld, zeros",
        (long long)rr);
  rr = do_read(img, big, 8192, 64 * MiB - 4096);
  CHECK(rr == 4096, "read of 8 KiB crossing the end of the image -> %lld (clipped)", (long long)rr);
  rr = do_write(img, src, 8192, 64 * MiB - 4096);
  CHECK(rr == 0, "write of 8 KiB crossing the end -> %lld (clipped silently)", (long long)rr);
  rr = do_write(img, src, 4096, 64 * MiB);
  CHECK(rr == -EINVAL, "write at the end of the image -> %lld (-EINVAL)", (long long)rr);

  /* ---- writesame: a 512-byte pattern over 64 KiB at 10 MiB */
  unsigned char pat[512];
  for (int i = 0; i < 512; i++) pat[i] = (unsigned char)(i * 7 + 1);
  {
    struct op op;
    crbd_completion_t c = op_begin(&op);
    rr = op_end(&op, c, crbd_aio_writesame(img, 10 * MiB, 64 * 1024, pat, sizeof pat, c, 0));
  }
  CHECK(rr == 0, "aio_writesame 512 B x 128 at 10 MiB -> %lld", (long long)rr);
  rr = do_read(img, big, 64 * 1024, 10 * MiB);
  int same_ok = rr == 64 * 1024;
  for (int i = 0; same_ok && i < 128; i++) same_ok = memcmp(big + i * 512, pat, 512) == 0;
  CHECK(same_ok, "writesame read back: pattern repeated 128 times");
  {
    struct op op;
    crbd_completion_t c = op_begin(&op);
    rr = op_end(&op, c, crbd_aio_writesame(img, 10 * MiB, 1000, pat, sizeof pat, c, 0));
  }
  CHECK(rr == -EINVAL, "writesame with length not a multiple of data_len -> %lld (-EINVAL)",
        (long long)rr);

  /* ---- compare-and-write. librbd 16 accepts only ranges inside one 512-byte sector, so
   * the checks use 512 bytes (one SCSI block of a 512-byte-block LU). */
  const uint64_t coff = 10 * MiB + 4096;
  unsigned char cmpb[512], newb[512], chk[4096];
  memcpy(cmpb, pat, 512); /* what writesame put there */
  memset(newb, 'N', sizeof newb);
  uint64_t mism = 0xdeadbeef;
  rr = do_caw(img, coff, sizeof cmpb, cmpb, newb, &mism);
  CHECK(rr == 0, "compare_and_write 512 B (match) -> %lld", (long long)rr);
  do_read(img, chk, 512, coff);
  CHECK(memcmp(chk, newb, 512) == 0, "compare_and_write wrote the new data");
  unsigned char cmp2[512], newer[4096];
  memcpy(cmp2, newb, sizeof cmp2);
  cmp2[123] ^= 0xff;
  memset(newer, 'X', sizeof newer);
  mism = 0xdeadbeef;
  rr = do_caw(img, coff, sizeof cmp2, cmp2, newer, &mism);
  CHECK(rr == -EILSEQ, "compare_and_write (byte 123 differs) -> %lld (-EILSEQ = %d)",
        (long long)rr, -EILSEQ);
  /* librbd 16 reports (image offset of the request's object) + (index in the request):
   * neither the image offset nor the index. With the one-sector limit, % 512 is the index. */
  CHECK(mism % 512 == 123, "mismatch offset %llu = object start %llu + index %llu",
        (unsigned long long)mism, (unsigned long long)(coff / (4 * MiB) * (4 * MiB)),
        (unsigned long long)(mism % 512));
  do_read(img, chk, 512, coff);
  CHECK(memcmp(chk, newb, 512) == 0, "a mismatching compare_and_write leaves the data alone");
  {
    static unsigned char c2[8192], n2[8192];
    static const struct {
      uint64_t off;
      size_t len;
    } bad[] = {{10 * MiB, 1024}, {10 * MiB, 4096}, {10 * MiB + 256, 512}, {4 * MiB - 256, 512}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      do_read(img, c2, bad[i].len, bad[i].off);
      rr = do_caw(img, bad[i].off, bad[i].len, c2, n2, &mism);
      CHECK(rr == -EINVAL, "compare_and_write of %zu B at %llu (%llu into a sector) -> %lld",
            bad[i].len, (unsigned long long)bad[i].off, (unsigned long long)(bad[i].off % 512),
            (long long)rr);
    }
  }

  /* ---- allocation map before discards */
  memset(&e, 0, sizeof e);
  r = crbd_diff_iterate2(img, NULL, 0, 64 * MiB, 1, 0, on_extent, &e);
  CHECK(r == 0 && covers(&e, woff, wlen) && covers(&e, 10 * MiB, 64 * 1024),
        "diff_iterate2 (whole_object 0) covers the writev and writesame ranges");
  print_extents("  allocated", &e);
  memset(&e, 0, sizeof e);
  r = crbd_diff_iterate2(img, NULL, 0, 64 * MiB, 1, 1, on_extent, &e);
  CHECK(r == 0 && covers(&e, woff, wlen), "diff_iterate2 (whole_object 1) = %d", r);
  print_extents("  allocated (whole objects)", &e);

  /* ---- discard granularity */
  rr = do_discard(img, woff + 8192, 4096); /* 4 KiB: below the 64 KiB granularity */
  do_read(img, chk, 4096, woff + 8192);
  CHECK(rr == 0, "discard 4 KiB -> %lld; data afterwards: %s", (long long)rr,
        all_equal(chk, 4096, 0) ? "zeros" : "unchanged (discard skipped)");
  rr = do_discard(img, woff, 64 * 1024); /* woff is 64 KiB aligned */
  do_read(img, big, 64 * 1024, woff);
  CHECK(rr == 0 && all_equal(big, 64 * 1024, 0), "discard of an aligned 64 KiB -> %lld, zeros",
        (long long)rr);
  rr = do_discard(img, woff + 64 * 1024 + 512, 128 * 1024); /* unaligned 128 KiB */
  do_read(img, big, 192 * 1024, woff + 64 * 1024);
  {
    /* [woff+64K+512, woff+192K+512) contains exactly one whole 64 KiB unit,
     * [woff+128K, woff+192K): only that one should read back as zeros. */
    int zs = -1, ze = -1;
    for (int b = 0; b < 48; b++)
      if (all_equal(big + b * 4096, 4096, 0)) {
        if (zs < 0) zs = b;
        ze = b + 1;
      }
    CHECK(rr == 0 && zs == 16 && ze == 32,
          "discard of 128 KiB at a 64 KiB unit + 512 B -> %lld; zeroed [%d, %d) KiB after the "
          "unit boundary (only the whole unit)",
          (long long)rr, zs * 4, ze * 4);
  }
  rr = do_discard(img, 4 * MiB, 4 * MiB); /* a whole object */
  do_read(img, big, 4 * MiB, 4 * MiB);
  CHECK(rr == 0 && all_equal(big, 4 * MiB, 0), "discard of the whole object 1 -> %lld, zeros",
        (long long)rr);
  rr = do_write_zeroes(img, woff + 200 * 1024, 4096);
  do_read(img, chk, 4096, woff + 200 * 1024);
  CHECK(rr == 0 && all_equal(chk, 4096, 0), "write_zeroes of 4 KiB -> %lld, zeros", (long long)rr);
  memset(&e, 0, sizeof e);
  r = crbd_diff_iterate2(img, NULL, 0, 64 * MiB, 1, 0, on_extent, &e);
  CHECK(r == 0 && !covers(&e, 4 * MiB, 4 * MiB), "diff_iterate2 after discards: object 1 gone");
  print_extents("  allocated", &e);

  /* ---- update watch: a resize by the rbd CLI must notify us */
  uint64_t wh = 0;
  r = crbd_update_watch(img, &wh, on_update, NULL);
  CHECK(r == 0, "update_watch = %d (handle %llu)", r, (unsigned long long)wh);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rbd resize --no-progress --size 128M %s/%s", pool, name);
  double tr = now();
  r = system(cmd);
  double tcli = now() - tr;
  for (int i = 0; i < 100 && !watch.fired; i++) usleep(100000);
  uint64_t sz = 0;
  crbd_get_size(img, &sz);
  CHECK(r == 0 && watch.fired > 0, "'%s' (%.2f s) fired the watch %d time(s), %.0f ms after start",
        cmd, tcli, watch.fired, (watch.at - tr) * 1e3);
  CHECK(sz == 128 * MiB, "get_size after the CLI resize: %llu", (unsigned long long)sz);
  watch.fired = 0;
  r = crbd_resize(img, 96 * MiB);
  for (int i = 0; i < 50 && !watch.fired; i++) usleep(100000);
  crbd_get_size(img, &sz);
  CHECK(r == 0 && sz == 96 * MiB,
        "crbd_resize to 96 MiB = %d, size %llu; own resize fired the watch %d time(s)", r,
        (unsigned long long)sz, watch.fired);
  r = crbd_update_unwatch(img, wh);
  CHECK(r == 0, "update_unwatch = %d", r);

  /* ---- exclusive lock (feature) */
  int owner = -1;
  r = crbd_is_exclusive_lock_owner(img, &owner);
  CHECK(r == 0 && owner == 1, "after writing, this client owns the exclusive lock (%d)", owner);
  char owners[512];
  size_t nown = 0;
  int mode = -1;
  r = crbd_lock_get_owners(img, &mode, owners, sizeof owners, &nown);
  CHECK(r == 0 && nown == 1, "lock_get_owners = %d: %zu owner(s), mode %d, '%s'", r, nown, mode,
        nown ? owners : "");

  /* second client B, its own connection, same image */
  crbd_rados_t B = NULL;
  crbd_ioctx_t ioB = NULL;
  crbd_image_t imgB = NULL;
  r = connect_cluster(&B, &dt);
  if (r == 0) r = crbd_rados_ioctx_create(B, pool, &ioB);
  if (r == 0) r = crbd_open(ioB, name, &imgB, NULL);
  CHECK(r == 0, "client B connected and opened the image = %d", r);
  t0 = now();
  rr = do_write(imgB, newer, 4096, 0);
  CHECK(rr == 0, "B writes while A holds the lock (cooperative) -> %lld in %.0f ms", (long long)rr,
        (now() - t0) * 1e3);
  crbd_is_exclusive_lock_owner(img, &owner);
  CHECK(owner == 0, "A lost the lock to B (owner %d)", owner);
  t0 = now();
  rr = do_write(img, newer, 4096, 0);
  crbd_is_exclusive_lock_owner(img, &owner);
  CHECK(rr == 0 && owner == 1, "A writes again -> %lld in %.0f ms, owns the lock again",
        (long long)rr, (now() - t0) * 1e3);

  /* A takes the lock "managed": librbd no longer hands it over on request */
  t0 = now();
  r = crbd_lock_acquire(img, CRBD_LOCK_MODE_EXCLUSIVE);
  CHECK(r == 0, "A lock_acquire(EXCLUSIVE) = %d in %.0f ms", r, (now() - t0) * 1e3);
  t0 = now();
  rr = do_write(imgB, newer, 4096, 0);
  CHECK(rr == -EROFS, "B writes while A holds a managed lock -> %lld (%s) in %.0f ms",
        (long long)rr, rr < 0 ? strerror((int)-rr) : "succeeded", (now() - t0) * 1e3);
  t0 = now();
  r = crbd_lock_acquire(imgB, CRBD_LOCK_MODE_EXCLUSIVE);
  CHECK(r == -EROFS, "B lock_acquire while A holds it = %d (%s) in %.0f ms", r, strerror(-r),
        (now() - t0) * 1e3);

  /* failover: B breaks A's lock (which blocklists A), then must take the lock itself:
   * after its lock_acquire call B's handle no longer acquires the lock on its own. */
  nown = 0;
  r = crbd_lock_get_owners(imgB, &mode, owners, sizeof owners, &nown);
  CHECK(r == 0 && nown == 1 && strcmp(owners, addrs) == 0, "B sees the owner '%s' (A's address)",
        nown ? owners : "");
  t0 = now();
  r = crbd_lock_break(imgB, CRBD_LOCK_MODE_EXCLUSIVE, owners);
  CHECK(r == 0, "B lock_break(A) = %d in %.0f ms", r, (now() - t0) * 1e3);
  r = crbd_lock_get_owners(imgB, &mode, owners, sizeof owners, &nown);
  CHECK(r == -ENOENT && nown == 0, "after the break nobody owns the lock (%d)", r);
  rr = do_write(imgB, newer, 4096, 0);
  CHECK(rr == -EROFS, "B (after a lock_acquire call) still does not lock on write -> %lld",
        (long long)rr);
  t0 = now();
  r = crbd_lock_acquire(imgB, CRBD_LOCK_MODE_EXCLUSIVE);
  rr = do_write(imgB, newer, 4096, 0);
  CHECK(r == 0 && rr == 0, "B lock_acquire = %d, write -> %lld, in %.0f ms", r, (long long)rr,
        (now() - t0) * 1e3);
  t0 = now();
  rr = do_write(img, newb, 512, 0);
  CHECK(rr == -CRBD_EBLOCKLISTED, "fenced A writes -> %lld (%s) in %.0f ms", (long long)rr,
        rr < 0 ? strerror((int)-rr) : "succeeded", (now() - t0) * 1e3);
  rr = do_read(img, chk, 4096, 0);
  CHECK(rr == -CRBD_EBLOCKLISTED, "fenced A reads -> %lld", (long long)rr);
  rr = do_flush(img);
  NOTE("fenced A flush -> %lld", (long long)rr);
  t0 = now();
  r = crbd_close(img);
  NOTE("fenced A close = %d (%s) in %.0f ms", r, r ? strerror(-r) : "ok", (now() - t0) * 1e3);
  crbd_rados_ioctx_destroy(io);
  t0 = now();
  crbd_rados_shutdown(A);
  NOTE("fenced A shutdown in %.0f ms", (now() - t0) * 1e3);
  r = crbd_lock_get_owners(imgB, &mode, owners, sizeof owners, &nown);
  CHECK(r == 0 && nown == 1, "owner now '%s' (B)", nown ? owners : "");
  r = crbd_lock_release(imgB);
  r = r == 0 ? crbd_lock_get_owners(imgB, &mode, owners, sizeof owners, &nown) : r;
  CHECK(r == -ENOENT, "B lock_release, then nobody owns the lock (%d)", r);

  /* a client that dies holding the lock (kill -9): how long until another gets it? */
  {
    char line[128] = "";
    int pid = 0;
    FILE *p = start_holder(pool, name, line, sizeof line, &pid);
    CHECK(pid > 0, "a helper process took the lock (%s)", pid > 0 ? "pid ok" : line);
    if (pid > 0) {
      kill(pid, SIGKILL);
      pclose(p);
      /* the explicit failover path: break the dead holder's lock at once (it is
       * blocklisted, so even a holder that was only partitioned away cannot write). */
      t0 = now();
      r = crbd_lock_get_owners(imgB, &mode, owners, sizeof owners, &nown);
      if (r == 0) r = crbd_lock_break(imgB, CRBD_LOCK_MODE_EXCLUSIVE, owners);
      if (r == 0) r = crbd_lock_acquire(imgB, CRBD_LOCK_MODE_EXCLUSIVE);
      CHECK(r == 0, "holder killed: get_owners + lock_break + lock_acquire = %d in %.0f ms", r,
            (now() - t0) * 1e3);
      rr = do_write(imgB, newer, 4096, 0);
      CHECK(rr == 0, "B writes after taking over from the dead holder -> %lld", (long long)rr);
      crbd_lock_release(imgB);
    } else if (p != NULL) {
      pclose(p);
    }
  }
  /* and with a fresh handle that never called lock_acquire (automatic mode) */
  {
    char line[128] = "";
    int pid = 0;
    FILE *p = start_holder(pool, name, line, sizeof line, &pid);
    crbd_image_t img2 = NULL;
    if (pid > 0 && crbd_open(ioB, name, &img2, NULL) == 0) {
      kill(pid, SIGKILL);
      pclose(p);
      t0 = now();
      rr = do_write(img2, newer, 4096, 0);
      CHECK(rr == 0, "automatic mode: first write after the holder was killed -> %lld after %.1f s "
            "(librbd waits for the dead client's watch to time out)",
            (long long)rr, now() - t0);
      crbd_close(img2);
    } else {
      CHECK(0, "second helper (%s)", line);
      if (p != NULL) pclose(p);
    }
  }

  /* ---- explicit blocklist of a third client C */
  crbd_rados_t C = NULL;
  crbd_ioctx_t ioC = NULL;
  char addrC[256] = "";
  r = connect_cluster(&C, &dt);
  if (r == 0) r = crbd_rados_ioctx_create(C, pool, &ioC);
  if (r == 0) r = crbd_rados_getaddrs(C, addrC, sizeof addrC);
  CHECK(r == 0, "client C connected, address '%s'", addrC);
  r = crbd_rados_blocklist_add(B, addrC, 60);
  CHECK(r == 0, "B blocklist_add(C, 60 s) = %d", r);
  crbd_image_t imgC = NULL;
  t0 = now();
  r = crbd_open(ioC, name, &imgC, NULL);
  CHECK(r < 0, "blocklisted C opens the image = %d (%s) in %.0f ms", r, r ? strerror(-r) : "ok",
        (now() - t0) * 1e3);
  if (r == 0) crbd_close(imgC);
  crbd_rados_ioctx_destroy(ioC);
  crbd_rados_shutdown(C);

  /* ---- cleanup */
  r = crbd_remove(ioB, name);
  CHECK(r == -EBUSY, "remove while open = %d (-EBUSY)", r);
  r = crbd_close(imgB);
  CHECK(r == 0, "close = %d", r);
  r = crbd_remove(ioB, name);
  CHECK(r == 0, "remove = %d", r);
  crbd_rados_ioctx_destroy(ioB);
  crbd_rados_shutdown(B);
  free(src);
  free(dst);
  free(big);
  printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

/* hold POOL IMAGE: take the image's exclusive lock, say so, then sleep until killed. */
static int mode_hold(const char *pool, const char *image) {
  char err[1024];
  crbd_rados_t c;
  crbd_ioctx_t io;
  crbd_image_t img;
  double dt;
  static char buf[4096];
  if (crbd_load(err, sizeof err) != 0 || connect_cluster(&c, &dt) != 0 ||
      crbd_rados_ioctx_create(c, pool, &io) != 0 || crbd_open(io, image, &img, NULL) != 0 ||
      do_write(img, buf, sizeof buf, 0) != 0) {
    printf("hold: setup failed\n");
    return 1;
  }
  printf("locked %d\n", (int)getpid());
  fflush(stdout);
  for (;;) pause();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "full";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(mode, "load") == 0) return mode_load();
  if (strcmp(mode, "connect") == 0) return mode_connect();
  if (strcmp(mode, "full") == 0) return mode_full();
  if (strcmp(mode, "hold") == 0 && argc == 4) return mode_hold(argv[2], argv[3]);
  fprintf(stderr, "usage: %s [full|connect|load]\n", argv[0]);
  return 64;
}
