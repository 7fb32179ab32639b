/* arena.c: see arena.h. Memory ordering: a chunk's header is written
 * before the chunk is published with a release CAS on `current`; readers
 * load `current` with acquire, so they see an initialized header (pairs
 * with the CAS in install_chunk). Cursor updates are relaxed CAS: the
 * bytes they reserve are the caller's alone, and the chunk itself was
 * published by the acquire/release pair above. */
#include "arena.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "spin.h"

#define HEADER ((sizeof(rj_chunk) + 63) & ~(size_t)63)
#define SMALL_MAX 256
#define MEDIUM_MAX 65536

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

/* Back off exponentially (capped) after a failed CAS, so contending
 * threads stop hammering the same cache line. */
static void backoff(rj_arena *a, unsigned *spins)
{
    atomic_fetch_add_explicit(&a->contention, 1, memory_order_relaxed);
    for (unsigned i = 0; i < *spins; i++)
        RJ_PAUSE();
    if (*spins < 1024)
        *spins *= 2;
}

size_t rj_arena_class(size_t n, int *tier)
{
    if (n > MEDIUM_MAX) {
        *tier = RJ_TIER_LARGE;
        return 0;
    }
    size_t c = 16;
    while (c < n)
        c *= 2;
    *tier = c <= SMALL_MAX ? RJ_TIER_SMALL : RJ_TIER_MEDIUM;
    return c;
}

static rj_chunk *map_chunk(rj_arena *a, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    rj_chunk *c = p;
    c->next = NULL;
    c->size = size;
    atomic_init(&c->cursor, HEADER);
    atomic_fetch_add_explicit(&a->chunks, 1, memory_order_relaxed);
    return c;
}

int rj_arena_init(rj_arena *a, size_t chunk_size)
{
    memset(a, 0, sizeof *a);
    size_t page = page_size();
    if (chunk_size < 65536)
        chunk_size = 65536;
    if (chunk_size > ((size_t)1 << 40))
        return -EINVAL;
    a->chunk_size = (chunk_size + page - 1) / page * page;
    rj_chunk *c = map_chunk(a, a->chunk_size);
    if (!c)
        return -ENOMEM;
    /* Release: the header above is visible to whoever acquires current. */
    atomic_store_explicit(&a->current, c, memory_order_release);
    return 0;
}

/* Free lists: head = pointer (low 48 bits) | tag (high 16 bits). x86-64
 * and AArch64 user addresses fit in 48 bits; the tag changes on every
 * successful push and pop. A freed block's first 8 bytes hold the next
 * pointer; reading them from a block another thread has just popped is
 * harmless (arena memory stays mapped until reset) and the CAS then fails. */
#define PTR_MASK ((UINT64_C(1) << 48) - 1)

static int class_index(size_t cls)
{
    int i = 0;
    for (size_t c = 16; c < cls; c *= 2)
        i++;
    return i;
}

static void *pop_free(rj_arena *a, int ci)
{
    _Atomic uint64_t *head = &a->free_heads[ci];
    /* Acquire pairs with the release CAS in rj_arena_free: the next
     * pointer written before the push is visible here. */
    uint64_t h = atomic_load_explicit(head, memory_order_acquire);
    unsigned spins = 1;
    while (h & PTR_MASK) {
        uint8_t *blk = (uint8_t *)(uintptr_t)(h & PTR_MASK);
        /* May race with the writes of a thread that popped blk first; the
         * value is then stale and the CAS below fails on the tag. */
        uint64_t next = __atomic_load_n((uint64_t *)(void *)blk, __ATOMIC_RELAXED);
        uint64_t nh = (next & PTR_MASK) | ((h + (UINT64_C(1) << 48)) & ~PTR_MASK);
        if (atomic_compare_exchange_weak_explicit(head, &h, nh, memory_order_acquire,
                                                  memory_order_acquire))
            return blk;
        backoff(a, &spins);
    }
    return NULL;
}

void rj_arena_free(rj_arena *a, void *p, size_t n)
{
    int tier;
    size_t cls = rj_arena_class(n ? n : 1, &tier);
    if (!p || tier == RJ_TIER_LARGE || ((uintptr_t)p & 15))
        return;
    _Atomic uint64_t *head = &a->free_heads[class_index(cls)];
    uint64_t h = atomic_load_explicit(head, memory_order_relaxed);
    unsigned spins = 1;
    for (;;) {
        __atomic_store_n((uint64_t *)p, h & PTR_MASK, __ATOMIC_RELAXED);
        uint64_t nh = ((uint64_t)(uintptr_t)p & PTR_MASK) |
                      ((h + (UINT64_C(1) << 48)) & ~PTR_MASK);
        /* Release pairs with the acquire load in pop_free. */
        if (atomic_compare_exchange_weak_explicit(head, &h, nh, memory_order_release,
                                                  memory_order_relaxed))
            break;
        backoff(a, &spins);
    }
    atomic_fetch_sub_explicit(&a->in_use, cls, memory_order_relaxed);
}

static void note_use(rj_arena *a, size_t n, int tier)
{
    uint64_t now = atomic_fetch_add_explicit(&a->in_use, n, memory_order_relaxed) + n;
    uint64_t hw = atomic_load_explicit(&a->high_water, memory_order_relaxed);
    while (now > hw && !atomic_compare_exchange_weak_explicit(&a->high_water, &hw, now,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed))
        ;
    atomic_fetch_add_explicit(&a->allocs[tier], 1, memory_order_relaxed);
}

/* Replace `full` as the current chunk (unless another thread already did). */
static int install_chunk(rj_arena *a, rj_chunk *full)
{
    rj_chunk *fresh = atomic_exchange_explicit(&a->spare, NULL, memory_order_acquire);
    if (fresh)
        atomic_store_explicit(&fresh->cursor, HEADER, memory_order_relaxed);
    else if (!(fresh = map_chunk(a, a->chunk_size)))
        return -ENOMEM;
    fresh->next = full;
    rj_chunk *expected = full;
    /* Release pairs with the acquire load of current in rj_arena_alloc. */
    if (!atomic_compare_exchange_strong_explicit(&a->current, &expected, fresh,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        /* Lost the race: keep ours as the spare (or unmap it if one exists). */
        fresh->next = NULL;
        rj_chunk *none = NULL;
        if (!atomic_compare_exchange_strong_explicit(&a->spare, &none, fresh,
                                                     memory_order_release, memory_order_relaxed))
            munmap(fresh, fresh->size);
    }
    return 0;
}

static void *alloc_large(rj_arena *a, size_t n)
{
    size_t page = page_size();
    if (n > SIZE_MAX - HEADER - page)
        return NULL;
    size_t size = (HEADER + n + page - 1) / page * page;
    rj_chunk *c = map_chunk(a, size);
    if (!c)
        return NULL;
    /* Push on the large list: a Treiber-stack push (no pops until reset,
     * so no ABA). Release publishes c's header to reset. */
    rj_chunk *head = atomic_load_explicit(&a->large, memory_order_relaxed);
    unsigned spins = 1;
    do {
        c->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&a->large, &head, c, memory_order_release,
                                                    memory_order_relaxed) &&
             (backoff(a, &spins), 1));
    note_use(a, n, RJ_TIER_LARGE);
    return (uint8_t *)c + HEADER;
}

void *rj_arena_alloc(rj_arena *a, size_t n, size_t align, int *tier_out)
{
    int tier;
    size_t page = page_size();
    if (n > SIZE_MAX / 4) {
        errno = ENOMEM;
        return NULL;
    }
    if (!align || (align & (align - 1)) || align > page) {
        errno = EINVAL;
        return NULL;
    }
    size_t cls = rj_arena_class(n ? n : 1, &tier);
    if (tier_out)
        *tier_out = tier;
    if (tier == RJ_TIER_LARGE || HEADER + cls + align > a->chunk_size) {
        /* Data in a large mapping starts HEADER (64) bytes in: for wider
         * alignment, over-allocate and round the pointer up. */
        size_t extra = align > 64 ? align : 0;
        uint8_t *p = alloc_large(a, n + extra);
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
        if (tier_out)
            *tier_out = RJ_TIER_LARGE;
        return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
    }
    if (align <= 16) {
        void *reuse = pop_free(a, class_index(cls));
        if (reuse) {
            atomic_fetch_add_explicit(&a->reused, 1, memory_order_relaxed);
            note_use(a, cls, tier);
            return reuse;
        }
    }
    unsigned spins = 1;
    for (;;) {
        /* Acquire pairs with the release CAS in install_chunk/init. */
        rj_chunk *c = atomic_load_explicit(&a->current, memory_order_acquire);
        size_t cur = atomic_load_explicit(&c->cursor, memory_order_relaxed);
        for (;;) {
            uintptr_t start = ((uintptr_t)c + cur + align - 1) & ~(uintptr_t)(align - 1);
            size_t off = (size_t)(start - (uintptr_t)c), end = off + cls;
            if (end > c->size)
                break; /* full: install a new chunk and retry */
            if (atomic_compare_exchange_weak_explicit(&c->cursor, &cur, end,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                note_use(a, cls, tier);
                return (void *)start;
            }
            backoff(a, &spins); /* cur was reloaded by the failed CAS */
        }
        if (install_chunk(a, c) < 0) {
            errno = ENOMEM;
            return NULL;
        }
    }
}

static void unmap_list(rj_chunk *c)
{
    while (c) {
        rj_chunk *next = c->next;
        munmap(c, c->size);
        c = next;
    }
}

void rj_arena_reset(rj_arena *a)
{
    rj_chunk *cur = atomic_load_explicit(&a->current, memory_order_acquire);
    unmap_list(cur->next);
    cur->next = NULL;
    atomic_store_explicit(&cur->cursor, HEADER, memory_order_relaxed);
    unmap_list(atomic_exchange_explicit(&a->large, NULL, memory_order_acquire));
    atomic_store_explicit(&a->in_use, 0, memory_order_relaxed);
    for (int t = 0; t < 3; t++)
        atomic_store_explicit(&a->allocs[t], 0, memory_order_relaxed);
    for (int c = 0; c < RJ_ARENA_CLASSES; c++)
        atomic_store_explicit(&a->free_heads[c], 0, memory_order_relaxed);
}

void rj_arena_destroy(rj_arena *a)
{
    rj_chunk *cur = atomic_exchange_explicit(&a->current, NULL, memory_order_acquire);
    unmap_list(cur);
    unmap_list(atomic_exchange_explicit(&a->large, NULL, memory_order_acquire));
    unmap_list(atomic_exchange_explicit(&a->spare, NULL, memory_order_acquire));
}
