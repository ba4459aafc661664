/*
 * CRBD: a thin, run-time-loaded binding to Ceph's librados and librbd C APIs for
 * SwiftTarget's `rbd` backstore.
 *
 * Nothing here links against Ceph or needs its headers: crbd.c dlopens librados.so.2 and
 * librbd.so.1 on first use, so the daemon still starts on hosts without Ceph and only an
 * rbd backstore reports the missing packages (Debian: librbd1, librados2).
 *
 * Conventions
 *  - Every int-returning call returns 0 (or a documented non-negative value) on success and
 *    a negative errno on failure, exactly as librados/librbd do. A wrapper whose symbol the
 *    installed library lacks returns -ENOSYS; so does every wrapper when crbd_load() failed.
 *  - Wrappers load the libraries on first use, but callers should call crbd_load() once
 *    up front to get the explanatory message.
 *  - Handles are opaque pointers (OpaquePointer in Swift).
 *  - Completion and update-watch callbacks run on librbd's own threads. They must not
 *    block and must not call crbd_close()/crbd_rados_shutdown(). A completion callback
 *    may read the return value and release the completion. (The diff_iterate2 callback
 *    runs on the calling thread, before crbd_diff_iterate2 returns.)
 *  - Buffers and the iovec array passed to an aio call must stay valid until its
 *    completion fires (librbd keeps the iovec pointer for reads and fills the buffers
 *    later; for compare-and-write it writes *mismatch_off asynchronously too).
 */
#ifndef CRBD_H
#define CRBD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h> /* struct iovec: the same type Swift's Glibc module exposes */

#ifdef __cplusplus
extern "C" {
#endif

/* Nullability for Swift's importer (clang only; gcc sees plain pointers). Every pointer
 * is non-null unless marked CRBD_NULLABLE (the pragma does not cover pointer-to-pointer
 * parameters, which say so explicitly: an out-handle is non-null, the handle it receives
 * starts out as nil). */
#if defined(__clang__)
#define CRBD_NULLABLE _Nullable
#define CRBD_NONNULL _Nonnull
#define CRBD_ASSUME_NONNULL_BEGIN _Pragma("clang assume_nonnull begin")
#define CRBD_ASSUME_NONNULL_END _Pragma("clang assume_nonnull end")
#else
#define CRBD_NULLABLE
#define CRBD_NONNULL
#define CRBD_ASSUME_NONNULL_BEGIN
#define CRBD_ASSUME_NONNULL_END
#endif

CRBD_ASSUME_NONNULL_BEGIN

/* Opaque handles. Distinct incomplete types catch mix-ups in C; librados/librbd see them as
 * the void pointers their API uses (rados_t, rados_ioctx_t, rbd_image_t, rbd_completion_t). */
typedef struct crbd_rados *crbd_rados_t;
typedef struct crbd_ioctx *crbd_ioctx_t;
typedef struct crbd_image *crbd_image_t;
typedef struct crbd_completion *crbd_completion_t;

/* Same shapes as rbd_callback_t, rbd_update_callback_t and rbd_diff_iterate2's callback. */
typedef void (*crbd_callback_t)(crbd_completion_t completion, void *CRBD_NULLABLE arg);
typedef void (*crbd_update_callback_t)(void *CRBD_NULLABLE arg);
/* exists: 1 = allocated data, 0 = known to be zero (a hole). Return non-zero to stop. */
typedef int (*crbd_diff_callback_t)(uint64_t offset, size_t length, int exists,
                                    void *CRBD_NULLABLE arg);

/* The fields of rbd_image_info_t a target needs (crbd_stat copies them out). */
typedef struct {
  uint64_t size;     /* bytes */
  uint64_t obj_size; /* bytes per RADOS object, 1 << order */
  uint64_t num_objs;
  int order;
} crbd_image_info_t;

/* Values from librbd.h / features.h / librados.h, for callers without Ceph headers. */
enum {
  CRBD_LOCK_MODE_EXCLUSIVE = 0, /* rbd_lock_mode_t */
  CRBD_LOCK_MODE_SHARED = 1,
};
#define CRBD_FEATURE_LAYERING (1ULL << 0)
#define CRBD_FEATURE_STRIPINGV2 (1ULL << 1)
#define CRBD_FEATURE_EXCLUSIVE_LOCK (1ULL << 2)
#define CRBD_FEATURE_OBJECT_MAP (1ULL << 3)
#define CRBD_FEATURE_FAST_DIFF (1ULL << 4)
#define CRBD_FEATURE_DEEP_FLATTEN (1ULL << 5)
#define CRBD_FEATURE_JOURNALING (1ULL << 6)
#define CRBD_OP_FLAG_FADVISE_RANDOM 0x4
#define CRBD_OP_FLAG_FADVISE_SEQUENTIAL 0x8
#define CRBD_OP_FLAG_FADVISE_FUA 0x80
/* Extra errno librados uses for a blocklisted client (ESHUTDOWN on Linux). */
#define CRBD_EBLOCKLISTED 108

/* ------------------------------------------------------------------ loading */

/* Loads librados.so.2 and librbd.so.1 (once per process; thread-safe) and resolves their
 * symbols. Returns 0, or -ENOENT when a library cannot be opened, or -ENOSYS when a
 * required symbol is missing; then `err` (if not NULL) receives a message naming the
 * library, dlerror()'s text and the Debian packages to install.
 * Environment (for tests): CRBD_LIBRBD and CRBD_LIBRADOS replace the library names. */
int crbd_load(char *CRBD_NULLABLE err, size_t errlen);

/* 1 when the loaded libraries provide `symbol` (e.g. "rbd_aio_compare_and_write"). */
int crbd_has_symbol(const char *symbol);

/* librbd's version (rbd_version), e.g. 1.16.0 for Ceph 16 (pacific). */
int crbd_version(int *major, int *minor, int *extra);

/* ------------------------------------------------------------------ librados */

/* rados_create2. cluster_name NULL means "ceph"; user_name is the full entity name such as
 * "client.admin" (NULL: the library default, client.admin). flags: 0. */
int crbd_rados_create2(crbd_rados_t CRBD_NULLABLE *CRBD_NONNULL cluster,
                       const char *CRBD_NULLABLE cluster_name,
                       const char *CRBD_NULLABLE user_name, uint64_t flags);
/* rados_conf_read_file. path NULL searches $CEPH_CONF, /etc/ceph/ceph.conf, ... */
int crbd_rados_conf_read_file(crbd_rados_t cluster, const char *CRBD_NULLABLE path);
/* rados_conf_set, e.g. ("keyring", "/path"), ("rbd_cache", "false"). */
int crbd_rados_conf_set(crbd_rados_t cluster, const char *option, const char *value);
/* Convenience: sets client_mount_timeout (bounds rados_connect against a dead or
 * unreachable cluster), rados_mon_op_timeout and rados_osd_op_timeout, in seconds.
 * 0 leaves an option at its default (300 s mount, no limit for the others). Note that an
 * OSD op timeout applies to every image I/O: a stalled OSD then fails I/O with -ETIMEDOUT
 * instead of waiting. Call before crbd_rados_connect. */
int crbd_rados_set_timeouts(crbd_rados_t cluster, unsigned mount_seconds, unsigned mon_op_seconds,
                            unsigned osd_op_seconds);
/* rados_connect: -ETIMEDOUT when no monitor answered within client_mount_timeout (also
 * for a stopped cluster: there is no quick "connection refused"), -EACCES for a wrong key
 * (at once), -ENOENT when the keyring file is missing. */
int crbd_rados_connect(crbd_rados_t cluster);
/* rados_shutdown: also for a handle whose connect failed. */
void crbd_rados_shutdown(crbd_rados_t cluster);
/* rados_ioctx_create: -ENOENT when the pool does not exist. */
int crbd_rados_ioctx_create(crbd_rados_t cluster, const char *pool_name,
                            crbd_ioctx_t CRBD_NULLABLE *CRBD_NONNULL ioctx);
void crbd_rados_ioctx_destroy(crbd_ioctx_t ioctx);
/* rados_get_instance_id: this client's global id (the N of client.N) in *id. */
int crbd_rados_get_instance_id(crbd_rados_t cluster, uint64_t *id);
/* rados_getaddrs: this session's address(es), suitable for blocklisting, copied into buf
 * as a NUL-terminated string. -ERANGE when buf is too small. */
int crbd_rados_getaddrs(crbd_rados_t cluster, char *buf, size_t buflen);
/* rados_blocklist_add (or the older rados_blacklist_add): fences a client address, such as
 * a failed peer's, for expire_seconds (0: the cluster default, one hour). */
int crbd_rados_blocklist_add(crbd_rados_t cluster, const char *client_address,
                             uint32_t expire_seconds);

/* ------------------------------------------------------------------ images */

/* rbd_create: *order in: object size as a power of two (0: default, 22 = 4 MiB); out: the
 * order used. Features come from the rbd_default_features option. */
int crbd_create(crbd_ioctx_t ioctx, const char *name, uint64_t size, int *order);
/* rbd_create2: explicit feature bits (CRBD_FEATURE_*). */
int crbd_create2(crbd_ioctx_t ioctx, const char *name, uint64_t size, uint64_t features,
                 int *order);
/* rbd_remove (fails with -EBUSY while a client has the image open). */
int crbd_remove(crbd_ioctx_t ioctx, const char *name);
/* The pool's image names, NUL-separated, in `names` (*size bytes); -ERANGE with *size set to
 * the bytes needed when they do not fit; otherwise the number of bytes used or -errno. */
int crbd_list(crbd_ioctx_t ioctx, char *CRBD_NULLABLE names, size_t *size);
/* rbd_open / rbd_open_read_only. snap_name NULL opens the writable head. */
int crbd_open(crbd_ioctx_t ioctx, const char *name,
              crbd_image_t CRBD_NULLABLE *CRBD_NONNULL image,
              const char *CRBD_NULLABLE snap_name);
int crbd_open_read_only(crbd_ioctx_t ioctx, const char *name,
                        crbd_image_t CRBD_NULLABLE *CRBD_NONNULL image,
                        const char *CRBD_NULLABLE snap_name);
/* rbd_close: waits for in-flight I/O and releases the exclusive lock if held. */
int crbd_close(crbd_image_t image);
int crbd_stat(crbd_image_t image, crbd_image_info_t *info);
int crbd_get_size(crbd_image_t image, uint64_t *size);
int crbd_get_features(crbd_image_t image, uint64_t *features);
/* rbd_update_features: turns the given CRBD_FEATURE_* bits on (enabled 1) or off (0). */
int crbd_update_features(crbd_image_t image, uint64_t features, int enabled);
/* rbd_resize (grow or shrink). */
int crbd_resize(crbd_image_t image, uint64_t size);
/* rbd_flush: synchronous flush of librbd's cache. */
int crbd_flush(crbd_image_t image);

/* ------------------------------------------------------------------ asynchronous I/O */

/* rbd_aio_create_completion: cb(completion, arg) runs once the operation finishes. */
int crbd_aio_create_completion(void *CRBD_NULLABLE arg, crbd_callback_t cb,
                               crbd_completion_t CRBD_NULLABLE *CRBD_NONNULL completion);
/* rbd_aio_get_return_value. Reads: the number of bytes read. Writes, writesame, discard,
 * write-zeroes, flush, a matching compare-and-write: 0. Errors: negative errno
 * (compare-and-write mismatch: -EILSEQ). */
int64_t crbd_aio_get_return_value(crbd_completion_t completion);
/* rbd_aio_wait_for_complete: blocks until done (tests and synchronous paths). */
int crbd_aio_wait_for_complete(crbd_completion_t completion);
/* rbd_aio_release: after completion; allowed inside the completion callback. */
void crbd_aio_release(crbd_completion_t completion);

/* A submit call returns 0 once queued (the completion then always fires) or a negative
 * errno at once (the completion does not fire). librbd clips at the end of the image, so
 * check ranges before submitting: an I/O starting at or past the end completes with
 * -EINVAL, but one crossing the end is cut short silently (a read completes with the
 * shorter byte count, a write/writesame/discard/write-zeroes with 0). Errors
 * seen in completions: -EROFS (another client holds the exclusive lock and refused to
 * pass it on), -CRBD_EBLOCKLISTED (this client was fenced), -ETIMEDOUT (only with
 * rados_osd_op_timeout set). */
int crbd_aio_readv(crbd_image_t image, const struct iovec *iov, int iovcnt, uint64_t offset,
                   crbd_completion_t completion);
/* One buffer, no iovec to keep alive until the completion (the completion-driven path). */
int crbd_aio_read(crbd_image_t image, uint64_t offset, size_t length, void *buf,
                  crbd_completion_t completion);
int crbd_aio_write(crbd_image_t image, uint64_t offset, size_t length, const void *buf,
                   crbd_completion_t completion);
int crbd_aio_writev(crbd_image_t image, const struct iovec *iov, int iovcnt, uint64_t offset,
                    crbd_completion_t completion);
/* rbd_aio_flush: makes all writes completed so far durable. Needed for SYNCHRONIZE CACHE
 * and FUA: with the default rbd_cache (policy writearound, writethrough until the first
 * flush) writes may complete before they are stable once a flush has been seen. Set
 * rbd_cache=false before connecting for write-through semantics. */
int crbd_aio_flush(crbd_image_t image, crbd_completion_t completion);
/* rbd_aio_discard. With rbd_skip_partial_discard (the default) only whole
 * rbd_discard_granularity_bytes (64 KiB) units inside the range are freed; the rest keeps
 * its data. With rbd_skip_partial_discard=false (conf_set before connecting) the partial
 * units are zeroed instead, so the whole range reads back as zeros. */
int crbd_aio_discard(crbd_image_t image, uint64_t offset, uint64_t length,
                     crbd_completion_t completion);
/* rbd_aio_writesame: repeats buf[0..<data_len] over [offset, offset+length); length must
 * be a multiple of data_len. op_flags: CRBD_OP_FLAG_* or 0. */
int crbd_aio_writesame(crbd_image_t image, uint64_t offset, size_t length, const void *buf,
                       size_t data_len, crbd_completion_t completion, int op_flags);
/* rbd_aio_write_zeroes: reads of the range return zeros afterwards (zero_flags 0). */
int crbd_aio_write_zeroes(crbd_image_t image, uint64_t offset, size_t length,
                          crbd_completion_t completion, int zero_flags, int op_flags);
/* rbd_aio_compare_and_write: if [offset, offset+length) equals cmp_buf, writes buf there
 * atomically; otherwise the completion returns -EILSEQ and *mismatch_offset is set
 * (before the completion fires).
 * librbd 16 (Ceph pacific, Debian 12) limits: the range must lie inside one 512-byte
 * sector (length <= 512, no 512-byte boundary crossed), else the completion returns
 * -EINVAL; and *mismatch_offset is (image offset of the RADOS object holding the range) +
 * (index of the first differing byte in cmp_buf), so the index is *mismatch_offset % 512.
 * Newer librbd lifts the sector limit (check crbd_version). */
int crbd_aio_compare_and_write(crbd_image_t image, uint64_t offset, size_t length,
                               const void *cmp_buf, const void *buf, crbd_completion_t completion,
                               uint64_t *mismatch_offset, int op_flags);

/* ------------------------------------------------------------------ allocation map */

/* rbd_diff_iterate2: reports the extents that changed since from_snap (NULL: since the
 * image was created, i.e. the allocated extents) within [offset, offset+length).
 * Without snapshots the granularity is the RADOS object even with whole_object 0: each
 * existing object is one extent from its start to its last written byte (holes inside
 * it are reported as data). whole_object 1 reports whole objects (from the object map
 * with fast-diff). */
int crbd_diff_iterate2(crbd_image_t image, const char *CRBD_NULLABLE from_snap, uint64_t offset,
                       uint64_t length, uint8_t include_parent, uint8_t whole_object,
                       crbd_diff_callback_t cb, void *CRBD_NULLABLE arg);

/* ------------------------------------------------------------------ change notification */

/* rbd_update_watch: cb(arg) runs after the image's header changed (resize, snapshot,
 * feature or lock changes), whether this or another client made the change; one change
 * may fire it more than once (a resize fired it twice). Re-read what you need (e.g.
 * crbd_get_size) in or after the callback. */
int crbd_update_watch(crbd_image_t image, uint64_t *handle, crbd_update_callback_t cb,
                      void *CRBD_NULLABLE arg);
int crbd_update_unwatch(crbd_image_t image, uint64_t handle);

/* ------------------------------------------------------------------ exclusive lock */
/* These act on the exclusive-lock feature's lock (CRBD_FEATURE_EXCLUSIVE_LOCK). */

/* rbd_is_exclusive_lock_owner: *is_owner 1 when this handle holds the lock. */
int crbd_is_exclusive_lock_owner(crbd_image_t image, int *is_owner);
/* rbd_lock_acquire: takes the lock and keeps it: while held this way, other clients'
 * requests for it are refused (their writes complete with -EROFS at once, and their
 * lock_acquire returns -EROFS) instead of the lock moving to them.
 * Calling it (even when it fails) switches this handle from automatic to manual lock
 * management for good: its writes no longer take the lock by themselves but fail with
 * -EROFS until a lock_acquire succeeds. Without any lock_acquire call, a write takes the
 * lock automatically and the owner hands it over on request (milliseconds), so two
 * writers ping-pong the lock. A killed owner blocks automatic takeover until its watch
 * times out (osd_client_watch_timeout, 30 s by default); lock_break avoids the wait. */
int crbd_lock_acquire(crbd_image_t image, int lock_mode);
/* rbd_lock_release: only for a lock taken with crbd_lock_acquire (else -EINVAL). */
int crbd_lock_release(crbd_image_t image);
/* rbd_lock_get_owners: the current owners, copied into buf as consecutive NUL-terminated
 * strings; *count gets their number, *lock_mode the mode. -ENOENT when nobody holds the
 * lock, -ERANGE when buf is too small. */
int crbd_lock_get_owners(crbd_image_t image, int *lock_mode, char *buf, size_t buflen,
                         size_t *count);
/* rbd_lock_break: removes `owner`'s lock (a string from crbd_lock_get_owners); with
 * rbd_blocklist_on_break_lock (default true) the owner is blocklisted first, so a
 * stale holder can no longer write (its I/O completes with -CRBD_EBLOCKLISTED). The
 * breaker must then call crbd_lock_acquire (or, in automatic mode, just write). */
int crbd_lock_break(crbd_image_t image, int lock_mode, const char *owner);

/* Shared records: a small RADOS object with a version, for state several gateways share
 * (persistent reservations). Writes are compare-and-swap on the version; watchers are told
 * of every change by notify. */
/* rados_read of the whole object into buf: bytes read, or -errno (-ENOENT: no record yet). */
int crbd_record_read(crbd_ioctx_t ioctx, const char *oid, void *buf, size_t len);
/* Replaces the object's data (which starts with its new 8-byte big-endian version) when its
 * first 8 bytes still hold expected_version (0: the object must not exist yet). 0 when
 * written, 1 when another writer came first (read again and retry), -errno on failure. */
int crbd_record_write(crbd_ioctx_t ioctx, const char *oid, const void *data, size_t len,
                      uint64_t expected_version);
typedef struct crbd_record_watch crbd_record_watch_t;
/* Called from a librados thread: err 0 for a change notified by a writer, else the watch's
 * error (-ENOTCONN: the watch was lost; re-read and watch again). Must not block long. */
typedef void (*crbd_record_cb)(void *CRBD_NULLABLE context, int err);
int crbd_record_watch(crbd_ioctx_t ioctx, const char *oid, crbd_record_cb callback, void *CRBD_NULLABLE context,
                      crbd_record_watch_t *CRBD_NULLABLE *CRBD_NONNULL watch);
/* Stops the watch and waits until no callback of it runs; then frees it. */
int crbd_record_unwatch(crbd_record_watch_t *watch, crbd_rados_t cluster);
/* Tells every watcher the record changed; waits up to timeout_ms for their acks. */
int crbd_record_notify(crbd_ioctx_t ioctx, const char *oid, uint64_t timeout_ms);


CRBD_ASSUME_NONNULL_END


#ifdef __cplusplus
}
#endif

#endif /* CRBD_H */
