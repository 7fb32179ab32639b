/* ahead.h: fault a buffer in ahead of a sequential reader, on a helper
 * thread.
 *
 * A reader that scans a file map faster than the kernel fills it waits
 * at every page fault: for the disk when the file is not cached, for the
 * page-table fill when it is (a file just written sits in small folios:
 * a fault per 64 KiB). The helper asks for the pages ahead of the reader
 * with MADV_POPULATE_READ (Linux 5.14+; a map advised MADV_HUGEPAGE reads
 * ahead in 2 MiB folios), at most a window ahead of where the reader says
 * it is, so a file larger than memory is not read so far ahead that its
 * pages are evicted before use. It only asks: it reads no byte itself,
 * and a page it cannot fault in (a file cut short: EFAULT where a read
 * would raise SIGBUS; an older kernel: EINVAL) simply ends its work.
 * RULEJET_READAHEAD=0 turns it off.
 */
#ifndef RJ_AHEAD_H
#define RJ_AHEAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RJ_AHEAD_MIN ((size_t)16 << 20)    /* smaller buffers: no helper */
#define RJ_AHEAD_WINDOW ((size_t)64 << 20) /* how far ahead of the reader */
#define RJ_AHEAD_CHUNK ((size_t)4 << 20)   /* one madvise call */

typedef struct rj_ahead {
    const uint8_t *buf;
    size_t len, window, chunk;
    _Atomic size_t reader; /* the reader's offset, as last noted */
    atomic_int stop;
    _Atomic size_t done; /* bytes of buf asked for so far (tests, Readahead.requested) */
    pthread_t thread;
    int running;
} rj_ahead;

/* Start the helper over buf[0..len) when len >= RJ_AHEAD_MIN and it is
 * not turned off; *a is set up either way (rj_ahead_note and
 * rj_ahead_stop are then no-ops). */
void rj_ahead_start(rj_ahead *a, const uint8_t *buf, size_t len);

/* The same with a chosen window and chunk and no size floor (tests). */
void rj_ahead_start_with(rj_ahead *a, const uint8_t *buf, size_t len, size_t window,
                         size_t chunk);

/* The reader has reached offset pos. */
static inline void rj_ahead_note(rj_ahead *a, size_t pos)
{
    atomic_store_explicit(&a->reader, pos, memory_order_relaxed);
}

/* Whether this thread may run on more than one CPU: a helper then has
 * one to run on while the reader runs on another. */
int rj_ahead_spare_cpu(void);

/* Stop the helper and wait for it. Idempotent. */
void rj_ahead_stop(rj_ahead *a);

#endif
