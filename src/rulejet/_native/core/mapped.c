/* mapped.c: open, map, advise, sync and unmap whole files.
 *
 * The file descriptor is closed right after mmap: the mapping keeps the
 * file alive, and no descriptor leaks if the owner forgets to close.
 * Must never be asked to unmap while a reader still points into the map;
 * the binding enforces that with its export count.
 */
#include "mapped.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

size_t rj_page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

int rj_map_open(const char *path, int flags, uint64_t size_hint, rj_map *m)
{
    memset(m, 0, sizeof *m);
    int writable = (flags & RJ_MAP_WRITE) != 0;
    /* O_NONBLOCK: a FIFO without a writer must not hang the open (it is
     * refused below); regular files ignore the flag. */
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    uint8_t probe;
    if (!S_ISREG(st.st_mode) || (st.st_size == 0 && !writable && pread(fd, &probe, 1, 0) > 0)) {
        rc = -ENODEV; /* a pipe, a device, or a /proc file whose size says 0: no map shows it */
        goto out;
    }
    uint64_t size = st.st_size < 0 ? 0 : (uint64_t)st.st_size;
    if (writable && size_hint > size) {
        if ((uint64_t)(off_t)size_hint != size_hint) {
            rc = -EFBIG;
            goto out;
        }
        /* Reserve the blocks now so stores into the map cannot hit
         * ENOSPC later as SIGBUS; fall back to ftruncate where the
         * filesystem has no fallocate. */
        int err = posix_fallocate(fd, 0, (off_t)size_hint);
        if (err == EOPNOTSUPP || err == EINVAL)
            err = ftruncate(fd, (off_t)size_hint) < 0 ? errno : 0;
        if (err) {
            rc = -err;
            goto out;
        }
        size = size_hint;
    }
    if (size > (uint64_t)SIZE_MAX || size > (uint64_t)PTRDIFF_MAX) {
        rc = -EFBIG;
        goto out;
    }
    if (size > 0) {
        int mflags = MAP_SHARED;
#ifdef MAP_POPULATE
        if (flags & RJ_MAP_POPULATE)
            mflags |= MAP_POPULATE;
#endif
        void *p = mmap(NULL, (size_t)size,
                       PROT_READ | (writable ? PROT_WRITE : 0), mflags, fd, 0);
        if (p == MAP_FAILED) {
            rc = -errno;
            goto out;
        }
        m->base = p;
    }
    m->size = (size_t)size;
    m->writable = writable;
out:
    close(fd);
    return rc;
}

int rj_map_close(rj_map *m)
{
    int rc = 0;
    if (m->base && munmap(m->base, m->size) < 0)
        rc = -errno;
    m->base = NULL;
    m->size = 0;
    return rc;
}

int rj_map_advise(const rj_map *m, int advice, size_t offset, size_t length)
{
    static const int table[] = {
        [RJ_ADV_NORMAL] = MADV_NORMAL,         [RJ_ADV_SEQUENTIAL] = MADV_SEQUENTIAL,
        [RJ_ADV_RANDOM] = MADV_RANDOM,         [RJ_ADV_WILLNEED] = MADV_WILLNEED,
        [RJ_ADV_DONTNEED] = MADV_DONTNEED,
#ifdef MADV_HUGEPAGE
        [RJ_ADV_HUGEPAGE] = MADV_HUGEPAGE,
#endif
    };
    if (advice < 0 || advice > RJ_ADV_HUGEPAGE)
        return -EINVAL;
    if (offset > m->size || (length && length > m->size - offset))
        return -EINVAL;
    if (!m->base)
        return 0;
    if (!length)
        length = m->size - offset;
    if (!length)
        return 0;
    size_t page = rj_page_size();
    size_t start = offset - offset % page;
    length += offset - start;
    if (madvise(m->base + start, length, table[advice]) < 0)
        return -errno;
    return 0;
}

int rj_map_sync(const rj_map *m)
{
    if (!m->base || !m->writable)
        return 0;
    if (msync(m->base, m->size, MS_SYNC) < 0)
        return -errno;
    return 0;
}
