/* log.c: see log.h. */
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "uring.h"

static const uint8_t MAGIC[8] = {'R', 'J', 'L', 'O', 'G', 'S', 'E', 'G'};

const rj_log_sys rj_log_sys_real = {pwrite, fdatasync, fsync, fallocate, ftruncate};

struct rj_log {
    rj_log_options o;
    const rj_log_sys *sys;
    int dirfd, fd;          /* the directory; the current segment */
    int direct;             /* fd was opened with O_DIRECT */
    uint8_t *map;           /* mmap back end: the current segment */
    uint64_t seg_first;     /* first seq of the current segment */
    uint8_t *header_block;  /* aligned scratch block for segment headers */
    rj_uring uring;         /* io_uring back end */

    pthread_mutex_t mu;
    pthread_cond_t work; /* writer sleeps here */
    pthread_cond_t done; /* appenders and flushers sleep here */
    pthread_t thread;
    int thread_started;

    /* Guarded by mu. */
    int fill;               /* index of the buffer appenders fill */
    size_t fill_len;        /* bytes in it (the kept tail block first) */
    uint64_t fill_off;      /* segment offset of its byte 0 (block-aligned) */
    uint64_t fill_records;
    uint64_t next_seq;
    uint64_t written, committed; /* counts: seq < written is written, < committed synced */
    uint64_t flush_target;  /* someone waits until committed >= this */
    int seal;               /* the fill buffer ends this segment */
    int room_wanted;        /* an appender waits for the fill buffer to be taken */
    int writer_idle, stop, err;
    uint64_t commits, syncs, bytes_written, rolls, removed, max_batch;
};

static uint64_t round8(uint64_t n) { return (n + 7) & ~(uint64_t)7; }

static uint64_t now_realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void seg_name(char *out, size_t n, uint64_t first)
{
    snprintf(out, n, "%020" PRIu64 ".rjlog", first);
}

static int parse_seg_name(const char *name, uint64_t *first)
{
    size_t n = strlen(name);
    if (n != 26 || strcmp(name + 20, ".rjlog") != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *first = v;
    return 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted first-seqs of the segments in dirfd; *n of them. -errno. */
static int list_segments(int dirfd, uint64_t **out, size_t *n)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    rewinddir(d);
    size_t cap = 16, k = 0;
    uint64_t *v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        uint64_t first;
        if (!parse_seg_name(e->d_name, &first))
            continue;
        if (k == cap) {
            uint64_t *bigger = realloc(v, 2 * cap * sizeof *v);
            if (!bigger) {
                free(v);
                v = NULL;
                break;
            }
            v = bigger;
            cap *= 2;
        }
        v[k++] = first;
    }
    closedir(d);
    if (!v)
        return -ENOMEM;
    qsort(v, k, sizeof *v, cmp_u64);
    *out = v;
    *n = k;
    return 0;
}

/* ---- records ---- */

static uint32_t record_crc(const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
    return rj_crc32c(rj_crc32c(0, payload, len), hdr + 4, 12);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int rj_log_next(const uint8_t *p, size_t size, uint64_t *off, uint64_t expect,
                const uint8_t **payload, uint32_t *len)
{
    uint64_t o = *off;
    if (o + RJ_LOG_REC_HEADER > size)
        return 0;
    const uint8_t *h = p + o;
    if (all_zero(h, RJ_LOG_REC_HEADER))
        return 0;
    uint32_t crc, n;
    uint64_t seq;
    memcpy(&crc, h, 4);
    memcpy(&n, h + 4, 4);
    memcpy(&seq, h + 8, 8);
    if (seq != expect || n > size - o - RJ_LOG_REC_HEADER ||
        record_crc(h, h + RJ_LOG_REC_HEADER, n) != crc)
        return -1;
    *payload = h + RJ_LOG_REC_HEADER;
    *len = n;
    *off = o + RJ_LOG_REC_HEADER + round8(n);
    return 1;
}

uint64_t rj_log_resync(const uint8_t *p, size_t size, uint64_t off, uint64_t min_seq,
                       uint64_t *seq)
{
    /* Candidates must look like a record of a plausible sequence number
     * before the (costly) CRC is checked. */
    uint64_t max_seq = min_seq + size / RJ_LOG_REC_HEADER;
    for (uint64_t o = round8(off + 1); o + RJ_LOG_REC_HEADER <= size; o += 8) {
        const uint8_t *h = p + o;
        uint32_t crc, n;
        uint64_t s;
        memcpy(&s, h + 8, 8);
        if (s < min_seq || s > max_seq)
            continue;
        memcpy(&n, h + 4, 4);
        if (n > size - o - RJ_LOG_REC_HEADER)
            continue;
        memcpy(&crc, h, 4);
        if (record_crc(h, h + RJ_LOG_REC_HEADER, n) == crc) {
            *seq = s;
            return o;
        }
    }
    return size;
}

const char *rj_log_check_header(const uint8_t *p, size_t size, uint64_t *first_seq,
                                uint64_t *seg_bytes)
{
    if (size < RJ_LOG_HEADER)
        return "segment shorter than its header";
    if (memcmp(p, MAGIC, 8) != 0)
        return "not a rulejet log segment (bad magic)";
    uint32_t version, hsize, crc;
    memcpy(&version, p + 8, 4);
    memcpy(&hsize, p + 12, 4);
    memcpy(&crc, p + 40, 4);
    if (crc != rj_crc32c(0, p, 40))
        return "segment header checksum mismatch";
    if (version != RJ_LOG_VERSION)
        return "unsupported segment format version";
    if (hsize != RJ_LOG_HEADER)
        return "unexpected segment header size";
    memcpy(first_seq, p + 16, 8);
    memcpy(seg_bytes, p + 32, 8);
    return NULL;
}

/* ---- segments ---- */

static int sync_dir(rj_log *l) { return l->sys->fsync(l->dirfd) < 0 ? -errno : 0; }

static int open_segment_fd(rj_log *l, const char *name, int flags)
{
    int fd = -1;
    l->direct = 0;
    if (l->o.backend != RJ_BACKEND_MMAP && l->o.direct) {
        fd = openat(l->dirfd, name, flags | O_DIRECT | O_CLOEXEC, 0644);
        if (fd >= 0)
            l->direct = 1;
        else if (errno != EINVAL)
            return -errno;
    }
    if (fd < 0)
        fd = openat(l->dirfd, name, flags | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

static int map_segment(rj_log *l)
{
    if (l->o.backend != RJ_BACKEND_MMAP)
        return 0;
    void *m = mmap(NULL, l->o.segment_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    l->map = m;
    return 0;
}

static void close_segment(rj_log *l)
{
    if (l->map)
        munmap(l->map, l->o.segment_bytes);
    l->map = NULL;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

static int preallocate(rj_log *l, int fd, uint64_t bytes)
{
    if (l->sys->fallocate(fd, 0, 0, (off_t)bytes) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return -errno;
    return l->sys->ftruncate(fd, (off_t)bytes) < 0 ? -errno : 0;
}

/* Create, preallocate and sync a new segment starting at `first`, and make
 * it the current one. */
static int create_segment(rj_log *l, uint64_t first)
{
    char name[32];
    seg_name(name, sizeof name, first);
    int fd = open_segment_fd(l, name, O_RDWR | O_CREAT | O_TRUNC);
    if (fd < 0)
        return fd;
    int rc = preallocate(l, fd, l->o.segment_bytes);
    uint8_t *h = l->header_block;
    memset(h, 0, RJ_LOG_HEADER);
    memcpy(h, MAGIC, 8);
    uint32_t version = RJ_LOG_VERSION, hsize = RJ_LOG_HEADER;
    uint64_t created = now_realtime_ns();
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &hsize, 4);
    memcpy(h + 16, &first, 8);
    memcpy(h + 24, &created, 8);
    memcpy(h + 32, &l->o.segment_bytes, 8);
    uint32_t crc = rj_crc32c(0, h, 40);
    memcpy(h + 40, &crc, 4);
    if (!rc && l->sys->pwrite(fd, h, RJ_LOG_HEADER, 0) != (ssize_t)RJ_LOG_HEADER)
        rc = errno ? -errno : -EIO;
    /* Header and preallocation durable before any record goes here: a
     * crash right after leaves an empty but well-formed segment (a crash
     * before leaves a zero header, which opening removes). */
    if (!rc && l->sys->fdatasync(fd) < 0)
        rc = -errno;
    if (rc) {
        close(fd);
        unlinkat(l->dirfd, name, 0);
        return rc;
    }
    close_segment(l);
    l->fd = fd;
    l->seg_first = first;
    if ((rc = map_segment(l)) < 0)
        return rc;
    /* The new name durable in the directory: without it a crash could
     * lose the whole segment file, and with it records acknowledged in it. */
    return sync_dir(l);
}

/* Retention: drop the oldest sealed segments while the log is over its
 * size budget, or while they are older than the age limit. */
static void apply_retention(rj_log *l)
{
    if (!l->o.retain_bytes && !l->o.retain_seconds)
        return;
    uint64_t *segs;
    size_t n;
    if (list_segments(l->dirfd, &segs, &n) < 0)
        return;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        char name[32];
        struct stat st;
        seg_name(name, sizeof name, segs[i]);
        if (fstatat(l->dirfd, name, &st, 0) == 0)
            total += (uint64_t)st.st_size;
    }
    uint64_t now = now_realtime_ns() / 1000000000u;
    for (size_t i = 0; i + 1 < n && segs[i] != l->seg_first; i++) {
        char name[32];
        struct stat st;
        seg_name(name, sizeof name, segs[i]);
        if (fstatat(l->dirfd, name, &st, 0) < 0)
            continue;
        int over = l->o.retain_bytes && total > l->o.retain_bytes;
        int old = l->o.retain_seconds && (uint64_t)st.st_mtime + l->o.retain_seconds < now;
        if (!over && !old)
            break;
        if (unlinkat(l->dirfd, name, 0) == 0) {
            total -= (uint64_t)st.st_size;
            l->removed++;
        }
    }
    free(segs);
    sync_dir(l);
}

/* ---- the writer ---- */

static int fill_has_work(const rj_log *l)
{
    if (l->seal || l->stop || l->room_wanted || l->flush_target > l->committed)
        return 1;
    if (!l->fill_records)
        return 0;
    if (l->o.sync == RJ_SYNC_GROUP || l->o.sync == RJ_SYNC_ALWAYS)
        return 1;
    return l->fill_len > l->o.buffer_bytes / 2; /* none, interval: when half full */
}

static int write_out(rj_log *l, const uint8_t *buf, size_t len, uint64_t off)
{
    if (l->o.backend == RJ_BACKEND_MMAP) {
        memcpy(l->map + off, buf, len);
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = l->sys->pwrite(l->fd, buf + done, len - done, (off_t)(off + done));
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO; /* no progress: do not spin */
        done += (size_t)w;
    }
    return 0;
}

static int sync_out(rj_log *l, uint64_t from, uint64_t to)
{
    if (l->o.backend == RJ_BACKEND_MMAP) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t start = from & ~(page - 1);
        return msync(l->map + start, to - start, MS_SYNC) < 0 ? -errno : 0;
    }
    return l->sys->fdatasync(l->fd) < 0 ? -errno : 0;
}

static void *writer_main(void *arg)
{
    rj_log *l = arg;
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!fill_has_work(l)) {
            l->writer_idle = 1;
            if (l->o.sync == RJ_SYNC_INTERVAL && l->fill_records) {
                struct timespec until = last;
                until.tv_nsec += (long)(l->o.interval_ns % 1000000000u);
                until.tv_sec += (time_t)(l->o.interval_ns / 1000000000u) + until.tv_nsec / 1000000000;
                until.tv_nsec %= 1000000000;
                if (pthread_cond_timedwait(&l->work, &l->mu, &until) == ETIMEDOUT) {
                    l->writer_idle = 0;
                    break; /* the interval is up: commit what there is */
                }
            } else if (l->o.sync == RJ_SYNC_INTERVAL) {
                pthread_cond_wait(&l->work, &l->mu);
                clock_gettime(CLOCK_MONOTONIC, &last); /* an interval starts with the first record */
            } else {
                pthread_cond_wait(&l->work, &l->mu);
            }
            l->writer_idle = 0;
        }
        if (l->err || (l->stop && !l->fill_records && !l->seal && l->flush_target <= l->committed))
            break;
        /* Take the fill buffer; appenders go on in the other one. */
        int w = l->fill;
        uint8_t *buf = l->o.buffers[w];
        size_t wlen = l->fill_len;
        uint64_t woff = l->fill_off, wlast = l->next_seq, nrec = l->fill_records;
        int seal = l->seal;
        int must_sync = l->o.sync != RJ_SYNC_NONE || l->flush_target > l->committed || seal ||
                        l->stop;
        l->fill = !w;
        l->fill_records = 0;
        l->seal = 0;
        l->room_wanted = 0;
        if (seal) {
            l->fill_off = RJ_LOG_HEADER;
            l->fill_len = 0;
        } else {
            /* Keep the partly filled last block: it is written again,
             * completed, with the next batch (O_DIRECT writes whole blocks). */
            uint64_t end = woff + wlen, blk = end & ~(uint64_t)(RJ_LOG_BLOCK - 1);
            l->fill_off = blk;
            l->fill_len = (size_t)(end - blk);
            memcpy(l->o.buffers[!w], buf + (blk - woff), l->fill_len);
        }
        pthread_mutex_unlock(&l->mu);

        int rc = 0;
        size_t out = (wlen + RJ_LOG_BLOCK - 1) & ~(size_t)(RJ_LOG_BLOCK - 1);
        if (woff + out > l->o.segment_bytes)
            out = (size_t)(l->o.segment_bytes - woff);
        memset(buf + wlen, 0, out - wlen);
        if (l->o.backend == RJ_BACKEND_URING && (nrec || wlen)) {
            rc = rj_uring_write_sync(&l->uring, l->fd, buf, out, woff, must_sync);
        } else {
            if (nrec || wlen)
                rc = write_out(l, buf, out, woff);
                /* Data and the extent metadata it needs (preallocated extents
             * turn from unwritten to written) durable before anyone is told
             * `committed`: a crash after the acknowledgement cannot lose it. */
            if (!rc && must_sync)
                rc = sync_out(l, woff, woff + out);
        }
        if (!rc && seal) {
            rc = create_segment(l, wlast);
            if (!rc)
                apply_retention(l);
        }
        clock_gettime(CLOCK_MONOTONIC, &last);

        pthread_mutex_lock(&l->mu);
        if (rc) {
            l->err = rc;
        } else {
            l->written = wlast;
            if (must_sync)
                l->committed = wlast;
            l->commits += nrec != 0;
            l->syncs += must_sync;
            l->bytes_written += out;
            l->rolls += seal;
            if (nrec > l->max_batch)
                l->max_batch = nrec;
        }
        pthread_cond_broadcast(&l->done);
    }
    pthread_cond_broadcast(&l->done);
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- appending ---- */

static uint64_t record_bytes(uint32_t len) { return RJ_LOG_REC_HEADER + round8(len); }

static int too_big(const rj_log *l, uint32_t len)
{
    uint64_t rec = record_bytes(len);
    return rec > l->o.segment_bytes - RJ_LOG_HEADER || rec > l->o.buffer_bytes - RJ_LOG_BLOCK;
}

/* 1 if a record of len fits now; else 0 (after asking the writer to make
 * room: sealing the segment when that is what is in the way). mu held. */
static int fits(rj_log *l, uint32_t len)
{
    uint64_t rec = record_bytes(len);
    if (l->seal)
        return 0;
    if (l->fill_off + l->fill_len + rec > l->o.segment_bytes) {
        l->seal = 1;
        pthread_cond_signal(&l->work);
        return 0;
    }
    if (l->fill_len + rec > l->o.buffer_bytes) {
        l->room_wanted = 1;
        pthread_cond_signal(&l->work);
        return 0;
    }
    return 1;
}

int rj_log_try_append(rj_log *l, const void *data, uint32_t len, uint32_t payload_crc,
                      uint64_t *seq)
{
    if (too_big(l, len))
        return -EMSGSIZE;
    pthread_mutex_lock(&l->mu);
    if (l->err || l->stop) {
        int e = l->err ? l->err : -ESHUTDOWN;
        pthread_mutex_unlock(&l->mu);
        return e;
    }
    if (!fits(l, len)) {
        pthread_mutex_unlock(&l->mu);
        return -EAGAIN;
    }
    uint8_t *h = l->o.buffers[l->fill] + l->fill_len;
    uint64_t s = l->next_seq++;
    memcpy(h + 4, &len, 4);
    memcpy(h + 8, &s, 8);
    uint32_t crc = rj_crc32c(payload_crc, h + 4, 12);
    memcpy(h, &crc, 4);
    memcpy(h + RJ_LOG_REC_HEADER, data, len);
    memset(h + RJ_LOG_REC_HEADER + len, 0, round8(len) - len);
    l->fill_len += record_bytes(len);
    l->fill_records++;
    /* Interval mode: the first record starts the writer's clock. */
    if (l->writer_idle &&
        (fill_has_work(l) || (l->o.sync == RJ_SYNC_INTERVAL && l->fill_records == 1))) {
        l->writer_idle = 0;
        pthread_cond_signal(&l->work);
    }
    pthread_mutex_unlock(&l->mu);
    *seq = s;
    return 0;
}

int rj_log_wait_room(rj_log *l, uint32_t len)
{
    pthread_mutex_lock(&l->mu);
    while (!l->err && !l->stop && !fits(l, len))
        pthread_cond_wait(&l->done, &l->mu);
    int e = l->err;
    pthread_mutex_unlock(&l->mu);
    return e;
}

int rj_log_wait_durable(rj_log *l, uint64_t upto)
{
    pthread_mutex_lock(&l->mu);
    if (upto > l->flush_target)
        l->flush_target = upto;
    pthread_cond_signal(&l->work);
    while (!l->err && l->committed < upto)
        pthread_cond_wait(&l->done, &l->mu);
    int e = l->err;
    pthread_mutex_unlock(&l->mu);
    return e;
}

uint64_t rj_log_next_seq(rj_log *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t s = l->next_seq;
    pthread_mutex_unlock(&l->mu);
    return s;
}

void rj_log_get_stats(rj_log *l, rj_log_stats *s)
{
    pthread_mutex_lock(&l->mu);
    *s = (rj_log_stats){l->next_seq, l->committed, l->written, l->commits, l->syncs,
                        l->bytes_written, l->rolls, l->removed, l->max_batch, l->seg_first,
                        l->fill_off + l->fill_len, l->direct, l->o.backend, l->o.sync};
    pthread_mutex_unlock(&l->mu);
}

/* ---- opening and recovery ---- */

/* Scan the last segment (fd, first seq from its name) and truncate a torn
 * tail. Sets *end (where the next record goes) and *next (its seq). */
static int recover_segment(rj_log *l, int fd, uint64_t first, uint64_t *end, uint64_t *next,
                           rj_log_recovery *rec)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    size_t size = (size_t)st.st_size;
    rec->segment = first;
    if (size < RJ_LOG_HEADER)
        return -EBADMSG;
    uint8_t *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    uint64_t hfirst, hbytes;
    if (rj_log_check_header(p, size, &hfirst, &hbytes) || hfirst != first) {
        munmap(p, size);
        return -EBADMSG;
    }
    uint64_t off = RJ_LOG_HEADER, expect = first;
    const uint8_t *payload;
    uint32_t len;
    while (rj_log_next(p, size, &off, expect, &payload, &len) == 1)
        expect++;
    rec->offset = off;
    uint64_t seq;
    uint64_t later = rj_log_resync(p, size, off, expect, &seq);
    if (later < size) {
        /* Valid records after a bad one: corruption, not a torn tail. */
        rec->corrupt_middle = 1;
        if (l->o.strict) {
            munmap(p, size);
            return -EBADMSG;
        }
        for (uint64_t o = later; o < size; o = rj_log_resync(p, size, o, seq + 1, &seq))
            rec->lost_records++;
    }
    for (uint64_t i = off; i < size; i++)
        rec->torn_bytes += p[i] != 0;
    munmap(p, size);
    if (rec->torn_bytes || size < hbytes) {
        /* Cut the tail and preallocate again: the space reads as zeros,
         * so a later crash cannot make the old torn bytes look like the
         * continuation of new records; fsync so the cut itself survives.
         * A file cut short at a record's end has nothing torn but must
         * grow back: the writer (and the mmap back end) use all of it. */
        if (l->sys->ftruncate(fd, (off_t)off) < 0 ||
            preallocate(l, fd, size > hbytes ? size : hbytes) < 0 || l->sys->fsync(fd) < 0)
            return -errno;
    }
    *end = off;
    *next = expect;
    return 0;
}

/* The log directory's entry made durable in its parent: a directory this
 * open created could otherwise vanish in a crash, and with it every record
 * flush had called stable. Done on every open, so a directory whose first
 * open failed after mkdir is still covered (a clean parent syncs at once). */
static int sync_parent(const rj_log_sys *sys, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    while (n > 0 && dir[n - 1] != '/')
        n--; /* n: the parent's length with its '/', 0 for a relative name */
    char *parent = malloc(n ? n + 1 : 2);
    if (!parent)
        return -ENOMEM;
    memcpy(parent, n ? dir : ".", n ? n : 1);
    parent[n ? n : 1] = 0;
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(parent);
    /* A parent we may write and search but not read (mode -wx) cannot be
     * opened to fsync: the log still works, as it did before this sync. */
    if (fd < 0)
        return errno == EACCES ? 0 : -errno;
    int rc = sys->fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int rj_log_open(rj_log **out, const char *dir, const rj_log_options *o, rj_log_recovery *rec)
{
    memset(rec, 0, sizeof *rec);
    if (o->segment_bytes < 2 * RJ_LOG_HEADER || o->segment_bytes % RJ_LOG_BLOCK ||
        o->buffer_bytes < 2 * RJ_LOG_BLOCK || o->buffer_bytes % RJ_LOG_BLOCK ||
        !o->buffers[0] || !o->buffers[1] || ((uintptr_t)o->buffers[0] | (uintptr_t)o->buffers[1]) % RJ_LOG_BLOCK)
        return -EINVAL;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    rj_log *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->o = *o;
    l->sys = o->sys ? o->sys : &rj_log_sys_real;
    l->fd = -1;
    l->uring.fd = -1;
    if (l->o.backend == RJ_BACKEND_URING && rj_uring_init(&l->uring) < 0)
        l->o.backend = RJ_BACKEND_WRITE; /* refused here: say so in stats */
    l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = l->dirfd < 0 ? -errno : sync_parent(l->sys, dir);
    /* One writer per log: two would interleave records and each truncate
     * the other's "torn tail". The lock goes with the descriptor, so a
     * writer killed by a crash releases it. */
    if (!rc && flock(l->dirfd, LOCK_EX | LOCK_NB) < 0)
        rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
    if (!rc && posix_memalign((void **)&l->header_block, RJ_LOG_BLOCK, RJ_LOG_HEADER))
        rc = -ENOMEM;
    uint64_t *segs = NULL;
    size_t n = 0;
    if (!rc)
        rc = list_segments(l->dirfd, &segs, &n);
    uint64_t end = RJ_LOG_HEADER, next = 0;
    /* A last segment whose header never got written (a crash while
     * rolling) holds nothing: remove it and recover the one before. */
    while (!rc && n) {
        char name[32];
        seg_name(name, sizeof name, segs[n - 1]);
        int fd = open_segment_fd(l, name, O_RDWR);
        if (fd < 0) {
            rc = fd;
            break;
        }
        uint8_t *blk = l->header_block;
        ssize_t got = pread(fd, blk, RJ_LOG_HEADER, 0);
        if (got >= 0 && (got < (ssize_t)RJ_LOG_HEADER || all_zero(blk, RJ_LOG_HEADER))) {
            close(fd);
            unlinkat(l->dirfd, name, 0);
            if (--n)
                continue;
            next = segs[0];
            rc = create_segment(l, next);
            break;
        }
        rc = recover_segment(l, fd, segs[n - 1], &end, &next, rec);
        if (rc) {
            close(fd);
            break;
        }
        l->fd = fd;
        l->seg_first = segs[n - 1];
        rc = map_segment(l);
        break;
    }
    free(segs);
    if (!rc && l->fd < 0)
        rc = create_segment(l, 0);
    if (!rc && l->fd >= 0 && end == RJ_LOG_HEADER && next == 0)
        next = l->seg_first; /* an empty segment: its name is the next seq */
    if (rc) {
        close_segment(l);
        rj_uring_close(&l->uring);
        if (l->dirfd >= 0)
            close(l->dirfd);
        free(l->header_block);
        free(l);
        return rc;
    }
    l->next_seq = l->written = l->committed = l->flush_target = next;
    l->fill = 0;
    l->fill_off = end & ~(uint64_t)(RJ_LOG_BLOCK - 1);
    l->fill_len = (size_t)(end - l->fill_off);
    if (l->fill_len) {
        /* The partly filled block the next write completes: read it back
         * (through the aligned buffer: O_DIRECT reads need one too). */
        uint8_t *b = l->o.buffers[0];
        errno = 0;
        if (pread(l->fd, b, RJ_LOG_BLOCK, (off_t)l->fill_off) != (ssize_t)RJ_LOG_BLOCK)
            rc = errno ? -errno : -EIO; /* short: not a stale errno from before */
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->work, &ca);
    pthread_cond_init(&l->done, NULL);
    pthread_condattr_destroy(&ca);
    if (!rc && pthread_create(&l->thread, NULL, writer_main, l) != 0)
        rc = -EAGAIN;
    if (rc) {
        close_segment(l);
        rj_uring_close(&l->uring);
        close(l->dirfd);
        free(l->header_block);
        free(l);
        return rc;
    }
    l->thread_started = 1;
    *out = l;
    return 0;
}

int rj_log_close(rj_log *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    if (l->next_seq > l->flush_target)
        l->flush_target = l->next_seq;
    pthread_cond_signal(&l->work);
    pthread_mutex_unlock(&l->mu);
    if (l->thread_started)
        pthread_join(l->thread, NULL);
    int e = l->err;
    close_segment(l);
    rj_uring_close(&l->uring);
    close(l->dirfd);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->done);
    free(l->header_block);
    free(l);
    return e;
}
