/* probe.c: feature probes that only a real system call can answer.
 * Leaves nothing behind: the probe file is unlinked while still open and
 * the io_uring descriptor is closed. */
#include "probe.h"
#include "mapped.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int rj_probe_odirect(const char *dir)
{
#ifdef O_DIRECT
    int fd = open(dir, O_TMPFILE | O_RDWR | O_DIRECT, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == ENOENT)) {
        /* No O_TMPFILE here: fall back to a named, unlinked file. */
        size_t n = strlen(dir);
        char *tmpl = malloc(n + 32);
        if (!tmpl)
            return -ENOMEM;
        memcpy(tmpl, dir, n);
        strcpy(tmpl + n, "/.rulejet-probe-XXXXXX");
        int t = mkstemp(tmpl);
        if (t < 0) {
            int e = errno;
            free(tmpl);
            return -e;
        }
        close(t);
        fd = open(tmpl, O_RDWR | O_DIRECT);
        int e = errno;
        unlink(tmpl);
        free(tmpl);
        errno = e;
    }
    if (fd < 0)
        return errno == EINVAL ? 0 : -errno;
    size_t block = rj_page_size();
    void *buf = NULL;
    if (posix_memalign(&buf, block, block) != 0) {
        close(fd);
        return -ENOMEM;
    }
    memset(buf, 0, block);
    ssize_t w = write(fd, buf, block);
    int e = errno;
    free(buf);
    close(fd);
    if (w == (ssize_t)block)
        return 1;
    return (w < 0 && e == EINVAL) ? 0 : -(w < 0 ? e : EIO);
#else
    (void)dir;
    return 0;
#endif
}

int rj_probe_io_uring(void)
{
#ifdef __NR_io_uring_setup
    unsigned char params[120]; /* struct io_uring_params, zeroed */
    memset(params, 0, sizeof params);
    long fd = syscall(__NR_io_uring_setup, 4, params);
    if (fd >= 0) {
        close((int)fd);
        return 1;
    }
    if (errno == ENOSYS || errno == EPERM)
        return 0;
    return -errno;
#else
    return 0;
#endif
}
