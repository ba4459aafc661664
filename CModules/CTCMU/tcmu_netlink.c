// The TCM-USER generic netlink family through libnl-3 (reference/tcmu.md 1.10).
// Attribute and command numbers mirror enum tcmu_genl_cmd / tcmu_genl_attr in
// <linux/target_core_user.h>, which cannot be included here (struct iovec clash).
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <netlink/netlink.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/family.h>
#include "CTCMU.h"

enum { A_DEVICE = 1, A_MINOR = 2, A_DEV_CFG = 4, A_DEV_SIZE = 5, A_WRITECACHE = 6,
       A_CMD_STATUS = 7, A_DEVICE_ID = 8, A_SUPP_KERN_CMD_REPLY = 9, A_MAX = 9 };
enum { C_SET_FEATURES = 7 };

struct ctcmu_nl {
    struct nl_sock *sock;
    int family;
    int version;
    ctcmu_nl_event_fn fn;
    void *context;
    int delivered;
};

static struct nla_policy policy[A_MAX + 1] = {
    [A_DEVICE] = { .type = NLA_STRING },
    [A_MINOR] = { .type = NLA_U32 },
    [A_DEV_CFG] = { .type = NLA_STRING },
    [A_DEV_SIZE] = { .type = NLA_U64 },
    [A_WRITECACHE] = { .type = NLA_U8 },
    [A_CMD_STATUS] = { .type = NLA_S32 },
    [A_DEVICE_ID] = { .type = NLA_U32 },
    [A_SUPP_KERN_CMD_REPLY] = { .type = NLA_U8 },
};

static int on_message(struct nl_msg *msg, void *arg) {
    struct ctcmu_nl *nl = arg;
    struct nlmsghdr *h = nlmsg_hdr(msg);
    struct genlmsghdr *g = nlmsg_data(h);
    struct nlattr *a[A_MAX + 1];
    if (genlmsg_parse(h, 0, a, A_MAX, policy) < 0) return NL_SKIP;
    ctcmu_nl_event ev;
    memset(&ev, 0, sizeof ev);
    ev.cmd = g->cmd;
    if (a[A_DEVICE]) { strncpy(ev.device, nla_get_string(a[A_DEVICE]), sizeof ev.device - 1); }
    if (a[A_MINOR]) { ev.has_minor = 1; ev.minor = nla_get_u32(a[A_MINOR]); }
    if (a[A_DEVICE_ID]) { ev.has_device_id = 1; ev.device_id = nla_get_u32(a[A_DEVICE_ID]); }
    if (a[A_DEV_CFG]) { ev.has_dev_cfg = 1; strncpy(ev.dev_cfg, nla_get_string(a[A_DEV_CFG]), sizeof ev.dev_cfg - 1); }
    if (a[A_DEV_SIZE]) { ev.has_dev_size = 1; ev.dev_size = nla_get_u64(a[A_DEV_SIZE]); }
    if (a[A_WRITECACHE]) { ev.has_writecache = 1; ev.writecache = nla_get_u8(a[A_WRITECACHE]); }
    if (nl->fn) nl->fn(&ev, nl->context);
    nl->delivered++;
    return NL_OK;
}

int ctcmu_nl_open(ctcmu_nl **out) {
    struct ctcmu_nl *nl = calloc(1, sizeof *nl);
    if (!nl) return -NLE_NOMEM;
    nl->sock = nl_socket_alloc();
    if (!nl->sock) { free(nl); return -NLE_NOMEM; }
    int rc = genl_connect(nl->sock);
    if (rc < 0) goto fail;
    nl->family = genl_ctrl_resolve(nl->sock, "TCM-USER");
    if (nl->family < 0) { rc = nl->family; goto fail; }
    int group = genl_ctrl_resolve_grp(nl->sock, "TCM-USER", "config");
    if (group < 0) { rc = group; goto fail; }
    struct genl_family *fam = NULL;
    nl->version = 1;
    struct nl_cache *cache = NULL;
    if (genl_ctrl_alloc_cache(nl->sock, &cache) == 0) {
        fam = genl_ctrl_search_by_name(cache, "TCM-USER");
        if (fam) { nl->version = genl_family_get_version(fam); genl_family_put(fam); }
        nl_cache_free(cache);
    }
    // Multicast events carry sequence number 0; replies to our requests are acked.
    nl_socket_disable_seq_check(nl->sock);
    nl_socket_modify_cb(nl->sock, NL_CB_VALID, NL_CB_CUSTOM, on_message, nl);
    rc = nl_socket_add_membership(nl->sock, group);
    if (rc < 0) goto fail;
    nl_socket_set_nonblocking(nl->sock);
    *out = nl;
    return 0;
fail:
    nl_socket_free(nl->sock);
    free(nl);
    return rc;
}

void ctcmu_nl_close(ctcmu_nl *nl) {
    if (!nl) return;
    nl_socket_free(nl->sock);
    free(nl);
}

int ctcmu_nl_fd(const ctcmu_nl *nl) { return nl_socket_get_fd(nl->sock); }
int ctcmu_nl_family_version(const ctcmu_nl *nl) { return nl->version; }

static int send_only(ctcmu_nl *nl, struct nl_msg *msg) {
    int rc = nl_send_auto(nl->sock, msg);
    nlmsg_free(msg);
    return rc < 0 ? rc : 0;
}

// Blocks for the ACK. Events arriving meanwhile are dropped (no callback is set); callers
// do this before scanning sysfs, which finds what those events announced.
static int send_and_wait_ack(ctcmu_nl *nl, struct nl_msg *msg) {
    int rc = nl_send_auto(nl->sock, msg);
    nlmsg_free(msg);
    if (rc < 0) return rc;
    struct nl_sock *s = nl->sock;
    int fd = nl_socket_get_fd(s);
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    rc = nl_wait_for_ack(s);
    fcntl(fd, F_SETFL, flags);
    return rc;
}

int ctcmu_nl_set_features(ctcmu_nl *nl, int reply_supported) {
    struct nl_msg *msg = nlmsg_alloc();
    if (!msg) return -NLE_NOMEM;
    if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, NLM_F_ACK, C_SET_FEATURES, nl->version)
        || nla_put_u8(msg, A_SUPP_KERN_CMD_REPLY, reply_supported ? 1 : 0) < 0) {
        nlmsg_free(msg);
        return -NLE_NOMEM;
    }
    return send_and_wait_ack(nl, msg);
}

int ctcmu_nl_reply(ctcmu_nl *nl, int done_cmd, int32_t status, uint32_t device_id) {
    struct nl_msg *msg = nlmsg_alloc();
    if (!msg) return -NLE_NOMEM;
    if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, 0, done_cmd, nl->version)
        || nla_put_s32(msg, A_CMD_STATUS, status) < 0
        || (nl->version > 1 && nla_put_u32(msg, A_DEVICE_ID, device_id) < 0)) {
        nlmsg_free(msg);
        return -NLE_NOMEM;
    }
    return send_only(nl, msg);
}

int ctcmu_nl_receive(ctcmu_nl *nl, ctcmu_nl_event_fn fn, void *context) {
    nl->fn = fn;
    nl->context = context;
    nl->delivered = 0;
    int rc = nl_recvmsgs_default(nl->sock);
    nl->fn = NULL;
    nl->context = NULL;
    if (rc < 0 && rc != -NLE_AGAIN) return rc;
    return nl->delivered;
}

const char *ctcmu_nl_strerror(int err) { return nl_geterror(err); }
