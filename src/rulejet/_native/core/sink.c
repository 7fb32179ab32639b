/* sink.c: vectored writes of matched lines. A line and its newline are
 * two iovecs pointing at the input (the newline at a shared constant), so
 * routing never copies event bytes. */
#include "sink.h"

#include <errno.h>
#include <limits.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#define BATCH (IOV_MAX / 2 * 2)

static const char newline = '\n';

int rj_write_lines(int fd, const uint8_t *base, const uint64_t *spans, size_t n)
{
    struct iovec iov[BATCH];
    size_t next = 0;
    while (next < n) {
        int cnt = 0;
        for (; next < n && cnt + 2 <= BATCH; next++) {
            iov[cnt].iov_base = (void *)(base + spans[2 * next]);
            iov[cnt++].iov_len = (size_t)spans[2 * next + 1];
            iov[cnt].iov_base = (void *)&newline;
            iov[cnt++].iov_len = 1;
        }
        struct iovec *v = iov;
        while (cnt > 0) {
            ssize_t w = writev(fd, v, cnt);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return -errno;
            }
            /* Short write: drop the finished vectors, trim the partial one. */
            while (cnt > 0 && (size_t)w >= v->iov_len) {
                w -= (ssize_t)v->iov_len;
                v++;
                cnt--;
            }
            if (cnt > 0) {
                v->iov_base = (char *)v->iov_base + w;
                v->iov_len -= (size_t)w;
            }
        }
    }
    return 0;
}
