/* arena.h: a lock-free arena allocator (bump allocation in mmap'd chunks).
 *
 * Requests are rounded to size classes in three tiers: small (16..256 B,
 * powers of two), medium (512 B..64 KiB, powers of two) and large (whole
 * pages, one mapping each). Small and medium share the current chunk: a
 * thread reserves its bytes with one CAS on the chunk's cursor, and when
 * the chunk is full, installs a fresh one with a CAS on the arena's chunk
 * pointer (the loser's chunk is kept as the next spare, never leaked).
 * Large requests get their own mapping, pushed on a lock-free list.
 * Small and medium blocks can be returned one by one (rj_arena_free) to a
 * free list per size class -- a Treiber stack whose head carries a 16-bit
 * tag beside the 48-bit pointer, so a pop that raced with pop-push-pop
 * fails its CAS instead of corrupting the list (ABA). Large blocks and
 * everything else come back all at once with rj_arena_reset (the caller
 * guarantees no allocation is in use and none is in flight).
 */
#ifndef RJ_ARENA_H
#define RJ_ARENA_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rj_chunk {
    struct rj_chunk *next;    /* older chunks, for reset and stats */
    size_t size;              /* bytes mapped, header included */
    _Atomic size_t cursor;    /* next free offset from the chunk start */
} rj_chunk;

enum { RJ_TIER_SMALL = 0, RJ_TIER_MEDIUM = 1, RJ_TIER_LARGE = 2 };

/* Size classes 16, 32, ..., 65536: one free list each. */
#define RJ_ARENA_CLASSES 13

typedef struct rj_arena {
    _Atomic(rj_chunk *) current;  /* chunk being carved; older ones via next */
    _Atomic(rj_chunk *) large;    /* dedicated mappings of the large tier */
    _Atomic(rj_chunk *) spare;    /* a chunk kept for reuse after a lost race or reset */
    size_t chunk_size;
    _Atomic uint64_t in_use;      /* bytes handed out since the last reset */
    _Atomic uint64_t high_water;
    _Atomic uint64_t chunks;      /* mappings made, over the arena's life */
    _Atomic uint64_t allocs[3];   /* per tier, since the last reset */
    _Atomic uint64_t contention;  /* CAS retries (a measure of contention) */
    _Atomic uint64_t reused;      /* allocations served from a free list */
    _Atomic uint64_t free_heads[RJ_ARENA_CLASSES]; /* tagged pointers, 0 = empty */
} rj_arena;

/* chunk_size is rounded up to whole pages (at least 64 KiB). 0 or -errno. */
int rj_arena_init(rj_arena *a, size_t chunk_size);

/* n bytes aligned to align (a power of two, at most the page size), or
 * NULL with errno set (ENOMEM, EINVAL). Safe from any number of threads.
 * *tier (if not NULL) tells which tier served it. */
void *rj_arena_alloc(rj_arena *a, size_t n, size_t align, int *tier);

/* Give back a block from rj_arena_alloc(n, align <= 16) so a later
 * request of the same class can reuse it. Large blocks (and blocks with
 * wider alignment) are kept until reset. Safe from any thread. */
void rj_arena_free(rj_arena *a, void *p, size_t n);

/* Forget every allocation: large mappings are unmapped, the newest chunk
 * is kept (rewound) for reuse, older chunks unmapped. Not thread-safe:
 * the caller must exclude allocations in flight. */
void rj_arena_reset(rj_arena *a);

/* Unmap everything. */
void rj_arena_destroy(rj_arena *a);

/* The size class of a request: the rounded size, or 0 for the large tier. */
size_t rj_arena_class(size_t n, int *tier);

#endif
