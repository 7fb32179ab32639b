/* log.h: the durable append-only log.
 *
 * A log is a directory of segment files named by their first sequence
 * number (%020llu.rjlog). Each segment is preallocated (fallocate) and
 * starts with one 4096-byte header block:
 *
 *   off  size  field
 *   0    8     magic "RJLOGSEG"
 *   8    4     format version (1)
 *   12   4     header size (4096)
 *   16   8     first sequence number
 *   24   8     creation time, ns since the epoch
 *   32   8     segment size (bytes preallocated)
 *   40   4     CRC-32C of bytes 0..40
 *
 * Records follow, each 8-byte aligned:
 *
 *   0    4     CRC-32C of the payload, then of bytes 4..16 of this header
 *   4    4     payload length
 *   8    8     sequence number (dense from 0 across segments)
 *   16   n     payload, then zero padding to a multiple of 8
 *
 * An all-zero record header ends the segment's data (preallocated space
 * reads as zeros). Sequence numbers within a segment are consecutive.
 *
 * Writing: appenders copy records into an aligned fill buffer under a
 * mutex; a background thread takes the whole buffer (everything that
 * arrived while its previous write was in flight) and writes it with one
 * pwrite from the block boundary before the data's end (the partly filled
 * last block is kept in memory and written again with the next batch),
 * then one fdatasync: group commit. Writes use O_DIRECT where the file
 * system takes it (else buffered writes; stats say which). The mmap back
 * end copies into a shared mapping of the segment and msyncs instead; the
 * io_uring back end submits the write and the fdatasync as one linked
 * pair (falling back to the write back end where io_uring is refused).
 */
#ifndef RJ_LOG_H
#define RJ_LOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RJ_LOG_BLOCK 4096u
#define RJ_LOG_HEADER 4096u
#define RJ_LOG_REC_HEADER 16u
#define RJ_LOG_VERSION 1u

enum { RJ_SYNC_NONE = 0, RJ_SYNC_GROUP = 1, RJ_SYNC_ALWAYS = 2, RJ_SYNC_INTERVAL = 3 };
enum { RJ_BACKEND_WRITE = 0, RJ_BACKEND_MMAP = 1, RJ_BACKEND_URING = 2 };

/* The system calls the writer and recovery make, so tests can inject
 * faults (EIO, ENOSPC, short or torn writes) at each step. */
typedef struct rj_log_sys {
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*fallocate)(int fd, int mode, off_t off, off_t len);
    int (*ftruncate)(int fd, off_t len);
} rj_log_sys;

extern const rj_log_sys rj_log_sys_real;

typedef struct rj_log_options {
    int sync;             /* RJ_SYNC_* */
    int backend;          /* RJ_BACKEND_* */
    int direct;           /* try O_DIRECT (write back end) */
    int strict;           /* refuse to open over mid-segment corruption */
    uint64_t segment_bytes;
    uint64_t interval_ns; /* RJ_SYNC_INTERVAL */
    uint64_t retain_bytes;   /* 0: keep all */
    uint64_t retain_seconds; /* 0: keep all */
    uint8_t *buffers[2];  /* aligned to RJ_LOG_BLOCK, buffer_bytes each */
    size_t buffer_bytes;
    const rj_log_sys *sys; /* NULL: rj_log_sys_real (io_uring submissions bypass it) */
} rj_log_options;

/* What opening found at the tail of the last segment. */
typedef struct rj_log_recovery {
    uint64_t segment;       /* first seq of the segment scanned */
    uint64_t offset;        /* where its valid data ends */
    uint64_t torn_bytes;    /* nonzero bytes past that end, truncated */
    uint64_t lost_records;  /* lenient: valid records past a corruption, dropped */
    int corrupt_middle;     /* a bad record followed by valid ones */
} rj_log_recovery;

typedef struct rj_log_stats {
    uint64_t appended, committed, written, commits, syncs, bytes_written, rolls, removed;
    uint64_t max_batch, segment, segment_offset;
    int direct, backend, sync;
} rj_log_stats;

typedef struct rj_log rj_log;

/* Open (creating if needed) the log in dir and start its writer thread.
 * 0 or -errno; -EBADMSG for corruption (strict): *rec says where; -EBUSY
 * if another writer (in any process) has the log open. */
int rj_log_open(rj_log **out, const char *dir, const rj_log_options *o, rj_log_recovery *rec);
/* Append one record: 0 with *seq set; -EAGAIN when the caller must wait
 * (rj_log_wait_room) and retry; -EMSGSIZE if it can never fit; or the
 * writer's sticky error. payload_crc: rj_crc32c(0, data, len) (computed
 * by the caller, outside any lock). */
int rj_log_try_append(rj_log *l, const void *data, uint32_t len, uint32_t payload_crc,
                      uint64_t *seq);
/* Block until an append may succeed (the writer took the buffer or rolled
 * the segment). 0 or the sticky error. */
int rj_log_wait_room(rj_log *l, uint32_t len);
/* Block until every record before `upto` (a count: seq < upto) is on
 * stable storage. 0 or the writer's sticky error. */
int rj_log_wait_durable(rj_log *l, uint64_t upto);
/* Sequence number the next append gets. */
uint64_t rj_log_next_seq(rj_log *l);
void rj_log_get_stats(rj_log *l, rj_log_stats *s);
/* Flush and sync everything, stop the writer, close files. Returns the
 * sticky error if any; frees l in every case. */
int rj_log_close(rj_log *l);

/* ---- reading (no writer needed) ---- */

/* Check a segment header block: NULL if sound, else why not. */
const char *rj_log_check_header(const uint8_t *p, size_t size, uint64_t *first_seq,
                                uint64_t *seg_bytes);
/* The record at *off of a segment mapped at p (size bytes) when it holds
 * sequence number `expect`: 1 with the payload and its length set and
 * *off advanced;
 * 0 at a clean end (zero header, or the segment's end); -1 if the bytes
 * there are not that record (torn, corrupt, or out of sequence). */
int rj_log_next(const uint8_t *p, size_t size, uint64_t *off, uint64_t expect,
                const uint8_t **payload, uint32_t *len);
/* Offset of the next valid record (any seq >= min_seq) after off, or size. */
uint64_t rj_log_resync(const uint8_t *p, size_t size, uint64_t off, uint64_t min_seq,
                       uint64_t *seq);

#endif
