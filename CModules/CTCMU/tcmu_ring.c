// Typed, barrier-correct accessors for the TCMU mailbox and ring entries.
// The kernel header is included here only (its struct iovec clashes with glibc's).
#include <linux/target_core_user.h>
#include <stddef.h>
#include <string.h>
#include "CTCMU.h"

// The layout the Swift side relies on (reference/tcmu.md 1.2/1.3, verified on x86_64).
_Static_assert(sizeof(struct tcmu_mailbox) == CTCMU_MAILBOX_SIZE, "mailbox size");
_Static_assert(offsetof(struct tcmu_mailbox, cmd_head) == 12, "cmd_head");
_Static_assert(offsetof(struct tcmu_mailbox, cmd_tail) == 64, "cmd_tail");
_Static_assert(sizeof(struct tcmu_cmd_entry_hdr) == CTCMU_ENTRY_HDR_SIZE, "hdr size");
_Static_assert(sizeof(struct tcmu_cmd_entry) == CTCMU_CMD_ENTRY_SIZE, "entry size");
_Static_assert(offsetof(struct tcmu_cmd_entry, req.cdb_off) == 24, "cdb_off");
_Static_assert(offsetof(struct tcmu_cmd_entry, req.iov) == CTCMU_CMD_ENTRY_IOV_OFFSET, "iov");
_Static_assert(offsetof(struct tcmu_cmd_entry, rsp.read_len) == 12, "read_len");
_Static_assert(offsetof(struct tcmu_cmd_entry, rsp.sense_buffer) == 16, "sense");
_Static_assert(sizeof(struct iovec) == CTCMU_IOVEC_SIZE, "iovec (LP64 only)");
_Static_assert(sizeof(struct tcmu_tmr_entry) == CTCMU_TMR_ENTRY_SIZE, "tmr size");
_Static_assert(offsetof(struct tcmu_tmr_entry, cmd_ids) == 32, "tmr cmd_ids");
_Static_assert(TCMU_SENSE_BUFFERSIZE == CTCMU_SENSE_BUFFER_SIZE, "sense size");

#define MB(base) ((struct tcmu_mailbox *)(base))
#define ENT(base, off) ((struct tcmu_cmd_entry *)((char *)(base) + (off)))
#define TMR(base, off) ((struct tcmu_tmr_entry *)((char *)(base) + (off)))

// The mailbox and entries are packed structs in memory the kernel writes concurrently;
// plain fields are read with memcpy-free volatile-free loads because ordering is provided
// by the acquire on cmd_head (entries are complete before the kernel publishes head).

uint16_t ctcmu_mb_version(const void *base) { return MB(base)->version; }
uint16_t ctcmu_mb_flags(const void *base) { return MB(base)->flags; }
uint32_t ctcmu_mb_cmdr_off(const void *base) { return MB(base)->cmdr_off; }
uint32_t ctcmu_mb_cmdr_size(const void *base) { return MB(base)->cmdr_size; }

uint32_t ctcmu_mb_cmd_head(const void *base) {
    return __atomic_load_n(&MB(base)->cmd_head, __ATOMIC_ACQUIRE);
}
uint32_t ctcmu_mb_cmd_tail(const void *base) {
    return __atomic_load_n(&MB(base)->cmd_tail, __ATOMIC_ACQUIRE);
}
void ctcmu_mb_set_cmd_tail(void *base, uint32_t tail) {
    __atomic_store_n(&MB(base)->cmd_tail, tail, __ATOMIC_RELEASE);
}

void ctcmu_mb_init(void *base, uint16_t version, uint16_t flags, uint32_t cmdr_off, uint32_t cmdr_size) {
    memset(base, 0, sizeof(struct tcmu_mailbox));
    MB(base)->version = version;
    MB(base)->flags = flags;
    MB(base)->cmdr_off = cmdr_off;
    MB(base)->cmdr_size = cmdr_size;
}
void ctcmu_mb_set_cmd_head(void *base, uint32_t head) {
    __atomic_store_n(&MB(base)->cmd_head, head, __ATOMIC_RELEASE);
}

uint32_t ctcmu_ent_len_op(const void *base, uint64_t off) { return ENT(base, off)->hdr.len_op; }
uint16_t ctcmu_ent_cmd_id(const void *base, uint64_t off) { return ENT(base, off)->hdr.cmd_id; }
uint8_t ctcmu_ent_uflags(const void *base, uint64_t off) { return ENT(base, off)->hdr.uflags; }
void ctcmu_ent_set_cmd_id(void *base, uint64_t off, uint16_t cmd_id) { ENT(base, off)->hdr.cmd_id = cmd_id; }
void ctcmu_ent_set_uflags(void *base, uint64_t off, uint8_t uflags) { ENT(base, off)->hdr.uflags = uflags; }

uint32_t ctcmu_req_iov_cnt(const void *base, uint64_t off) { return ENT(base, off)->req.iov_cnt; }
uint32_t ctcmu_req_iov_bidi_cnt(const void *base, uint64_t off) { return ENT(base, off)->req.iov_bidi_cnt; }
uint32_t ctcmu_req_iov_dif_cnt(const void *base, uint64_t off) { return ENT(base, off)->req.iov_dif_cnt; }
uint64_t ctcmu_req_cdb_off(const void *base, uint64_t off) { return ENT(base, off)->req.cdb_off; }
uint64_t ctcmu_req_iov_base(const void *base, uint64_t off, uint32_t i) {
    return (uint64_t)(uintptr_t)ENT(base, off)->req.iov[i].iov_base;
}
uint64_t ctcmu_req_iov_len(const void *base, uint64_t off, uint32_t i) { return ENT(base, off)->req.iov[i].iov_len; }

uint8_t ctcmu_rsp_scsi_status(const void *base, uint64_t off) { return ENT(base, off)->rsp.scsi_status; }
uint32_t ctcmu_rsp_read_len(const void *base, uint64_t off) { return ENT(base, off)->rsp.read_len; }
const uint8_t *ctcmu_rsp_sense(const void *base, uint64_t off) {
    return (const uint8_t *)ENT(base, off)->rsp.sense_buffer;
}
void ctcmu_rsp_write(void *base, uint64_t off, uint8_t scsi_status, uint32_t read_len,
                     const uint8_t *sense, size_t sense_len) {
    struct tcmu_cmd_entry *e = ENT(base, off);
    e->rsp.scsi_status = scsi_status;
    e->rsp.__pad1 = 0;
    e->rsp.__pad2 = 0;
    e->rsp.read_len = read_len;
    if (sense_len > TCMU_SENSE_BUFFERSIZE) sense_len = TCMU_SENSE_BUFFERSIZE;
    if (sense_len) memcpy(e->rsp.sense_buffer, sense, sense_len);
    memset(e->rsp.sense_buffer + sense_len, 0, TCMU_SENSE_BUFFERSIZE - sense_len);
}

uint8_t ctcmu_tmr_type(const void *base, uint64_t off) { return TMR(base, off)->tmr_type; }
uint32_t ctcmu_tmr_cmd_cnt(const void *base, uint64_t off) { return TMR(base, off)->cmd_cnt; }
uint16_t ctcmu_tmr_cmd_id(const void *base, uint64_t off, uint32_t i) { return TMR(base, off)->cmd_ids[i]; }

void ctcmu_ent_write_hdr(void *base, uint64_t off, uint32_t len_op, uint16_t cmd_id) {
    struct tcmu_cmd_entry_hdr *h = &ENT(base, off)->hdr;
    h->len_op = len_op;
    h->cmd_id = cmd_id;
    h->kflags = 0;
    h->uflags = 0;
}
void ctcmu_req_write(void *base, uint64_t off, uint32_t iov_cnt, uint32_t iov_bidi_cnt, uint64_t cdb_off) {
    struct tcmu_cmd_entry *e = ENT(base, off);
    e->req.iov_cnt = iov_cnt;
    e->req.iov_bidi_cnt = iov_bidi_cnt;
    e->req.iov_dif_cnt = 0;
    e->req.cdb_off = cdb_off;
    e->req.__pad1 = 0;
    e->req.__pad2 = 0;
}
void ctcmu_req_write_iov(void *base, uint64_t off, uint32_t i, uint64_t iov_base, uint64_t iov_len) {
    struct tcmu_cmd_entry *e = ENT(base, off);
    e->req.iov[i].iov_base = (void *)(uintptr_t)iov_base;
    e->req.iov[i].iov_len = iov_len;
}
void ctcmu_tmr_write(void *base, uint64_t off, uint8_t tmr_type, uint32_t cmd_cnt) {
    struct tcmu_tmr_entry *t = TMR(base, off);
    t->tmr_type = tmr_type;
    t->__pad1 = 0;
    t->__pad2 = 0;
    t->cmd_cnt = cmd_cnt;
    t->__pad3 = 0;
    t->__pad4 = 0;
}
void ctcmu_tmr_write_cmd_id(void *base, uint64_t off, uint32_t i, uint16_t cmd_id) { TMR(base, off)->cmd_ids[i] = cmd_id; }
