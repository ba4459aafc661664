// TCMU kernel ring + TCM-USER generic netlink shim (mechanism only; policy lives in Sources/TCMU).
//
// Kept free of <linux/target_core_user.h> and libnl headers: the kernel's <linux/uio.h>
// redefines struct iovec, which clashes with glibc's in any unit that also sees socket
// headers. The ring accessors live in tcmu_ring.c (kernel header + offset asserts), the
// netlink code in tcmu_netlink.c (libnl), the uio/mmap syscalls in tcmu_uio.c.
#ifndef CTCMU_H
#define CTCMU_H
#include <stddef.h>
#include <stdint.h>

// ---- Mapping and uio signalling (tcmu_uio.c) -------------------------------------------

/// Reads /sys/class/uio/<uio>/maps/map0/size (uio = "uio3"). 0 on success, -errno on failure.
int ctcmu_uio_map_size(const char *uio, uint64_t *size);
/// Opens /dev/<uio> O_RDWR|O_CLOEXEC|O_NONBLOCK. Returns fd or -errno (EBUSY: another opener).
int ctcmu_uio_open(const char *uio);
/// mmap(MAP_SHARED, offset 0) of `size` bytes of `fd`. Returns base or NULL (errno in *err).
void *ctcmu_map(int fd, uint64_t size, int *err);
int ctcmu_unmap(void *base, uint64_t size);
/// Waits until `fd` or `stop_fd` is readable or `timeout_ms` passed (-1 forever).
/// Returns bit 1 if fd is readable, bit 2 if stop_fd is readable, 0 on timeout, -errno on error.
int ctcmu_wait(int fd, int stop_fd, int timeout_ms);
/// Acknowledges a kick: reads the 4-byte uio event counter. Returns 0 or -errno (-EAGAIN: none).
int ctcmu_uio_ack(int fd);
/// Tells the kernel completions are in the ring: writes 4 bytes. Returns 0 or -errno.
int ctcmu_uio_kick(int fd);
/// CLOCK_MONOTONIC in nanoseconds (vDSO, no system call on common clock sources).
uint64_t ctcmu_monotonic_ns(void);
/// A spin-wait hint to the CPU (x86 PAUSE, arm64 YIELD): a polling loop leaves the core's
/// other hardware thread (and the hypervisor) room.
static inline void ctcmu_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
/// An anonymous shared-memory file of `size` bytes (ring simulator, tests). fd or -errno.
int ctcmu_memfd(const char *name, uint64_t size);
/// A connected AF_UNIX stream pair standing in for a uio fd in tests (4-byte reads/writes).
int ctcmu_socketpair(int fds[2]);
/// An eventfd used to stop waiting loops. fd or -errno.
int ctcmu_eventfd(void);
int ctcmu_eventfd_signal(int fd);
int ctcmu_close(int fd);

// ---- Mailbox and ring entries (tcmu_ring.c) --------------------------------------------
// All `off` arguments are byte offsets from the mapping base (entries: base + cmdr_off + pos).

/// Layout facts of this kernel ABI (checked against the UAPI header with _Static_assert).
enum {
    CTCMU_MAILBOX_SIZE = 128,          // sizeof(struct tcmu_mailbox) == CMDR_OFF
    CTCMU_ENTRY_HDR_SIZE = 8,          // sizeof(struct tcmu_cmd_entry_hdr)
    CTCMU_CMD_ENTRY_SIZE = 112,        // sizeof(struct tcmu_cmd_entry)
    CTCMU_CMD_ENTRY_IOV_OFFSET = 48,   // offsetof(struct tcmu_cmd_entry, req.iov)
    CTCMU_IOVEC_SIZE = 16,             // sizeof(struct iovec) on LP64
    CTCMU_TMR_ENTRY_SIZE = 32,         // sizeof(struct tcmu_tmr_entry)
    CTCMU_SENSE_BUFFER_SIZE = 96       // TCMU_SENSE_BUFFERSIZE
};

uint16_t ctcmu_mb_version(const void *base);
uint16_t ctcmu_mb_flags(const void *base);
uint32_t ctcmu_mb_cmdr_off(const void *base);
uint32_t ctcmu_mb_cmdr_size(const void *base);
/// cmd_head, loaded with acquire: entry contents written before it are visible.
uint32_t ctcmu_mb_cmd_head(const void *base);
/// cmd_tail (acquire; the kernel resets it on reset_ring).
uint32_t ctcmu_mb_cmd_tail(const void *base);
/// cmd_tail, stored with release: the response written before it is visible to the kernel.
void ctcmu_mb_set_cmd_tail(void *base, uint32_t tail);

// Kernel side of the mailbox, for the ring simulator in the tests.
void ctcmu_mb_init(void *base, uint16_t version, uint16_t flags, uint32_t cmdr_off, uint32_t cmdr_size);
void ctcmu_mb_set_cmd_head(void *base, uint32_t head);

/// Entry header (struct tcmu_cmd_entry_hdr).
uint32_t ctcmu_ent_len_op(const void *base, uint64_t off);
uint16_t ctcmu_ent_cmd_id(const void *base, uint64_t off);
uint8_t ctcmu_ent_uflags(const void *base, uint64_t off);
void ctcmu_ent_set_cmd_id(void *base, uint64_t off, uint16_t cmd_id);
void ctcmu_ent_set_uflags(void *base, uint64_t off, uint8_t uflags);

/// Command request (struct tcmu_cmd_entry.req).
uint32_t ctcmu_req_iov_cnt(const void *base, uint64_t off);
uint32_t ctcmu_req_iov_bidi_cnt(const void *base, uint64_t off);
uint32_t ctcmu_req_iov_dif_cnt(const void *base, uint64_t off);
uint64_t ctcmu_req_cdb_off(const void *base, uint64_t off);
/// iov[i].iov_base (an offset from the mapping base) and iov[i].iov_len.
uint64_t ctcmu_req_iov_base(const void *base, uint64_t off, uint32_t i);
uint64_t ctcmu_req_iov_len(const void *base, uint64_t off, uint32_t i);

/// Command response (struct tcmu_cmd_entry.rsp; overlays req).
uint8_t ctcmu_rsp_scsi_status(const void *base, uint64_t off);
uint32_t ctcmu_rsp_read_len(const void *base, uint64_t off);
const uint8_t *ctcmu_rsp_sense(const void *base, uint64_t off);
/// Writes status, read_len and up to 96 bytes of sense (the rest zeroed).
void ctcmu_rsp_write(void *base, uint64_t off, uint8_t scsi_status, uint32_t read_len,
                     const uint8_t *sense, size_t sense_len);

/// TMR notification (struct tcmu_tmr_entry).
uint8_t ctcmu_tmr_type(const void *base, uint64_t off);
uint32_t ctcmu_tmr_cmd_cnt(const void *base, uint64_t off);
uint16_t ctcmu_tmr_cmd_id(const void *base, uint64_t off, uint32_t i);

// Kernel side of the entries, for the ring simulator.
void ctcmu_ent_write_hdr(void *base, uint64_t off, uint32_t len_op, uint16_t cmd_id);
void ctcmu_req_write(void *base, uint64_t off, uint32_t iov_cnt, uint32_t iov_bidi_cnt, uint64_t cdb_off);
void ctcmu_req_write_iov(void *base, uint64_t off, uint32_t i, uint64_t iov_base, uint64_t iov_len);
void ctcmu_tmr_write(void *base, uint64_t off, uint8_t tmr_type, uint32_t cmd_cnt);
void ctcmu_tmr_write_cmd_id(void *base, uint64_t off, uint32_t i, uint16_t cmd_id);

// ---- TCM-USER generic netlink family (tcmu_netlink.c, libnl-3 / libnl-genl-3) ----------

typedef struct ctcmu_nl ctcmu_nl;

/// One kernel event (TCMU_CMD_ADDED/REMOVED/RECONFIG_DEVICE) with its attributes.
typedef struct {
    int cmd;                 // enum tcmu_genl_cmd
    int has_minor; uint32_t minor;
    int has_device_id; uint32_t device_id;
    int has_dev_cfg; char dev_cfg[256];
    int has_dev_size; uint64_t dev_size;
    int has_writecache; uint8_t writecache;
    char device[256];        // TCMU_ATTR_DEVICE: the uio name string
} ctcmu_nl_event;

typedef void (*ctcmu_nl_event_fn)(const ctcmu_nl_event *event, void *context);

/// Connects, resolves "TCM-USER", joins the "config" multicast group. 0 or a negative
/// libnl error (-NLE_OBJ_NOTFOUND when target_core_user is not loaded).
int ctcmu_nl_open(ctcmu_nl **out);
void ctcmu_nl_close(ctcmu_nl *nl);
int ctcmu_nl_fd(const ctcmu_nl *nl);
/// The family version the kernel reports (2 supports DEVICE_ID and replies).
int ctcmu_nl_family_version(const ctcmu_nl *nl);
/// SET_FEATURES {SUPP_KERN_CMD_REPLY = supported} with an ACK. 0 or negative libnl error.
int ctcmu_nl_set_features(ctcmu_nl *nl, int reply_supported);
/// Receives what is pending on the socket (non-blocking) and calls `fn` per event.
/// Returns the number of events, or a negative libnl error.
int ctcmu_nl_receive(ctcmu_nl *nl, ctcmu_nl_event_fn fn, void *context);
/// Sends `<cmd>_DONE` {CMD_STATUS = status, DEVICE_ID = device_id}. 0 or negative libnl error.
int ctcmu_nl_reply(ctcmu_nl *nl, int done_cmd, int32_t status, uint32_t device_id);
/// libnl's text for a negative libnl error.
const char *ctcmu_nl_strerror(int err);

#endif
