/* uring.c: see uring.h. Ring memory is shared with the kernel: the tail we
 * publish is stored with release order after the entries are written,
 * and the kernel's completion tail is loaded with acquire order. */
#include "uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ENTRIES 4

int rj_uring_init(rj_uring *u)
{
    memset(u, 0, sizeof *u);
    u->fd = -1;
#if defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter)
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long fd = syscall(__NR_io_uring_setup, ENTRIES, &p);
    if (fd < 0)
        return -errno;
    u->fd = (int)fd;
    u->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    u->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (u->cq_len > u->sq_len)
            u->sq_len = u->cq_len;
        u->cq_len = u->sq_len;
    }
    u->sq_ptr = mmap(NULL, u->sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                     IORING_OFF_SQ_RING);
    if (u->sq_ptr == MAP_FAILED)
        goto fail;
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        u->cq_ptr = u->sq_ptr;
    } else {
        u->cq_ptr = mmap(NULL, u->cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                         u->fd, IORING_OFF_CQ_RING);
        if (u->cq_ptr == MAP_FAILED)
            goto fail;
    }
    u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
    u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                   IORING_OFF_SQES);
    if (u->sqes == MAP_FAILED)
        goto fail;
    char *sq = u->sq_ptr, *cq = u->cq_ptr;
    u->sq_head = (unsigned *)(sq + p.sq_off.head);
    u->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    u->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    u->sq_array = (unsigned *)(sq + p.sq_off.array);
    u->cq_head = (unsigned *)(cq + p.cq_off.head);
    u->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    u->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    u->cqes = cq + p.cq_off.cqes;
    return 0;
fail:;
    int e = errno;
    rj_uring_close(u);
    return -e;
#else
    return -ENOSYS;
#endif
}

void rj_uring_close(rj_uring *u)
{
    if (u->sqes && u->sqes != MAP_FAILED)
        munmap(u->sqes, u->sqes_len);
    if (u->cq_ptr && u->cq_ptr != MAP_FAILED && u->cq_ptr != u->sq_ptr)
        munmap(u->cq_ptr, u->cq_len);
    if (u->sq_ptr && u->sq_ptr != MAP_FAILED)
        munmap(u->sq_ptr, u->sq_len);
    if (u->fd >= 0)
        close(u->fd);
    memset(u, 0, sizeof *u);
    u->fd = -1;
}

static void queue(rj_uring *u, const struct io_uring_sqe *e)
{
    unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask;
    memcpy((struct io_uring_sqe *)u->sqes + idx, e, sizeof *e);
    u->sq_array[idx] = idx;
    __atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
}

int rj_uring_write_sync(rj_uring *u, int fd, const void *buf, size_t len, uint64_t off, int sync)
{
#if defined(__NR_io_uring_enter)
    struct io_uring_sqe w, s;
    memset(&w, 0, sizeof w);
    w.opcode = IORING_OP_WRITE;
    w.fd = fd;
    w.addr = (uint64_t)(uintptr_t)buf;
    w.len = (uint32_t)len;
    w.off = off;
    w.user_data = 1;
    if (sync)
        w.flags = IOSQE_IO_LINK; /* the sync starts only after the write succeeded */
    queue(u, &w);
    if (sync) {
        memset(&s, 0, sizeof s);
        s.opcode = IORING_OP_FSYNC;
        s.fd = fd;
        s.fsync_flags = IORING_FSYNC_DATASYNC;
        s.user_data = 2;
        queue(u, &s);
    }
    unsigned want = sync ? 2 : 1;
    long r;
    do
        r = syscall(__NR_io_uring_enter, u->fd, want, want, IORING_ENTER_GETEVENTS, NULL, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    int rc = 0;
    long written = -1;
    for (unsigned got = 0; got < want;) {
        unsigned head = *u->cq_head;
        unsigned tail = __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE);
        if (head == tail) {
            do
                r = syscall(__NR_io_uring_enter, u->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);
            while (r < 0 && errno == EINTR);
            if (r < 0)
                return -errno;
            continue;
        }
        const struct io_uring_cqe *c = (const struct io_uring_cqe *)u->cqes + (head & *u->cq_mask);
        if (c->user_data == 1)
            written = c->res;
        else if (c->res < 0 && !rc && c->res != -ECANCELED)
            rc = c->res;
        __atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
        got++;
    }
    if (written < 0)
        return (int)written;
    if ((size_t)written < len) {
        /* A short write cancelled the linked sync: finish both by hand. */
        size_t done = (size_t)written;
        while (done < len) {
            ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
            if (n < 0 && errno != EINTR)
                return -errno;
            if (n > 0)
                done += (size_t)n;
        }
        return sync && fdatasync(fd) < 0 ? -errno : 0;
    }
    return rc;
#else
    (void)u; (void)fd; (void)buf; (void)len; (void)off; (void)sync;
    return -ENOSYS;
#endif
}
