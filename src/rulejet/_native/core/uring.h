/* uring.h: just enough io_uring for the log's write + fdatasync, through
 * raw system calls (no liburing): a linked pair of submissions, the write
 * then the sync, sent and reaped with one io_uring_enter. */
#ifndef RJ_URING_H
#define RJ_URING_H

#include <stddef.h>
#include <stdint.h>

typedef struct rj_uring {
    int fd;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    unsigned *cq_head, *cq_tail, *cq_mask;
    void *sqes, *cqes;
    void *sq_ptr, *cq_ptr;
    size_t sq_len, cq_len, sqes_len;
} rj_uring;

/* 0, or -errno (ENOSYS, EPERM where the kernel or a sandbox refuses). */
int rj_uring_init(rj_uring *u);
/* Write len bytes at off, then (if sync) fdatasync, as one submission:
 * 0 or -errno. Short writes are finished with pwrite. */
int rj_uring_write_sync(rj_uring *u, int fd, const void *buf, size_t len, uint64_t off, int sync);
void rj_uring_close(rj_uring *u);

#endif
