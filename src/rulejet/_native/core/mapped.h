/* mapped.h: memory-mapped files, the portable core under MappedFile. */
#ifndef RJ_MAPPED_H
#define RJ_MAPPED_H

#include <stddef.h>
#include <stdint.h>

typedef struct rj_map {
    uint8_t *base; /* NULL when size == 0 (mmap cannot map 0 bytes) */
    size_t size;
    int writable;
} rj_map;

enum { RJ_MAP_POPULATE = 1, RJ_MAP_WRITE = 2 };

enum rj_advice {
    RJ_ADV_NORMAL = 0,
    RJ_ADV_SEQUENTIAL,
    RJ_ADV_RANDOM,
    RJ_ADV_WILLNEED,
    RJ_ADV_DONTNEED,
    RJ_ADV_HUGEPAGE,
};

/* Map the whole file at path. With RJ_MAP_WRITE the file is opened
 * read-write and mapped shared; if size_hint exceeds the file size the
 * file is first extended (preallocated) to size_hint. 0 or -errno.
 * Refuses directories (-EISDIR) and files larger than the address space
 * (-EFBIG). *m is zeroed first, so a failed open leaves nothing to undo. */
int rj_map_open(const char *path, int flags, uint64_t size_hint, rj_map *m);

/* Unmap; idempotent. 0 or -errno. */
int rj_map_close(rj_map *m);

/* madvise over [offset, offset + length) (length 0: to the end); the
 * range is widened to page boundaries. 0 or -errno (-EINVAL if outside). */
int rj_map_advise(const rj_map *m, int advice, size_t offset, size_t length);

/* msync(MS_SYNC) of a writable map: 0 or -errno. */
int rj_map_sync(const rj_map *m);

size_t rj_page_size(void);

#endif
