/* ring.h: a lock-free ring of variable-length messages in shared memory.
 *
 * The ring lives in a file (under /dev/shm) that every process maps
 * MAP_SHARED: a 4 KiB header, then (MPMC only) one sequence word per slot,
 * then the data area. Positions only grow (64-bit, never wrap in
 * practice); a byte's place in the data area is its position modulo the
 * capacity, so a message may wrap around the end and is copied in two
 * parts.
 *
 * SPSC (one producer, one consumer): positions are bytes. A record is an
 * 8-byte header (u32 length, u32 zero) and the payload, padded to 8. The
 * producer writes records past `tail` and publishes them with one release
 * store of `tail` (a batch publishes once); the consumer reads up to
 * `tail` (acquire) and frees with one release store of `head`. Each side
 * caches the other's position and rereads it only when it seems to lack
 * room or data.
 *
 * MPMC: positions count 32-byte slots, each with a sequence word (the
 * bounded queue of D. Vyukov, with a message taking k consecutive slots).
 * seq == p: slot free for position p; seq == p + 1 on a message's first
 * slot: published. A producer checks that all k slots at `tail` are free,
 * reserves them with a CAS on `tail`, writes the header (u32 length, u32 k)
 * and payload, then publishes with a release store of the first slot's
 * seq. A consumer sees a published first slot at `head`, reads k, claims
 * the message with a CAS on `head`, copies it, and frees every slot
 * (seq = p + slots, release). A failed CAS backs off (pause, doubling).
 *
 * Waiting: a side that finds no data (or no room) spins briefly, then
 * registers as a waiter and sleeps on a futex word (an epoch); the other
 * side, after publishing, bumps the epoch and wakes only if a waiter is
 * registered (a seq_cst fence on both sides makes the check race-free).
 *
 * A message is never seen half-written: it is published only after its
 * bytes are in place. A process that dies holding an unpublished MPMC
 * reservation leaves a hole that consumers wait at (their waits time
 * out); everything published before it is delivered intact.
 */
#ifndef RJ_RING_H
#define RJ_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RJ_RING_MAGIC 0x31474e4952524a52ULL /* "RJRRING1" */
#define RJ_RING_VERSION 1u
#define RJ_RING_HEADER 4096u
#define RJ_RING_SLOT 32u
#define RJ_RING_MIN_CAPACITY 4096u
#define RJ_RING_MAX_CAPACITY (1ULL << 40)

enum { RJ_RING_SPSC = 1, RJ_RING_MPMC = 2 };

typedef struct rj_ring_shared {
    /* Written once by the creator; `magic` last, after a release fence. */
    uint64_t magic;
    uint32_t version, mode;
    uint64_t capacity; /* data bytes, a power of two */
    uint64_t slots;    /* MPMC: capacity / RJ_RING_SLOT; 0 for SPSC */
    uint64_t seq_off, data_off, total;
    uint64_t check; /* hash of the fields above */
    /* Separate cache-line pairs: producers, consumers, and the two wait
     * channels never share a line (128 B: adjacent-line prefetch). */
    _Alignas(128) _Atomic uint64_t tail;
    _Alignas(128) _Atomic uint64_t head;
    _Alignas(128) _Atomic uint32_t data_epoch; /* futex: consumers sleep here */
    _Atomic uint32_t data_waiters;
    _Alignas(128) _Atomic uint32_t space_epoch; /* futex: producers sleep here */
    _Atomic uint32_t space_waiters;
} rj_ring_shared;

/* One process's handle. SPSC keeps its unpublished write position and
 * unfreed read position here; one producer and one consumer in all. */
typedef struct rj_ring {
    rj_ring_shared *sh;
    _Atomic uint64_t *seq; /* MPMC */
    uint8_t *data;
    uint64_t capacity, mask, slots;
    size_t map_len;
    uint64_t wpos, cached_head; /* SPSC producer */
    uint64_t rpos, cached_tail; /* SPSC consumer */
    int mode;
    int wrote, took;     /* SPSC: this side moved wpos / rpos (only then publish them) */
    uint64_t contention; /* failed CASes in this process */
    _Atomic int cancelled; /* rj_ring_cancel_waits: waits end with -ECANCELED */
} rj_ring;

/* A message claimed by rj_ring_peek: its payload is p1[0..n1) then
 * p2[0..n2) (n2 > 0 only when it wraps). Valid until rj_ring_done. */
typedef struct rj_ring_msg {
    const uint8_t *p1, *p2;
    size_t n1, n2;
    uint64_t pos, next; /* position; the position after it */
} rj_ring_msg;

/* Create a ring file (must not exist) of at least `capacity` data bytes
 * (rounded up to a power of two) and map it. 0 or -errno. */
int rj_ring_create(rj_ring *r, const char *path, uint64_t capacity, int mode);
/* Map an existing ring file after checking its header; on a bad header
 * returns -EINVAL and sets *why. */
int rj_ring_attach(rj_ring *r, const char *path, const char **why);
/* Check a header against the mapped size: NULL if sound, else why not. */
const char *rj_ring_check(const rj_ring_shared *sh, size_t size);
void rj_ring_close(rj_ring *r);

/* Largest payload a ring can take. */
uint64_t rj_ring_max_message(const rj_ring *r);

/* Write one message: 0, -EAGAIN (no room now) or -EMSGSIZE (never fits).
 * SPSC: not visible to the consumer until rj_ring_commit_writes. */
int rj_ring_write(rj_ring *r, const void *data, size_t len);
/* Publish SPSC writes; wake sleeping consumers (both modes). */
void rj_ring_commit_writes(rj_ring *r);

/* Claim the next message: 0 or -EAGAIN (none published yet). */
int rj_ring_peek(rj_ring *r, rj_ring_msg *m);
/* Finished with a claimed message (its slots may be reused). SPSC: the
 * room is given back at rj_ring_commit_reads. */
void rj_ring_done(rj_ring *r, const rj_ring_msg *m);
/* Free SPSC reads; wake sleeping producers (both modes). */
void rj_ring_commit_reads(rj_ring *r);

/* Sleep until data (or room for a `len`-byte message) may be there, at
 * most timeout_ns (< 0: no limit): 0, -ETIMEDOUT, or -ECANCELED. Spins briefly first.
 * Call with nothing uncommitted (the other side may be waiting for it). */
int rj_ring_wait_data(rj_ring *r, int64_t timeout_ns);
int rj_ring_wait_space(rj_ring *r, size_t len, int64_t timeout_ns);

/* From another thread: end this handle's waits, now and later, with
 * -ECANCELED (before closing it under them). Other processes' sleepers
 * wake too, find nothing new, and sleep again. */
void rj_ring_cancel_waits(rj_ring *r);

#endif
