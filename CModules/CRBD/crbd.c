/*
 * crbd.c: loads librados/librbd with dlopen and forwards to them (see include/CRBD.h).
 *
 * The prototypes below restate Ceph's documented C API (librados.h, librbd.h of Ceph 16)
 * using CRBD's own handle types; they are ABI-identical because every Ceph handle is a
 * plain pointer. Keep them in sync by reading the installed headers, never including them:
 * the module must build without librbd-dev.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_* and friends also under -std=c11 */
#endif
#include "CRBD.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Mirrors rbd_image_info_t byte for byte; only the first four fields are passed on. */
struct raw_image_info {
  uint64_t size;
  uint64_t obj_size;
  uint64_t num_objs;
  int order;
  char block_name_prefix[24]; /* RBD_MAX_BLOCK_NAME_SIZE */
  int64_t parent_pool;
  char parent_name[96]; /* RBD_MAX_IMAGE_NAME_SIZE */
};

typedef int (*raw_diff_cb)(uint64_t, size_t, int, void *);

/* One typed pointer per resolved symbol; NULL when absent. Filled once by load_once(). */
static struct {
  /* librados */
  int (*rados_create2)(crbd_rados_t *, const char *, const char *, uint64_t);
  int (*rados_conf_read_file)(crbd_rados_t, const char *);
  int (*rados_conf_set)(crbd_rados_t, const char *, const char *);
  int (*rados_connect)(crbd_rados_t);
  void (*rados_shutdown)(crbd_rados_t);
  int (*rados_ioctx_create)(crbd_rados_t, const char *, crbd_ioctx_t *);
  void (*rados_ioctx_destroy)(crbd_ioctx_t);
  uint64_t (*rados_get_instance_id)(crbd_rados_t);
  int (*rados_getaddrs)(crbd_rados_t, char **);
  int (*rados_blocklist_add)(crbd_rados_t, char *, uint32_t);
  int (*rados_read)(crbd_ioctx_t, const char *, char *, size_t, uint64_t);
  void *(*rados_create_write_op)(void);
  void (*rados_release_write_op)(void *);
  void (*rados_write_op_create)(void *, int, const char *);
  void (*rados_write_op_cmpext)(void *, const char *, size_t, uint64_t, int *);
  void (*rados_write_op_write_full)(void *, const char *, size_t);
  int (*rados_write_op_operate)(void *, crbd_ioctx_t, const char *, void *, int);
  int (*rados_watch2)(crbd_ioctx_t, const char *, uint64_t *,
                      void (*)(void *, uint64_t, uint64_t, uint64_t, void *, size_t),
                      void (*)(void *, uint64_t, int), void *);
  int (*rados_unwatch2)(crbd_ioctx_t, uint64_t);
  int (*rados_watch_flush)(crbd_rados_t);
  int (*rados_notify2)(crbd_ioctx_t, const char *, const char *, int, uint64_t, char **, size_t *);
  int (*rados_notify_ack)(crbd_ioctx_t, const char *, uint64_t, uint64_t, const char *, int);
  void (*rados_buffer_free)(char *);
  /* librbd */
  void (*rbd_version)(int *, int *, int *);
  int (*rbd_create)(crbd_ioctx_t, const char *, uint64_t, int *);
  int (*rbd_create2)(crbd_ioctx_t, const char *, uint64_t, uint64_t, int *);
  int (*rbd_remove)(crbd_ioctx_t, const char *);
  int (*rbd_open)(crbd_ioctx_t, const char *, crbd_image_t *, const char *);
  int (*rbd_open_read_only)(crbd_ioctx_t, const char *, crbd_image_t *, const char *);
  int (*rbd_close)(crbd_image_t);
  int (*rbd_stat)(crbd_image_t, struct raw_image_info *, size_t);
  int (*rbd_get_size)(crbd_image_t, uint64_t *);
  int (*rbd_get_features)(crbd_image_t, uint64_t *);
  int (*rbd_update_features)(crbd_image_t, uint64_t, uint8_t);
  int (*rbd_resize)(crbd_image_t, uint64_t);
  int (*rbd_flush)(crbd_image_t);
  int (*rbd_aio_create_completion)(void *, crbd_callback_t, crbd_completion_t *);
  int64_t (*rbd_aio_get_return_value)(crbd_completion_t); /* ssize_t in librbd.h */
  int (*rbd_aio_wait_for_complete)(crbd_completion_t);
  void (*rbd_aio_release)(crbd_completion_t);
  int (*rbd_aio_read)(crbd_image_t, uint64_t, size_t, char *, crbd_completion_t);
  int (*rbd_aio_write)(crbd_image_t, uint64_t, size_t, const char *, crbd_completion_t);
  int (*rbd_aio_readv)(crbd_image_t, const struct iovec *, int, uint64_t, crbd_completion_t);
  int (*rbd_aio_writev)(crbd_image_t, const struct iovec *, int, uint64_t, crbd_completion_t);
  int (*rbd_aio_flush)(crbd_image_t, crbd_completion_t);
  int (*rbd_aio_discard)(crbd_image_t, uint64_t, uint64_t, crbd_completion_t);
  int (*rbd_aio_writesame)(crbd_image_t, uint64_t, size_t, const char *, size_t,
                           crbd_completion_t, int);
  int (*rbd_aio_write_zeroes)(crbd_image_t, uint64_t, size_t, crbd_completion_t, int, int);
  int64_t (*rbd_aio_compare_and_write)(crbd_image_t, uint64_t, size_t, const char *,
                                       const char *, crbd_completion_t, uint64_t *, int);
  int (*rbd_diff_iterate2)(crbd_image_t, const char *, uint64_t, uint64_t, uint8_t, uint8_t,
                           raw_diff_cb, void *);
  int (*rbd_update_watch)(crbd_image_t, uint64_t *, crbd_update_callback_t, void *);
  int (*rbd_update_unwatch)(crbd_image_t, uint64_t);
  int (*rbd_is_exclusive_lock_owner)(crbd_image_t, int *);
  int (*rbd_lock_acquire)(crbd_image_t, int); /* rbd_lock_mode_t is an int-sized enum */
  int (*rbd_lock_release)(crbd_image_t);
  int (*rbd_lock_get_owners)(crbd_image_t, int *, char **, size_t *);
  void (*rbd_lock_get_owners_cleanup)(char **, size_t);
  int (*rbd_list)(crbd_ioctx_t, char *, size_t *);
  int (*rbd_lock_break)(crbd_image_t, int, const char *);
} fn;

enum lib { RADOS, RBD };

/* What to resolve. `alt` is an older name tried when `name` is missing. Required symbols
 * are the ones a backstore cannot work without; anything else may be absent (older
 * Ceph) and its wrapper then answers -ENOSYS. */
static const struct sym {
  const char *name;
  const char *alt;
  enum lib lib;
  int required;
  void *slot; /* address of the matching field in `fn` */
} syms[] = {
    {"rados_create2", NULL, RADOS, 1, &fn.rados_create2},
    {"rados_conf_read_file", NULL, RADOS, 1, &fn.rados_conf_read_file},
    {"rados_conf_set", NULL, RADOS, 1, &fn.rados_conf_set},
    {"rados_connect", NULL, RADOS, 1, &fn.rados_connect},
    {"rados_shutdown", NULL, RADOS, 1, &fn.rados_shutdown},
    {"rados_ioctx_create", NULL, RADOS, 1, &fn.rados_ioctx_create},
    {"rados_ioctx_destroy", NULL, RADOS, 1, &fn.rados_ioctx_destroy},
    {"rados_get_instance_id", NULL, RADOS, 0, &fn.rados_get_instance_id},
    {"rados_getaddrs", NULL, RADOS, 0, &fn.rados_getaddrs},
    {"rados_blocklist_add", "rados_blacklist_add", RADOS, 0, &fn.rados_blocklist_add},
    {"rados_read", NULL, RADOS, 0, &fn.rados_read},
    {"rados_create_write_op", NULL, RADOS, 0, &fn.rados_create_write_op},
    {"rados_release_write_op", NULL, RADOS, 0, &fn.rados_release_write_op},
    {"rados_write_op_create", NULL, RADOS, 0, &fn.rados_write_op_create},
    {"rados_write_op_cmpext", NULL, RADOS, 0, &fn.rados_write_op_cmpext},
    {"rados_write_op_write_full", NULL, RADOS, 0, &fn.rados_write_op_write_full},
    {"rados_write_op_operate", NULL, RADOS, 0, &fn.rados_write_op_operate},
    {"rados_watch2", NULL, RADOS, 0, &fn.rados_watch2},
    {"rados_unwatch2", NULL, RADOS, 0, &fn.rados_unwatch2},
    {"rados_watch_flush", NULL, RADOS, 0, &fn.rados_watch_flush},
    {"rados_notify2", NULL, RADOS, 0, &fn.rados_notify2},
    {"rados_notify_ack", NULL, RADOS, 0, &fn.rados_notify_ack},
    {"rados_buffer_free", NULL, RADOS, 0, &fn.rados_buffer_free},
    {"rbd_version", NULL, RBD, 0, &fn.rbd_version},
    {"rbd_create", NULL, RBD, 0, &fn.rbd_create},
    {"rbd_create2", NULL, RBD, 0, &fn.rbd_create2},
    {"rbd_remove", NULL, RBD, 0, &fn.rbd_remove},
    {"rbd_open", NULL, RBD, 1, &fn.rbd_open},
    {"rbd_open_read_only", NULL, RBD, 0, &fn.rbd_open_read_only},
    {"rbd_close", NULL, RBD, 1, &fn.rbd_close},
    {"rbd_stat", NULL, RBD, 1, &fn.rbd_stat},
    {"rbd_get_size", NULL, RBD, 1, &fn.rbd_get_size},
    {"rbd_get_features", NULL, RBD, 0, &fn.rbd_get_features},
    {"rbd_update_features", NULL, RBD, 0, &fn.rbd_update_features},
    {"rbd_resize", NULL, RBD, 0, &fn.rbd_resize},
    {"rbd_flush", NULL, RBD, 0, &fn.rbd_flush},
    {"rbd_aio_create_completion", NULL, RBD, 1, &fn.rbd_aio_create_completion},
    {"rbd_aio_get_return_value", NULL, RBD, 1, &fn.rbd_aio_get_return_value},
    {"rbd_aio_wait_for_complete", NULL, RBD, 0, &fn.rbd_aio_wait_for_complete},
    {"rbd_aio_release", NULL, RBD, 1, &fn.rbd_aio_release},
    {"rbd_aio_read", NULL, RBD, 1, &fn.rbd_aio_read},
    {"rbd_aio_write", NULL, RBD, 1, &fn.rbd_aio_write},
    {"rbd_aio_readv", NULL, RBD, 1, &fn.rbd_aio_readv},
    {"rbd_aio_writev", NULL, RBD, 1, &fn.rbd_aio_writev},
    {"rbd_aio_flush", NULL, RBD, 1, &fn.rbd_aio_flush},
    {"rbd_aio_discard", NULL, RBD, 0, &fn.rbd_aio_discard},
    {"rbd_aio_writesame", NULL, RBD, 0, &fn.rbd_aio_writesame},
    {"rbd_aio_write_zeroes", NULL, RBD, 0, &fn.rbd_aio_write_zeroes},
    {"rbd_aio_compare_and_write", NULL, RBD, 0, &fn.rbd_aio_compare_and_write},
    {"rbd_diff_iterate2", NULL, RBD, 0, &fn.rbd_diff_iterate2},
    {"rbd_update_watch", NULL, RBD, 0, &fn.rbd_update_watch},
    {"rbd_update_unwatch", NULL, RBD, 0, &fn.rbd_update_unwatch},
    {"rbd_is_exclusive_lock_owner", NULL, RBD, 0, &fn.rbd_is_exclusive_lock_owner},
    {"rbd_lock_acquire", NULL, RBD, 0, &fn.rbd_lock_acquire},
    {"rbd_lock_release", NULL, RBD, 0, &fn.rbd_lock_release},
    {"rbd_lock_get_owners", NULL, RBD, 0, &fn.rbd_lock_get_owners},
    {"rbd_lock_get_owners_cleanup", NULL, RBD, 0, &fn.rbd_lock_get_owners_cleanup},
    {"rbd_lock_break", NULL, RBD, 0, &fn.rbd_lock_break},
    {"rbd_list", NULL, RBD, 0, &fn.rbd_list},
};
#define NSYMS (sizeof syms / sizeof syms[0])

static pthread_once_t load_once_ctl = PTHREAD_ONCE_INIT;
static int load_rc = -ENOSYS;     /* result of the one load attempt */
static char load_msg[1024] = "";  /* its explanation when it failed */
static void *found[NSYMS];        /* per syms[i]: resolved address (crbd_has_symbol) */

static void set_msg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(load_msg, sizeof load_msg, fmt, ap);
  va_end(ap);
}

/* Library names: the SONAMEs of Debian 12's librados2/librbd1, overridable so tests can
 * simulate a host without Ceph. */
static const char *lib_name(const char *env, const char *dflt) {
  const char *v = getenv(env);
  return (v != NULL && v[0] != '\0') ? v : dflt;
}

static void load_once(void) {
  const char *rados_name = lib_name("CRBD_LIBRADOS", "librados.so.2");
  const char *rbd_name = lib_name("CRBD_LIBRBD", "librbd.so.1");
  void *handles[2];

  /* RTLD_LOCAL keeps Ceph's many C++ symbols out of the global namespace; the handles are
   * never closed because librados starts threads that must outlive any caller. */
  handles[RADOS] = dlopen(rados_name, RTLD_NOW | RTLD_LOCAL);
  if (handles[RADOS] == NULL) {
    const char *why = dlerror();
    set_msg("cannot load %s (%s); the rbd backstore needs Ceph's client libraries: "
            "apt-get install librados2 librbd1",
            rados_name, why != NULL ? why : "unknown error");
    load_rc = -ENOENT;
    return;
  }
  handles[RBD] = dlopen(rbd_name, RTLD_NOW | RTLD_LOCAL);
  if (handles[RBD] == NULL) {
    const char *why = dlerror();
    set_msg("cannot load %s (%s); the rbd backstore needs Ceph's client libraries: "
            "apt-get install librbd1 librados2",
            rbd_name, why != NULL ? why : "unknown error");
    load_rc = -ENOENT;
    return;
  }

  for (size_t i = 0; i < NSYMS; i++) {
    void *p = dlsym(handles[syms[i].lib], syms[i].name);
    if (p == NULL && syms[i].alt != NULL) p = dlsym(handles[syms[i].lib], syms[i].alt);
    if (p == NULL && syms[i].required) {
      set_msg("%s has no %s: not Ceph's library or too old for the rbd backstore "
              "(install Debian's librbd1 and librados2)",
              syms[i].lib == RADOS ? rados_name : rbd_name, syms[i].name);
      memset(&fn, 0, sizeof fn); /* all-or-nothing: no half-loaded state */
      memset(found, 0, sizeof found);
      load_rc = -ENOSYS;
      return;
    }
    found[i] = p;
    /* dlsym returns an object pointer; copying its bytes into the function-pointer field
     * is the POSIX-sanctioned conversion and keeps -Wpedantic quiet. */
    memcpy(syms[i].slot, &p, sizeof p);
  }
  load_rc = 0;
}

static inline int loaded(void) {
  pthread_once(&load_once_ctl, load_once); /* also orders the reads of `fn` after the load */
  return load_rc == 0;
}

int crbd_load(char *err, size_t errlen) {
  loaded();
  if (err != NULL && errlen > 0) snprintf(err, errlen, "%s", load_rc == 0 ? "" : load_msg);
  return load_rc;
}

int crbd_has_symbol(const char *symbol) {
  if (!loaded()) return 0;
  for (size_t i = 0; i < NSYMS; i++)
    if (strcmp(syms[i].name, symbol) == 0) return found[i] != NULL;
  return 0;
}

/* Forward to fn.NAME when it resolved, else fail with -ENOSYS. */
#define CALL(name, ...) ((loaded() && fn.name != NULL) ? fn.name(__VA_ARGS__) : -ENOSYS)

int crbd_version(int *major, int *minor, int *extra) {
  if (!loaded() || fn.rbd_version == NULL) return -ENOSYS;
  fn.rbd_version(major, minor, extra);
  return 0;
}

/* ------------------------------------------------------------------ librados */

int crbd_rados_create2(crbd_rados_t *cluster, const char *cluster_name, const char *user_name,
                       uint64_t flags) {
  /* librados parses both strings unconditionally, so NULL means the usual defaults. */
  return CALL(rados_create2, cluster, cluster_name != NULL ? cluster_name : "ceph",
              user_name != NULL ? user_name : "client.admin", flags);
}

int crbd_rados_conf_read_file(crbd_rados_t cluster, const char *path) {
  return CALL(rados_conf_read_file, cluster, path);
}

int crbd_rados_conf_set(crbd_rados_t cluster, const char *option, const char *value) {
  return CALL(rados_conf_set, cluster, option, value);
}

int crbd_rados_set_timeouts(crbd_rados_t cluster, unsigned mount_seconds, unsigned mon_op_seconds,
                            unsigned osd_op_seconds) {
  static const char *const names[3] = {"client_mount_timeout", "rados_mon_op_timeout",
                                       "rados_osd_op_timeout"};
  const unsigned values[3] = {mount_seconds, mon_op_seconds, osd_op_seconds};
  for (int i = 0; i < 3; i++) {
    if (values[i] == 0) continue;
    char v[16];
    snprintf(v, sizeof v, "%u", values[i]);
    int r = crbd_rados_conf_set(cluster, names[i], v);
    if (r < 0) return r;
  }
  return 0;
}

int crbd_rados_connect(crbd_rados_t cluster) { return CALL(rados_connect, cluster); }

void crbd_rados_shutdown(crbd_rados_t cluster) {
  if (loaded() && fn.rados_shutdown != NULL) fn.rados_shutdown(cluster);
}

int crbd_rados_ioctx_create(crbd_rados_t cluster, const char *pool_name, crbd_ioctx_t *ioctx) {
  return CALL(rados_ioctx_create, cluster, pool_name, ioctx);
}

void crbd_rados_ioctx_destroy(crbd_ioctx_t ioctx) {
  if (loaded() && fn.rados_ioctx_destroy != NULL) fn.rados_ioctx_destroy(ioctx);
}

int crbd_rados_get_instance_id(crbd_rados_t cluster, uint64_t *id) {
  if (!loaded() || fn.rados_get_instance_id == NULL) return -ENOSYS;
  *id = fn.rados_get_instance_id(cluster);
  return 0;
}

int crbd_rados_getaddrs(crbd_rados_t cluster, char *buf, size_t buflen) {
  if (!loaded() || fn.rados_getaddrs == NULL) return -ENOSYS;
  char *addrs = NULL;
  int r = fn.rados_getaddrs(cluster, &addrs);
  if (r < 0) return r;
  if (addrs == NULL) return -EIO;
  /* librados hands out a malloc'd copy; copy it out so callers never free Ceph memory. */
  size_t n = strlen(addrs);
  if (n + 1 > buflen) r = -ERANGE;
  else memcpy(buf, addrs, n + 1);
  free(addrs);
  return r;
}

int crbd_rados_blocklist_add(crbd_rados_t cluster, const char *client_address,
                             uint32_t expire_seconds) {
  /* The C API takes a non-const char * but does not modify the string. */
  return CALL(rados_blocklist_add, cluster, (char *)client_address, expire_seconds);
}

/* ------------------------------------------------------------------ images */

int crbd_create(crbd_ioctx_t ioctx, const char *name, uint64_t size, int *order) {
  return CALL(rbd_create, ioctx, name, size, order);
}

int crbd_create2(crbd_ioctx_t ioctx, const char *name, uint64_t size, uint64_t features,
                 int *order) {
  return CALL(rbd_create2, ioctx, name, size, features, order);
}

int crbd_remove(crbd_ioctx_t ioctx, const char *name) { return CALL(rbd_remove, ioctx, name); }

int crbd_list(crbd_ioctx_t ioctx, char *names, size_t *size) { return CALL(rbd_list, ioctx, names, size); }

int crbd_open(crbd_ioctx_t ioctx, const char *name, crbd_image_t *image, const char *snap_name) {
  return CALL(rbd_open, ioctx, name, image, snap_name);
}

int crbd_open_read_only(crbd_ioctx_t ioctx, const char *name, crbd_image_t *image,
                        const char *snap_name) {
  return CALL(rbd_open_read_only, ioctx, name, image, snap_name);
}

int crbd_close(crbd_image_t image) { return CALL(rbd_close, image); }

int crbd_stat(crbd_image_t image, crbd_image_info_t *info) {
  struct raw_image_info raw;
  memset(&raw, 0, sizeof raw);
  int r = CALL(rbd_stat, image, &raw, sizeof raw);
  if (r < 0) return r;
  info->size = raw.size;
  info->obj_size = raw.obj_size;
  info->num_objs = raw.num_objs;
  info->order = raw.order;
  return 0;
}

int crbd_get_size(crbd_image_t image, uint64_t *size) { return CALL(rbd_get_size, image, size); }

int crbd_get_features(crbd_image_t image, uint64_t *features) {
  return CALL(rbd_get_features, image, features);
}

int crbd_update_features(crbd_image_t image, uint64_t features, int enabled) {
  return CALL(rbd_update_features, image, features, enabled ? 1 : 0);
}

int crbd_resize(crbd_image_t image, uint64_t size) { return CALL(rbd_resize, image, size); }

int crbd_flush(crbd_image_t image) { return CALL(rbd_flush, image); }

/* ------------------------------------------------------------------ asynchronous I/O */

int crbd_aio_create_completion(void *arg, crbd_callback_t cb, crbd_completion_t *completion) {
  return CALL(rbd_aio_create_completion, arg, cb, completion);
}

int64_t crbd_aio_get_return_value(crbd_completion_t completion) {
  return CALL(rbd_aio_get_return_value, completion);
}

int crbd_aio_wait_for_complete(crbd_completion_t completion) {
  return CALL(rbd_aio_wait_for_complete, completion);
}

void crbd_aio_release(crbd_completion_t completion) {
  if (loaded() && fn.rbd_aio_release != NULL) fn.rbd_aio_release(completion);
}

int crbd_aio_read(crbd_image_t image, uint64_t offset, size_t length, void *buf,
                  crbd_completion_t completion) {
  return CALL(rbd_aio_read, image, offset, length, buf, completion);
}

int crbd_aio_write(crbd_image_t image, uint64_t offset, size_t length, const void *buf,
                   crbd_completion_t completion) {
  return CALL(rbd_aio_write, image, offset, length, buf, completion);
}

int crbd_aio_readv(crbd_image_t image, const struct iovec *iov, int iovcnt, uint64_t offset,
                   crbd_completion_t completion) {
  return CALL(rbd_aio_readv, image, iov, iovcnt, offset, completion);
}

int crbd_aio_writev(crbd_image_t image, const struct iovec *iov, int iovcnt, uint64_t offset,
                    crbd_completion_t completion) {
  return CALL(rbd_aio_writev, image, iov, iovcnt, offset, completion);
}

int crbd_aio_flush(crbd_image_t image, crbd_completion_t completion) {
  return CALL(rbd_aio_flush, image, completion);
}

int crbd_aio_discard(crbd_image_t image, uint64_t offset, uint64_t length,
                     crbd_completion_t completion) {
  return CALL(rbd_aio_discard, image, offset, length, completion);
}

int crbd_aio_writesame(crbd_image_t image, uint64_t offset, size_t length, const void *buf,
                       size_t data_len, crbd_completion_t completion, int op_flags) {
  return CALL(rbd_aio_writesame, image, offset, length, (const char *)buf, data_len, completion,
              op_flags);
}

int crbd_aio_write_zeroes(crbd_image_t image, uint64_t offset, size_t length,
                          crbd_completion_t completion, int zero_flags, int op_flags) {
  return CALL(rbd_aio_write_zeroes, image, offset, length, completion, zero_flags, op_flags);
}

int crbd_aio_compare_and_write(crbd_image_t image, uint64_t offset, size_t length,
                               const void *cmp_buf, const void *buf, crbd_completion_t completion,
                               uint64_t *mismatch_offset, int op_flags) {
  /* librbd returns ssize_t here but only ever 0 or a negative errno at submission. */
  return (int)CALL(rbd_aio_compare_and_write, image, offset, length, (const char *)cmp_buf,
                   (const char *)buf, completion, mismatch_offset, op_flags);
}

/* ------------------------------------------------------------------ allocation map */

int crbd_diff_iterate2(crbd_image_t image, const char *from_snap, uint64_t offset, uint64_t length,
                       uint8_t include_parent, uint8_t whole_object, crbd_diff_callback_t cb,
                       void *arg) {
  return CALL(rbd_diff_iterate2, image, from_snap, offset, length, include_parent, whole_object,
              cb, arg);
}

/* ------------------------------------------------------------------ change notification */

int crbd_update_watch(crbd_image_t image, uint64_t *handle, crbd_update_callback_t cb,
                      void *arg) {
  return CALL(rbd_update_watch, image, handle, cb, arg);
}

int crbd_update_unwatch(crbd_image_t image, uint64_t handle) {
  return CALL(rbd_update_unwatch, image, handle);
}

/* ------------------------------------------------------------------ exclusive lock */

int crbd_is_exclusive_lock_owner(crbd_image_t image, int *is_owner) {
  return CALL(rbd_is_exclusive_lock_owner, image, is_owner);
}

int crbd_lock_acquire(crbd_image_t image, int lock_mode) {
  return CALL(rbd_lock_acquire, image, lock_mode);
}

int crbd_lock_release(crbd_image_t image) { return CALL(rbd_lock_release, image); }

int crbd_lock_get_owners(crbd_image_t image, int *lock_mode, char *buf, size_t buflen,
                         size_t *count) {
  if (!loaded() || fn.rbd_lock_get_owners == NULL || fn.rbd_lock_get_owners_cleanup == NULL)
    return -ENOSYS;
  /* An exclusive lock has one owner and shared locks are rare; 32 slots is plenty, and
   * librbd answers -ERANGE (with the needed count) if not. */
  char *owners[32];
  size_t n = sizeof owners / sizeof owners[0];
  int r = fn.rbd_lock_get_owners(image, lock_mode, owners, &n);
  if (r < 0) {
    *count = r == -ERANGE ? n : 0; /* -ERANGE: how many there are */
    return r;
  }
  size_t used = 0;
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(owners[i]) + 1;
    if (used + len > buflen) {
      r = -ERANGE;
      break;
    }
    memcpy(buf + used, owners[i], len);
    used += len;
  }
  fn.rbd_lock_get_owners_cleanup(owners, n); /* frees librbd's strings with librbd's free */
  *count = n;
  return r;
}

int crbd_lock_break(crbd_image_t image, int lock_mode, const char *owner) {
  return CALL(rbd_lock_break, image, lock_mode, owner);
}

/* ------------------------------------------------------------------ shared records */

/* The record's first 8 bytes are its version (big-endian): a write compares them (cmpext)
 * and replaces the whole object in one atomic op, so there is one truth, the data. */
static int has_record_api(void) {
  return loaded() && fn.rados_read && fn.rados_create_write_op && fn.rados_release_write_op &&
         fn.rados_write_op_create && fn.rados_write_op_cmpext && fn.rados_write_op_write_full &&
         fn.rados_write_op_operate;
}

int crbd_record_read(crbd_ioctx_t ioctx, const char *oid, void *buf, size_t len) {
  if (!has_record_api()) return -ENOSYS;
  return fn.rados_read(ioctx, oid, buf, len, 0);
}

int crbd_record_write(crbd_ioctx_t ioctx, const char *oid, const void *data, size_t len,
                      uint64_t expected_version) {
  if (!has_record_api()) return -ENOSYS;
  char expected[8];
  for (int i = 0; i < 8; i++) expected[i] = (char)(expected_version >> (56 - 8 * i));
  void *op = fn.rados_create_write_op();
  if (op == NULL) return -ENOMEM;
  int compared = 0;
  if (expected_version == 0) {
    fn.rados_write_op_create(op, 1 /* LIBRADOS_CREATE_EXCLUSIVE */, NULL);
  } else {
    fn.rados_write_op_cmpext(op, expected, sizeof expected, 0, &compared);
  }
  fn.rados_write_op_write_full(op, data, len);
  int r = fn.rados_write_op_operate(op, ioctx, oid, NULL, 0);
  fn.rados_release_write_op(op);
  /* Another writer came first: the object exists already, or its version moved on
   * (a mismatch is -MAX_ERRNO - offset, below -4095). */
  if (r == -EEXIST || r == -ECANCELED || r < -4095 || compared < -4095) return 1;
  return r;
}

struct crbd_record_watch {
  crbd_ioctx_t ioctx;
  char oid[256];
  uint64_t cookie;
  crbd_record_cb callback;
  void *context;
};

static void record_notified(void *arg, uint64_t notify_id, uint64_t handle, uint64_t notifier_id,
                            void *data, size_t data_len) {
  (void)notifier_id; (void)data; (void)data_len;
  struct crbd_record_watch *w = arg;
  /* Acknowledge first: the notifier waits for every watcher's ack. */
  fn.rados_notify_ack(w->ioctx, w->oid, notify_id, handle, NULL, 0);
  w->callback(w->context, 0);
}

static void record_watch_error(void *arg, uint64_t cookie, int err) {
  (void)cookie;
  struct crbd_record_watch *w = arg;
  w->callback(w->context, err);
}

int crbd_record_watch(crbd_ioctx_t ioctx, const char *oid, crbd_record_cb callback, void *context,
                      crbd_record_watch_t **out) {
  if (!loaded() || !fn.rados_watch2 || !fn.rados_unwatch2 || !fn.rados_notify_ack) return -ENOSYS;
  if (strlen(oid) >= sizeof ((struct crbd_record_watch *)0)->oid) return -ENAMETOOLONG;
  struct crbd_record_watch *w = calloc(1, sizeof *w);
  if (w == NULL) return -ENOMEM;
  w->ioctx = ioctx;
  strcpy(w->oid, oid);
  w->callback = callback;
  w->context = context;
  int r = fn.rados_watch2(ioctx, oid, &w->cookie, record_notified, record_watch_error, w);
  if (r < 0) {
    free(w);
    return r;
  }
  *out = w;
  return 0;
}

int crbd_record_unwatch(crbd_record_watch_t *w, crbd_rados_t cluster) {
  if (w == NULL) return 0;
  int r = fn.rados_unwatch2(w->ioctx, w->cookie);
  /* No callback may still be running with `w` once it is freed. */
  if (fn.rados_watch_flush) fn.rados_watch_flush(cluster);
  free(w);
  return r;
}

int crbd_record_notify(crbd_ioctx_t ioctx, const char *oid, uint64_t timeout_ms) {
  if (!loaded() || !fn.rados_notify2) return -ENOSYS;
  char *reply = NULL;
  size_t reply_len = 0;
  int r = fn.rados_notify2(ioctx, oid, "", 0, timeout_ms, &reply, &reply_len);
  if (reply != NULL && fn.rados_buffer_free) fn.rados_buffer_free(reply);
  return r;
}
