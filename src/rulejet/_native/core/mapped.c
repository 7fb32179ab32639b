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

/* A read-only map of a file of at least 2 MiB, placed on a 2 MiB boundary
 * and advised MADV_HUGEPAGE. Where the page cache holds the file in 2 MiB
 * folios (on Linux 6.x, a file read from disk; a cold read through this
 * map asks readahead for such folios), each 2 MiB then costs one page-table
 * entry instead of 512: for a 397 MB file, about 1 ms of page-table set-up
 * instead of 40 (benchmarks/bench_mapping.py). The kernel aligns large
 * file maps itself only on some versions. MAP_FAILED if the address space
 * has no room (the caller then maps anywhere); a failed madvise (no THP in
 * this kernel) is harmless. */
static void *rj_map_huge(int fd, size_t size, int mflags)
{
#if defined(MADV_HUGEPAGE) && defined(MAP_FIXED)
    const size_t huge = (size_t)2 << 20;
    size_t page = rj_page_size();
    if (size < huge || size > SIZE_MAX - 2 * huge)
        return MAP_FAILED;
    size_t span = (size + page - 1) / page * page;
    /* Reserve room for an aligned start, map the file over the reserved
     * range (MAP_FIXED replaces it atomically), give back the slack. */
    uint8_t *room = mmap(NULL, span + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (room == MAP_FAILED)
        return MAP_FAILED;
    uint8_t *at = (uint8_t *)(((uintptr_t)room + huge - 1) & ~(uintptr_t)(huge - 1));
    void *p = mmap(at, size, PROT_READ, mflags | MAP_FIXED, fd, 0);
    if (p == MAP_FAILED) {
        munmap(room, span + huge);
        return MAP_FAILED;
    }
    if (at > room)
        munmap(room, (size_t)(at - room));
    if (room + span + huge > at + span)
        munmap(at + span, (size_t)(room + span + huge - (at + span)));
    (void)madvise(p, size, MADV_HUGEPAGE);
    return p;
#else
    (void)fd, (void)size, (void)mflags;
    return MAP_FAILED;
#endif
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
        void *p = writable ? MAP_FAILED : rj_map_huge(fd, (size_t)size, mflags);
        if (p == MAP_FAILED)
            p = mmap(NULL, (size_t)size, PROT_READ | (writable ? PROT_WRITE : 0), mflags, fd, 0);
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
