/* ring.c: see ring.h. */
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "spin.h"

#define SPINS 2000 /* pause loops before sleeping (about 10-50 µs) */

static uint64_t round8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static uint64_t header_hash(const rj_ring_shared *sh)
{
    /* FNV-1a over the fixed fields: catches a torn or scribbled header. */
    const uint64_t f[] = {sh->magic, sh->version, sh->mode, sh->capacity,
                          sh->slots, sh->seq_off, sh->data_off, sh->total};
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        for (int b = 0; b < 64; b += 8)
            h = (h ^ ((f[i] >> b) & 0xff)) * 0x100000001b3ULL;
    return h;
}

static uint64_t layout(uint64_t capacity, int mode, uint64_t *seq_off, uint64_t *data_off)
{
    uint64_t slots = mode == RJ_RING_MPMC ? capacity / RJ_RING_SLOT : 0;
    *seq_off = RJ_RING_HEADER;
    *data_off = RJ_RING_HEADER + ((slots * 8 + 4095) & ~(uint64_t)4095);
    return *data_off + capacity;
}

const char *rj_ring_check(const rj_ring_shared *sh, size_t size)
{
    if (size < RJ_RING_HEADER)
        return "file too small to be a ring";
    if (sh->magic != RJ_RING_MAGIC)
        return "not a rulejet ring (bad magic), or not fully created";
    if (sh->version != RJ_RING_VERSION)
        return "ring format version mismatch";
    if (sh->check != header_hash(sh))
        return "ring header is corrupted (checksum mismatch)";
    if (sh->mode != RJ_RING_SPSC && sh->mode != RJ_RING_MPMC)
        return "unknown ring mode";
    uint64_t c = sh->capacity;
    if (c < RJ_RING_MIN_CAPACITY || c > RJ_RING_MAX_CAPACITY || (c & (c - 1)))
        return "bad ring capacity";
    uint64_t seq_off, data_off, total = layout(c, (int)sh->mode, &seq_off, &data_off);
    if (sh->slots != (sh->mode == RJ_RING_MPMC ? c / RJ_RING_SLOT : 0) ||
        sh->seq_off != seq_off || sh->data_off != data_off || sh->total != total)
        return "ring layout does not match its capacity";
    if (total != size)
        return "ring file size does not match its header";
    return NULL;
}

static void bind(rj_ring *r, void *map, size_t len)
{
    rj_ring_shared *sh = map;
    memset(r, 0, sizeof *r);
    r->sh = sh;
    r->map_len = len;
    r->mode = (int)sh->mode;
    r->capacity = sh->capacity;
    r->mask = sh->capacity - 1;
    r->slots = sh->slots;
    r->seq = (_Atomic uint64_t *)((uint8_t *)map + sh->seq_off);
    r->data = (uint8_t *)map + sh->data_off;
    r->wpos = atomic_load_explicit(&sh->tail, memory_order_acquire);
    r->cached_head = atomic_load_explicit(&sh->head, memory_order_acquire);
    r->rpos = r->cached_head;
    r->cached_tail = r->wpos;
}

int rj_ring_create(rj_ring *r, const char *path, uint64_t capacity, int mode)
{
    if (mode != RJ_RING_SPSC && mode != RJ_RING_MPMC)
        return -EINVAL;
    if (capacity > RJ_RING_MAX_CAPACITY)
        return -EINVAL;
    uint64_t c = RJ_RING_MIN_CAPACITY;
    while (c < capacity)
        c <<= 1;
    uint64_t seq_off, data_off, total = layout(c, mode, &seq_off, &data_off);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)total) < 0) {
        int e = errno;
        close(fd);
        unlink(path);
        return -e;
    }
    /* Reserve the pages now: on a full tmpfs a store into a sparse page
     * is SIGBUS; here it is ENOSPC (a file system without fallocate keeps
     * the sparse file). */
    int fe = posix_fallocate(fd, 0, (off_t)total);
    if (fe && fe != EOPNOTSUPP && fe != EINVAL) {
        close(fd);
        unlink(path);
        return -fe;
    }
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        unlink(path);
        return -e;
    }
    rj_ring_shared *sh = map; /* a fresh file reads as zeros */
    sh->version = RJ_RING_VERSION;
    sh->mode = (uint32_t)mode;
    sh->capacity = c;
    sh->slots = mode == RJ_RING_MPMC ? c / RJ_RING_SLOT : 0;
    sh->seq_off = seq_off;
    sh->data_off = data_off;
    sh->total = total;
    _Atomic uint64_t *seq = (_Atomic uint64_t *)((uint8_t *)map + seq_off);
    for (uint64_t i = 0; i < sh->slots; i++)
        atomic_store_explicit(&seq[i], i, memory_order_relaxed);
    sh->magic = RJ_RING_MAGIC;
    sh->check = header_hash(sh);
    /* Everything above is visible before the magic that says "ready". */
    atomic_thread_fence(memory_order_release);
    __atomic_store_n(&sh->magic, RJ_RING_MAGIC, __ATOMIC_RELEASE);
    bind(r, map, total);
    return 0;
}

int rj_ring_attach(rj_ring *r, const char *path, const char **why)
{
    *why = NULL;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < (off_t)RJ_RING_HEADER) {
        close(fd);
        *why = S_ISREG(st.st_mode) ? "file too small to be a ring" : "not a regular file";
        return -EINVAL;
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return -e;
    rj_ring_shared *sh = map;
    (void)__atomic_load_n(&sh->magic, __ATOMIC_ACQUIRE);
    *why = rj_ring_check(sh, len);
    if (!*why && sh->mode == RJ_RING_SPSC) {
        /* The positions are not in the checksum (they move): a damaged
         * pair would send a write or a read past the mapping. */
        uint64_t head = atomic_load_explicit(&sh->head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
        if ((head | tail) % 8 || tail - head > sh->capacity)
            *why = "damaged positions (head and tail)";
    }
    if (*why) {
        munmap(map, len);
        return -EINVAL;
    }
    bind(r, map, len);
    return 0;
}

void rj_ring_close(rj_ring *r)
{
    if (r->sh)
        munmap(r->sh, r->map_len);
    r->sh = NULL;
}

uint64_t rj_ring_max_message(const rj_ring *r)
{
    if (r->mode == RJ_RING_SPSC)
        return r->capacity - 8;
    return r->capacity - 8 < UINT32_MAX ? r->capacity - 8 : UINT32_MAX;
}

static long futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    /* Not FUTEX_PRIVATE_FLAG: the word is shared between processes. */
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

static void wake(_Atomic uint32_t *epoch, _Atomic uint32_t *waiters)
{
    /* Pairs with the waiter's seq_cst increment of `waiters` before it
     * rechecks: either it sees our publication or we see it waiting. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(waiters, memory_order_relaxed)) {
        atomic_fetch_add_explicit(epoch, 1, memory_order_seq_cst);
        futex(epoch, FUTEX_WAKE, INT_MAX, NULL);
    }
}

/* Copy len bytes to/from the data area at byte offset `at` (mod capacity). */
static void put_bytes(rj_ring *r, uint64_t at, const void *src, size_t len)
{
    size_t off = (size_t)(at & r->mask), first = (size_t)r->capacity - off;
    if (len <= first) {
        memcpy(r->data + off, src, len);
    } else {
        memcpy(r->data + off, src, first);
        memcpy(r->data, (const uint8_t *)src + first, len - first);
    }
}

static void view_bytes(const rj_ring *r, uint64_t at, size_t len, rj_ring_msg *m)
{
    size_t off = (size_t)(at & r->mask), first = (size_t)r->capacity - off;
    m->p1 = r->data + off;
    m->n1 = len <= first ? len : first;
    m->p2 = r->data;
    m->n2 = len - m->n1;
}

static void backoff(rj_ring *r, unsigned *spins)
{
    r->contention++;
    for (unsigned i = 0; i < *spins; i++)
        RJ_PAUSE();
    if (*spins < 1024)
        *spins *= 2;
}

/* ---- SPSC ---- */

static int spsc_write(rj_ring *r, const void *data, size_t len)
{
    uint64_t need = 8 + round8(len);
    if (need > r->capacity)
        return -EMSGSIZE;
    if (r->wpos + need - r->cached_head > r->capacity) {
        r->cached_head = atomic_load_explicit(&r->sh->head, memory_order_acquire);
        if (r->wpos + need - r->cached_head > r->capacity)
            return -EAGAIN;
    }
    uint64_t hdr = (uint64_t)len;
    memcpy(r->data + (r->wpos & r->mask), &hdr, 8); /* 8-aligned: never wraps */
    put_bytes(r, r->wpos + 8, data, len);
    r->wpos += need;
    return 0;
}

static int spsc_peek(rj_ring *r, rj_ring_msg *m)
{
    if (r->rpos == r->cached_tail) {
        r->cached_tail = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
        if (r->rpos == r->cached_tail)
            return -EAGAIN;
    }
    uint64_t hdr;
    memcpy(&hdr, r->data + (r->rpos & r->mask), 8);
    size_t len = (size_t)(uint32_t)hdr;
    /* A length past what was published (a damaged file) must not send
     * the copy beyond the mapping. */
    if (r->cached_tail - r->rpos > r->capacity || 8 + round8(len) > r->cached_tail - r->rpos)
        return -EBADMSG;
    view_bytes(r, r->rpos + 8, len, m);
    m->pos = r->rpos;
    m->next = r->rpos + 8 + round8(len);
    return 0;
}

/* ---- MPMC ---- */

static uint64_t slots_for(size_t len) { return (8 + len + RJ_RING_SLOT - 1) / RJ_RING_SLOT; }

static uint64_t *slot_word(const rj_ring *r, uint64_t pos)
{
    return (uint64_t *)(r->data + ((pos * RJ_RING_SLOT) & r->mask));
}

static int mpmc_write(rj_ring *r, const void *data, size_t len)
{
    if (len > rj_ring_max_message(r))
        return -EMSGSIZE;
    uint64_t k = slots_for(len), smask = r->slots - 1;
    if (k > r->slots)
        return -EMSGSIZE;
    rj_ring_shared *sh = r->sh;
    uint64_t pos = atomic_load_explicit(&sh->tail, memory_order_relaxed);
    unsigned spins = 1;
    for (;;) {
        int64_t diff = 0;
        for (uint64_t j = 0; j < k && diff == 0; j++) {
            uint64_t s = atomic_load_explicit(&r->seq[(pos + j) & smask], memory_order_acquire);
            diff = (int64_t)(s - (pos + j));
        }
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&sh->tail, &pos, pos + k,
                                                      memory_order_relaxed, memory_order_relaxed))
                break;
            backoff(r, &spins); /* pos now holds the current tail */
        } else if (diff < 0) {
            /* A slot still holds an unconsumed message: full, unless our
             * view of the tail is stale. */
            uint64_t now = atomic_load_explicit(&sh->tail, memory_order_relaxed);
            if (now == pos)
                return -EAGAIN;
            pos = now;
        } else {
            /* Claimed by a producer ahead of us: the tail has moved. If it
             * has not, the seq words are damaged (a sound ring cannot show
             * a later lap's seq before the tail passed it): stop spinning. */
            uint64_t now = atomic_load_explicit(&sh->tail, memory_order_relaxed);
            if (now == pos)
                return -EBADMSG;
            pos = now;
        }
    }
    /* Slots [pos, pos + k) are ours. Header, then payload, then publish. */
    __atomic_store_n(slot_word(r, pos), (uint64_t)len | k << 32, __ATOMIC_RELAXED);
    put_bytes(r, pos * RJ_RING_SLOT + 8, data, len);
    atomic_store_explicit(&r->seq[pos & smask], pos + 1, memory_order_release);
    return 0;
}

static int mpmc_peek(rj_ring *r, rj_ring_msg *m)
{
    rj_ring_shared *sh = r->sh;
    uint64_t smask = r->slots - 1;
    uint64_t pos = atomic_load_explicit(&sh->head, memory_order_relaxed);
    unsigned spins = 1, stuck = 0;
    for (;;) {
        uint64_t s = atomic_load_explicit(&r->seq[pos & smask], memory_order_acquire);
        int64_t diff = (int64_t)(s - (pos + 1));
        if (diff == 0) {
            /* Read the header before claiming: if another consumer takes
             * this message first, our CAS fails and the value is unused. */
            uint64_t hdr = __atomic_load_n(slot_word(r, pos), __ATOMIC_RELAXED);
            uint64_t k = hdr >> 32;
            size_t len = (size_t)(uint32_t)hdr;
            if (k == 0 || k > r->slots || k != slots_for(len)) {
                /* A torn read of a slot being reused: look again, while
                 * the head moves; a bad header that stays is damage. */
                uint64_t now = atomic_load_explicit(&sh->head, memory_order_relaxed);
                if (now == pos && ++stuck > (1u << 16))
                    return -EBADMSG;
                pos = now;
                continue;
            }
            if (atomic_compare_exchange_weak_explicit(&sh->head, &pos, pos + k,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                view_bytes(r, pos * RJ_RING_SLOT + 8, len, m);
                m->pos = pos;
                m->next = pos + k;
                return 0;
            }
            backoff(r, &spins);
        } else if (diff < 0) {
            /* Nothing published here yet (or a producer is mid-write). */
            uint64_t now = atomic_load_explicit(&sh->head, memory_order_relaxed);
            if (now == pos)
                return -EAGAIN;
            pos = now;
        } else {
            /* Taken by a consumer ahead of us (the head has moved), or
             * damaged seq words if it has not. */
            uint64_t now = atomic_load_explicit(&sh->head, memory_order_relaxed);
            if (now == pos)
                return -EBADMSG;
            pos = now;
        }
    }
}

static void mpmc_done(rj_ring *r, const rj_ring_msg *m)
{
    uint64_t smask = r->slots - 1;
    for (uint64_t p = m->pos; p < m->next; p++)
        atomic_store_explicit(&r->seq[p & smask], p + r->slots, memory_order_release);
}

/* ---- both ---- */

int rj_ring_write(rj_ring *r, const void *data, size_t len)
{
    if (r->mode != RJ_RING_SPSC)
        return mpmc_write(r, data, len);
    int rc = spsc_write(r, data, len);
    r->wrote |= rc == 0;
    return rc;
}

void rj_ring_commit_writes(rj_ring *r)
{
    /* Only a side that wrote owns tail: a consumer's wpos is stale, and
     * storing it (on close, say) would move the producer's tail back. */
    if (r->mode == RJ_RING_SPSC && r->wrote)
        atomic_store_explicit(&r->sh->tail, r->wpos, memory_order_release);
    wake(&r->sh->data_epoch, &r->sh->data_waiters);
}

int rj_ring_peek(rj_ring *r, rj_ring_msg *m)
{
    return r->mode == RJ_RING_SPSC ? spsc_peek(r, m) : mpmc_peek(r, m);
}

void rj_ring_done(rj_ring *r, const rj_ring_msg *m)
{
    if (r->mode == RJ_RING_SPSC) {
        r->rpos = m->next;
        r->took = 1;
    } else {
        mpmc_done(r, m);
    }
}

void rj_ring_commit_reads(rj_ring *r)
{
    if (r->mode == RJ_RING_SPSC && r->took) /* as for tail: only the side that read */
        atomic_store_explicit(&r->sh->head, r->rpos, memory_order_release);
    wake(&r->sh->space_epoch, &r->sh->space_waiters);
}

static int readable(rj_ring *r)
{
    if (r->mode == RJ_RING_SPSC)
        return atomic_load_explicit(&r->sh->tail, memory_order_acquire) != r->rpos;
    uint64_t pos = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
    return atomic_load_explicit(&r->seq[pos & (r->slots - 1)], memory_order_acquire) == pos + 1;
}

static int writable(rj_ring *r, size_t len)
{
    if (r->mode == RJ_RING_SPSC) {
        uint64_t head = atomic_load_explicit(&r->sh->head, memory_order_acquire);
        return r->wpos + 8 + round8(len) - head <= r->capacity;
    }
    uint64_t pos = atomic_load_explicit(&r->sh->tail, memory_order_relaxed);
    uint64_t last = pos + slots_for(len) - 1;
    return atomic_load_explicit(&r->seq[last & (r->slots - 1)], memory_order_acquire) >= last &&
           atomic_load_explicit(&r->seq[pos & (r->slots - 1)], memory_order_acquire) >= pos;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int wait_for(rj_ring *r, _Atomic uint32_t *epoch, _Atomic uint32_t *waiters,
                    int (*ready)(rj_ring *, size_t), size_t len, int64_t timeout_ns)
{
    unsigned spins = 1;
    for (int i = 0; i < SPINS; i += (int)spins) {
        if (ready(r, len))
            return 0;
        for (unsigned k = 0; k < spins; k++)
            RJ_PAUSE();
        if (spins < 64)
            spins *= 2;
    }
    int64_t deadline = timeout_ns < 0 ? INT64_MAX : now_ns() + timeout_ns;
    for (;;) {
        atomic_fetch_add_explicit(waiters, 1, memory_order_seq_cst);
        uint32_t e = atomic_load_explicit(epoch, memory_order_seq_cst);
        if (ready(r, len)) {
            atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
            return 0;
        }
        /* After loading the epoch: a cancel that bumped it before is seen
         * here, one after makes the futex wait return at once. */
        if (atomic_load_explicit(&r->cancelled, memory_order_seq_cst)) {
            atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
            return -ECANCELED;
        }
        int64_t left = deadline == INT64_MAX ? 1000000000 : deadline - now_ns();
        if (left <= 0) {
            atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
            return -ETIMEDOUT;
        }
        /* Sleep at most a second at a time: a wake lost to a peer that
         * died between publishing and waking costs a second, not forever. */
        if (left > 1000000000)
            left = 1000000000;
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        futex(epoch, FUTEX_WAIT, e, &ts);
        atomic_fetch_sub_explicit(waiters, 1, memory_order_relaxed);
        if (ready(r, len))
            return 0;
    }
}

static int ready_data(rj_ring *r, size_t len)
{
    (void)len;
    return readable(r);
}

void rj_ring_cancel_waits(rj_ring *r)
{
    atomic_store_explicit(&r->cancelled, 1, memory_order_seq_cst);
    _Atomic uint32_t *epochs[2] = {&r->sh->data_epoch, &r->sh->space_epoch};
    for (int i = 0; i < 2; i++) {
        atomic_fetch_add_explicit(epochs[i], 1, memory_order_seq_cst);
        futex(epochs[i], FUTEX_WAKE, INT_MAX, NULL);
    }
}

int rj_ring_wait_data(rj_ring *r, int64_t timeout_ns)
{
    return wait_for(r, &r->sh->data_epoch, &r->sh->data_waiters, ready_data, 0, timeout_ns);
}

int rj_ring_wait_space(rj_ring *r, size_t len, int64_t timeout_ns)
{
    return wait_for(r, &r->sh->space_epoch, &r->sh->space_waiters, writable, len, timeout_ns);
}
