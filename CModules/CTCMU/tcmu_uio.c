// uio device, mapping and kick syscalls (reference/tcmu.md 1.6, 1.7).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "CTCMU.h"

int ctcmu_uio_map_size(const char *uio, uint64_t *size) {
    char path[256];
    snprintf(path, sizeof path, "/sys/class/uio/%s/maps/map0/size", uio);
    FILE *f = fopen(path, "re");
    if (!f) return -errno;
    unsigned long long v = 0;
    int n = fscanf(f, "%llx", &v); // uio prints the size as 0x…
    fclose(f);
    if (n != 1) return -EINVAL;
    *size = v;
    return 0;
}

int ctcmu_uio_open(const char *uio) {
    char path[256];
    snprintf(path, sizeof path, "/dev/%s", uio);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

void *ctcmu_map(int fd, uint64_t size, int *err) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { *err = errno; return NULL; }
    *err = 0;
    return p;
}

int ctcmu_unmap(void *base, uint64_t size) { return munmap(base, size) ? -errno : 0; }

int ctcmu_wait(int fd, int stop_fd, int timeout_ms) {
    struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };
    for (;;) {
        int n = poll(p, stop_fd >= 0 ? 2 : 1, timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return 0;
        int r = 0;
        if (p[0].revents & (POLLIN | POLLERR | POLLHUP)) r |= 1;
        if (stop_fd >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP))) r |= 2;
        return r;
    }
}

int ctcmu_uio_ack(int fd) {
    uint32_t v;
    for (;;) {
        ssize_t n = read(fd, &v, sizeof v);
        if (n == sizeof v) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        return n == 0 ? -EPIPE : -EIO;
    }
}

int ctcmu_uio_kick(int fd) {
    uint32_t v = 0;
    for (;;) {
        ssize_t n = write(fd, &v, sizeof v);
        if (n == sizeof v) return 0;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -errno : -EIO;
    }
}

int ctcmu_memfd(const char *name, uint64_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)size) != 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int ctcmu_socketpair(int fds[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return -errno;
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
    fcntl(fds[1], F_SETFL, O_NONBLOCK);
    return 0;
}

int ctcmu_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? -errno : fd;
}

int ctcmu_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == sizeof one ? 0 : -errno;
}

int ctcmu_close(int fd) { return close(fd) ? -errno : 0; }

uint64_t ctcmu_monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
