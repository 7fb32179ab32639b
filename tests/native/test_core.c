/* test_core.c: native tests of the portable core and every kernel, built
 * without Python by scripts/native-tests.sh (normally under ASan + UBSan).
 *
 * Buffers are malloc'ed at their exact size so AddressSanitizer flags any
 * kernel that reads past the end. Prints "N passed, N failed".
 */
#include "../../src/rulejet/_native/core/arena.h"
#include "../../src/rulejet/_native/core/cpu.h"
#include "../../src/rulejet/_native/core/dispatch.h"
#include "../../src/rulejet/_native/core/json.h"
#include "../../src/rulejet/_native/core/lines.h"
#include "../../src/rulejet/_native/core/mapped.h"
#include "../../src/rulejet/_native/core/ahead.h"
#include "../../src/rulejet/_native/core/probe.h"
#include "../../src/rulejet/_native/core/ring.h"
#include "../../src/rulejet/_native/core/crc32c.h"
#include "../../src/rulejet/_native/core/log.h"
#include "../../src/rulejet/_native/core/vmemo.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
        }                                                                      \
    } while (0)

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* rm -rf dir (a test's temporary directory). */
static void remove_tree(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* The documented rule, the plain way. */
static size_t ref_starts(const uint8_t *p, size_t n, uint64_t *out)
{
    size_t k = 0;
    if (n)
        out[k++] = 0;
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\n')
            out[k++] = i + 1;
    return k;
}

static void test_kernels_match_reference(void)
{
    static const uint8_t alphabet[] = {'\n', '\n', 'a', '\r', 0, 0xff, 0x8a, 0x0b, 0x09};
    int mismatches = 0;
    for (int round = 0; round < 4000; round++) {
        size_t n = rng() % (round < 2000 ? 200 : 5000);
        uint8_t *buf = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            buf[i] = alphabet[rng() % sizeof alphabet];
        uint64_t *want = malloc((n + 1) * sizeof *want);
        size_t nwant = ref_starts(buf, n, want);
        for (size_t ki = 0; rj_all_kernels[ki]; ki++) {
            const rj_kernel *k = rj_all_kernels[ki];
            if (!rj_kernel_supported(k))
                continue;
            rj_u64vec got = {0};
            int rc = rj_line_starts(k, buf, n, 0, 1, 1, &got);
            if (rc != 0 || got.len != nwant ||
                (nwant && memcmp(got.data, want, nwant * sizeof *want) != 0)) {
                if (mismatches++ < 5)
                    fprintf(stderr, "kernel %s differs at n=%zu\n", k->name, n);
            }
            rj_u64vec_free(&got);
        }
        free(want);
        free(buf);
    }
    CHECK(mismatches == 0);
}

static const uint8_t *ref_find(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn)
{
    for (size_t i = 0; i + nn <= hn; i++)
        if (!nn || memcmp(h + i, n, nn) == 0)
            return h + i;
    return NULL;
}

/* Substring search: every kernel returns the naive search's first match,
 * on haystacks of every length around the window widths (exact-size
 * allocations: ASan sees any load past either string). */
static void test_find_kernels_agree(void)
{
    static const uint8_t alphabet[] = {'a', 'a', 'b', 'c', 0, 0xff};
    int mismatches = 0;
    for (int round = 0; round < 60000; round++) {
        size_t hn = rng() % (round % 10 ? 80 : 300), nn = rng() % (round % 7 ? 6 : 45);
        uint8_t *h = malloc(hn ? hn : 1), *n = malloc(nn ? nn : 1);
        for (size_t i = 0; i < hn; i++)
            h[i] = alphabet[rng() % (round % 3 ? 3 : sizeof alphabet)];
        if (nn <= hn && hn && rng() % 2) /* a needle taken from the haystack */
            memcpy(n, h + rng() % (hn - nn + 1), nn);
        else
            for (size_t i = 0; i < nn; i++)
                n[i] = alphabet[rng() % 3];
        const uint8_t *want = ref_find(h, hn, n, nn);
        for (size_t ki = 0; rj_all_kernels[ki]; ki++) {
            const rj_kernel *k = rj_all_kernels[ki];
            if (rj_kernel_supported(k) && k->find(h, hn, n, nn) != want && mismatches++ < 5)
                fprintf(stderr, "kernel %s find differs: hn=%zu nn=%zu\n", k->name, hn, nn);
        }
        free(h);
        free(n);
    }
    CHECK(mismatches == 0);
}

static void test_all_byte_values(void)
{
    uint8_t *buf = malloc(256 * 3);
    for (int i = 0; i < 256 * 3; i++)
        buf[i] = (uint8_t)i;
    for (size_t ki = 0; rj_all_kernels[ki]; ki++) {
        if (!rj_kernel_supported(rj_all_kernels[ki]))
            continue;
        rj_u64vec got = {0};
        CHECK(rj_line_starts(rj_all_kernels[ki], buf, 768, 0, 1, 1, &got) == 0);
        CHECK(got.len == 4 && got.data[1] == 11 && got.data[2] == 267 &&
              got.data[3] == 523);
        rj_u64vec_free(&got);
    }
    free(buf);
}

static void test_chunk_semantics(void)
{
    const rj_kernel *k = rj_kernel_active();
    const uint8_t a[] = "x\ny\n", b[] = "z\n";
    rj_u64vec v = {0};
    /* "x\ny\n" then "z\n" as two chunks: the newline ending chunk one is a
     * line start because more data follows; the final one is not. */
    CHECK(rj_line_starts(k, a, 4, 0, 1, 0, &v) == 0);
    CHECK(rj_line_starts(k, b, 2, 4, 0, 1, &v) == 0);
    CHECK(v.len == 3 && v.data[0] == 0 && v.data[1] == 2 && v.data[2] == 4);
    rj_u64vec_free(&v);
    CHECK(rj_line_starts(k, a, 0, 0, 1, 1, &v) == 0 && v.len == 0);
    rj_u64vec_free(&v);
}

static void test_u64vec_overflow(void)
{
    rj_u64vec v = {0};
    CHECK(rj_u64vec_reserve(&v, SIZE_MAX / 4) == -EOVERFLOW);
    CHECK(v.data == NULL && v.cap == 0);
    CHECK(rj_u64vec_reserve(&v, 10) == 0 && v.cap >= 10);
    rj_u64vec_free(&v);
}

static void test_dispatch(void)
{
    CHECK(rj_kernel_select("no-such-kernel") == -ENOENT);
    CHECK(rj_kernel_by_name("scalar") == &rj_kernel_scalar);
    CHECK(rj_kernel_supported(&rj_kernel_scalar));
    CHECK(rj_kernel_select("scalar") == 0 && rj_kernel_active() == &rj_kernel_scalar);
    CHECK(rj_kernel_select(rj_kernel_best()->name) == 0);
#ifdef RJ_HAVE_X86_KERNELS
    uint32_t f = rj_cpu_features();
    CHECK((f & RJ_CPU_SSE2) != 0); /* every x86-64 CPU */
    CHECK(rj_kernel_supported(&rj_kernel_avx2) == ((f & RJ_CPU_AVX2) != 0));
#endif
}

/* The readahead helper: it faults in what lies within its window ahead of
 * the reader and stops there, follows the reader, ends at the buffer's
 * end, and stops on request. Residency is read with mincore on a file
 * evicted first (where the filesystem cannot evict, e.g. tmpfs, only the
 * helper's own progress is checked). */
static int resident(const uint8_t *p, size_t page)
{
    unsigned char v = 0;
    return mincore((void *)p, page, &v) == 0 && (v & 1);
}

static void test_ahead(void)
{
    char path[] = "/tmp/rj-ahead-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    size_t mib = (size_t)1 << 20, size = 24 * mib, page = rj_page_size();
    uint8_t *block = malloc(mib);
    CHECK(block != NULL);
    memset(block, 'x', mib);
    for (size_t i = 0; i < size / mib; i++)
        CHECK(write(fd, block, mib) == (ssize_t)mib);
    free(block);
    CHECK(fdatasync(fd) == 0);
    close(fd);
    rj_map m;
    CHECK(rj_map_open(path, 0, 0, &m) == 0);
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
    close(fd);
    int evicted = !resident(m.base + size - page, page);

    rj_ahead a;
    rj_ahead_start_with(&a, m.base, size, 4 * mib, mib);
    CHECK(a.running);
    /* Reader at 0: the helper asks for the window and a chunk at most. */
    for (int i = 0; i < 5000 && atomic_load(&a.done) < 5 * mib; i++)
        usleep(1000);
    usleep(20000); /* time to run past the window, were it to */
    CHECK(atomic_load(&a.done) >= 5 * mib && atomic_load(&a.done) <= 6 * mib);
    if (evicted) {
        CHECK(resident(m.base + 4 * mib, page));
        CHECK(!resident(m.base + size - page, page));
    }
    /* The reader moves on: the helper follows to the end. */
    rj_ahead_note(&a, 20 * mib);
    for (int i = 0; i < 5000 && atomic_load(&a.done) < size; i++)
        usleep(1000);
    CHECK(atomic_load(&a.done) == size);
    if (evicted)
        CHECK(resident(m.base + size - page, page));
    rj_ahead_stop(&a);
    rj_ahead_stop(&a); /* idempotent */

    /* Stopped while waiting on the reader: it ends at once. */
    rj_ahead_start_with(&a, m.base, size, mib, mib);
    usleep(10000);
    rj_ahead_stop(&a);
    CHECK(atomic_load(&a.done) <= 2 * mib);

    /* Small buffers get no helper; RULEJET_READAHEAD=0 turns it off. */
    rj_ahead_start(&a, m.base, RJ_AHEAD_MIN - 1);
    CHECK(!a.running);
    rj_ahead_stop(&a);
    setenv("RULEJET_READAHEAD", "0", 1);
    rj_ahead_start(&a, m.base, size);
    CHECK(!a.running);
    unsetenv("RULEJET_READAHEAD");
    rj_ahead_start(&a, m.base, size);
    CHECK(a.running);
    rj_ahead_stop(&a);

    /* A file cut short under the map: the helper stops at the hole
     * (EFAULT), where a read would raise SIGBUS. */
    CHECK(truncate(path, (off_t)(2 * mib)) == 0);
    rj_ahead_start_with(&a, m.base, size, size, mib);
    for (int i = 0; i < 200 && atomic_load(&a.done) < 2 * mib; i++)
        usleep(1000);
    usleep(20000);
    CHECK(atomic_load(&a.done) == 2 * mib);
    rj_ahead_stop(&a);
    CHECK(rj_map_close(&m) == 0);
    unlink(path);
}

static void test_mapped(void)
{
    char dir[] = "/tmp/rj-native-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    rj_map m;
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK(rj_map_open(path, 0, 0, &m) == -ENOENT && m.base == NULL);
    CHECK(rj_map_open(dir, 0, 0, &m) == -EISDIR);

    snprintf(path, sizeof path, "%s/empty", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    CHECK(rj_map_open(path, RJ_MAP_POPULATE, 0, &m) == 0 && m.size == 0);
    CHECK(rj_map_advise(&m, RJ_ADV_SEQUENTIAL, 0, 0) == 0);
    CHECK(rj_map_close(&m) == 0 && rj_map_close(&m) == 0);

    snprintf(path, sizeof path, "%s/data", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    CHECK(write(fd, "hello\nworld\n", 12) == 12);
    close(fd);
    CHECK(rj_map_open(path, 0, 0, &m) == 0 && m.size == 12);
    CHECK(memcmp(m.base, "hello\nworld\n", 12) == 0);
    CHECK(rj_map_advise(&m, RJ_ADV_WILLNEED, 6, 6) == 0);
    CHECK(rj_map_advise(&m, RJ_ADV_WILLNEED, 6, 7) == -EINVAL);
    CHECK(rj_map_advise(&m, 99, 0, 0) == -EINVAL);
    CHECK(rj_map_close(&m) == 0);

    /* Read-write with preallocation: the file grows to the hint. */
    CHECK(rj_map_open(path, RJ_MAP_WRITE, 8192, &m) == 0 && m.size == 8192);
    memcpy(m.base + 8000, "tail", 4);
    CHECK(rj_map_sync(&m) == 0);
    CHECK(rj_map_close(&m) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == 8192);

    /* A read-only map of 2 MiB or more starts on a 2 MiB boundary (so the
     * kernel can use 2 MiB page-table entries), and the room reserved to
     * align it is given back on both sides. */
    size_t big = ((size_t)2 << 20) + 4097, page = rj_page_size();
    uint8_t *text = malloc(big);
    CHECK(text != NULL);
    for (size_t i = 0; i < big; i++)
        text[i] = (uint8_t)('a' + i % 26);
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    CHECK(write(fd, text, big) == (ssize_t)big);
    close(fd);
    for (int populate = 0; populate < 2; populate++) {
        CHECK(rj_map_open(path, populate ? RJ_MAP_POPULATE : 0, 0, &m) == 0 && m.size == big);
        CHECK(((uintptr_t)m.base & (((uintptr_t)2 << 20) - 1)) == 0);
        CHECK(memcmp(m.base, text, big) == 0);
        size_t span = (big + page - 1) / page * page;
        unsigned char in_core;
        CHECK(mincore(m.base + span, page, &in_core) == -1 && errno == ENOMEM);
        CHECK(mincore(m.base - page, page, &in_core) == -1 && errno == ENOMEM);
        CHECK(rj_map_advise(&m, RJ_ADV_SEQUENTIAL, 0, 0) == 0);
        CHECK(rj_map_close(&m) == 0);
    }
    free(text);

    unlink(path);
    snprintf(path, sizeof path, "%s/empty", dir);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

/* ---- JSON: every kernel must agree with scalar, byte for byte ---- */

static size_t gen_json(uint8_t *out, size_t cap, int depth)
{
    static const char *const atoms[] = {
        "1", "-0", "12.5e3", "123456789012345678901234", "true", "false", "null",
        "\"\"", "\"ab\\\"c\"", "\"\\u00e9x\"", "\"\xc3\xa9\"", "\"long string that crosses a "
        "vector boundary more than once, for sure\"", "\"]}{[\"", "\"\\\\\"",
    };
    static const char *const keys[] = {"\"a\"", "\"b\"", "\"user\"", "\"0\"", "\"\\u0061\""};
    size_t n = 0;
#define PUT(str)                                                                \
    do {                                                                        \
        const char *s_ = (str); /* evaluate once: str may call rng() */       \
        size_t l_ = strlen(s_);                                                 \
        if (n + l_ >= cap)                                                      \
            return n;                                                           \
        memcpy(out + n, s_, l_);                                                \
        n += l_;                                                                \
    } while (0)
    uint64_t r = rng() % 10;
    if (depth > 4 || r < 5) {
        PUT(atoms[rng() % (sizeof atoms / sizeof atoms[0])]);
        return n;
    }
    int obj = r < 8;
    PUT(obj ? "{" : "[");
    int items = (int)(rng() % 5);
    for (int i = 0; i < items; i++) {
        if (i)
            PUT(rng() % 2 ? "," : " , ");
        if (obj) {
            PUT(keys[rng() % (sizeof keys / sizeof keys[0])]);
            PUT(":");
        }
        n += gen_json(out + n, cap - n, depth + 1);
    }
    PUT(obj ? "}" : "]");
#undef PUT
    return n;
}

static void test_json_kernels_agree(void)
{
    rj_pathset ps;
    rj_step a[] = {{RJ_STEP_KEY, "a", 1, 0}};
    rj_step ub[] = {{RJ_STEP_KEY, "user", 4, 0}, {RJ_STEP_KEY, "b", 1, 0}};
    rj_step i1[] = {{RJ_STEP_INDEX, NULL, 0, 1}};
    rj_step p0[] = {{RJ_STEP_KEY_OR_INDEX, "0", 1, 0}, {RJ_STEP_KEY, "a", 1, 0}};
    rj_step k0a[] = {{RJ_STEP_KEY, "0", 1, 0}, {RJ_STEP_KEY, "a", 1, 0}};
    CHECK(rj_pathset_init(&ps) == 0);
    CHECK(rj_pathset_add(&ps, a, 1) == 0);
    CHECK(rj_pathset_add(&ps, ub, 2) == 0);
    CHECK(rj_pathset_add(&ps, i1, 1) == 0);
    CHECK(rj_pathset_add(&ps, p0, 2) == 0);
    CHECK(rj_pathset_add(&ps, k0a, 2) == 0);
    CHECK(rj_pathset_add(&ps, NULL, 0) == 0); /* the root */
    CHECK(rj_pathset_finish(&ps) == 0);
    CHECK(ps.n_slots == 6 && ps.n_paths == 6);

    rj_scan_scratch scr;
    CHECK(rj_scratch_init(&scr, &ps) == 0);
    rj_value want[8], got[8];
    int disagreements = 0, valid_docs = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t tmp[2048];
        size_t n = gen_json(tmp, sizeof tmp, 0);
        if (round % 2) /* mutate half of them */
            for (int m = (int)(rng() % 3) + 1; m > 0 && n; m--)
                tmp[rng() % n] = "{}[]\",:\\ 0a\x01\xff"[rng() % 14];
        uint8_t *doc = malloc(n ? n : 1); /* exact size: ASan sees over-reads */
        memcpy(doc, tmp, n);
        rj_json_err e1 = {0, NULL}, e2 = {0, NULL};
        int r1 = rj_kernel_scalar.json_extract(&ps, &scr, doc, 0, n, n, want, &e1);
        int v1 = rj_kernel_scalar.json_validate(doc, 0, n, &e1);
        valid_docs += v1 == 0;
        for (size_t ki = 0; rj_all_kernels[ki]; ki++) {
            const rj_kernel *k = rj_all_kernels[ki];
            if (!rj_kernel_supported(k) || k == &rj_kernel_scalar)
                continue;
            int r2 = k->json_extract(&ps, &scr, doc, 0, n, n, got, &e2);
            int v2 = k->json_validate(doc, 0, n, &e2);
            if (r1 != r2 || v1 != v2 || (r1 == 0 && memcmp(want, got, ps.n_slots * sizeof *got))) {
                if (disagreements++ < 3)
                    fprintf(stderr, "kernel %s disagrees on: %.*s\n", k->name, (int)n, doc);
            }
        }
        free(doc);
    }
    CHECK(disagreements == 0);
    CHECK(valid_docs > 5000); /* the generator makes mostly valid JSON */
    rj_scratch_free(&scr);
    rj_pathset_free(&ps);
}

/* rj_ndjson_line on every kernel against the plain way (memchr for the
 * line's end, then json_extract on the line): same kind, end, values and
 * error offset, on NDJSON with stray newlines mutated into documents. */
static void test_ndjson_lines_agree(void)
{
    rj_pathset ps;
    rj_step a[] = {{RJ_STEP_KEY, "a", 1, 0}};
    rj_step ub[] = {{RJ_STEP_KEY, "user", 4, 0}, {RJ_STEP_KEY, "b", 1, 0}};
    rj_step i1[] = {{RJ_STEP_INDEX, NULL, 0, 1}};
    CHECK(rj_pathset_init(&ps) == 0);
    CHECK(rj_pathset_add(&ps, a, 1) == 0);
    CHECK(rj_pathset_add(&ps, ub, 2) == 0);
    CHECK(rj_pathset_add(&ps, i1, 1) == 0);
    CHECK(rj_pathset_finish(&ps) == 0);
    rj_scan_scratch scr;
    CHECK(rj_scratch_init(&scr, &ps) == 0);
    rj_value want[4], got[4];
    int disagreements = 0, lines = 0, values = 0, malformed = 0;
    for (int round = 0; round < 3000; round++) {
        uint8_t tmp[8192];
        size_t n = 0;
        for (int d = (int)(rng() % 4) + 1; d > 0 && n + 2100 < sizeof tmp; d--) {
            if (rng() % 8 == 0)
                tmp[n++] = " \t\r"[rng() % 3]; /* blank or padded lines */
            n += gen_json(tmp + n, 2048, 0);
            if (d > 1 || rng() % 2)
                tmp[n++] = '\n';
        }
        if (round % 2)
            for (int m = (int)(rng() % 2) + 1; m > 0 && n; m--)
                tmp[rng() % n] = "\n\n \"{}\\\x01"[rng() % 8];
        uint8_t *buf = malloc(n ? n : 1); /* exact size: ASan sees over-reads */
        memcpy(buf, tmp, n);
        for (size_t p = 0; p < n;) {
            const uint8_t *nl = memchr(buf + p, '\n', n - p);
            size_t end = nl ? (size_t)(nl - buf) : n, q = p;
            while (q < end && (buf[q] == ' ' || buf[q] == '\t' || buf[q] == '\r'))
                q++;
            rj_json_err e1 = {0, NULL}, e2 = {0, NULL};
            int kind = q == end ? RJ_LINE_BLANK
                       : rj_kernel_scalar.json_extract(&ps, &scr, buf, p, end, n, want, &e1)
                           ? RJ_LINE_MALFORMED
                           : RJ_LINE_VALUES;
            lines++;
            values += kind == RJ_LINE_VALUES;
            malformed += kind == RJ_LINE_MALFORMED;
            for (size_t ki = 0; rj_all_kernels[ki]; ki++) {
                const rj_kernel *k = rj_all_kernels[ki];
                if (!rj_kernel_supported(k))
                    continue;
                size_t got_end = (size_t)-1;
                int got_kind = rj_ndjson_line(k, &ps, &scr, buf, p, n, got, &got_end, &e2);
                int same = got_kind == kind && got_end == end;
                if (same && kind == RJ_LINE_VALUES)
                    same = memcmp(want, got, ps.n_slots * sizeof *got) == 0;
                if (same && kind == RJ_LINE_MALFORMED)
                    same = e1.offset == e2.offset;
                if (!same && disagreements++ < 3)
                    fprintf(stderr, "kernel %s: line at %zu of: %.*s\n", k->name, p, (int)n, buf);
            }
            p = end < n ? end + 1 : n;
        }
        free(buf);
    }
    CHECK(disagreements == 0);
    CHECK(values > 3000 && malformed > 300); /* both paths were exercised */
    rj_scratch_free(&scr);
    rj_pathset_free(&ps);
}

static void test_json_values(void)
{
    uint8_t out[64];
    CHECK(rj_number_to_double((const uint8_t *)"1.5", 3) == 1.5);
    CHECK(rj_number_to_double((const uint8_t *)"-2e-3", 5) == -2e-3);
    CHECK(rj_number_to_double((const uint8_t *)"0.1", 3) == 0.1);
    CHECK(rj_number_to_double((const uint8_t *)"123456789012345678901", 21) == 123456789012345678901.0);
    size_t n = rj_unescape((const uint8_t *)"a\\u00e9\\ud83d\\ude00\\n", 21, out);
    CHECK(n == 1 + 2 + 4 + 1 && out[0] == 'a' && out[1] == 0xc3 && out[3] == 0xf0 && out[7] == '\n');
    CHECK(rj_escaped_equals((const uint8_t *)"\\u0061b", 7, "ab", 2));
    CHECK(!rj_escaped_equals((const uint8_t *)"\\u0061b", 7, "abc", 3));
    CHECK(rj_utf8_check((const uint8_t *)"ok \xc3\xa9", 5) == 5);
    CHECK(rj_utf8_check((const uint8_t *)"\xed\xa0\x80", 3) == 0); /* surrogate */
    CHECK(rj_utf8_check((const uint8_t *)"ab\xc0\xaf", 4) == 2);   /* overlong */
}

/* ---- arena: threads allocate concurrently; nothing overlaps ---- */

#define ARENA_THREADS 4
#define ARENA_ALLOCS 20000

typedef struct {
    rj_arena *arena;
    int tag;
    uint8_t **ptrs;
    size_t *sizes;
    int failed;
} arena_job;

static void *arena_worker(void *arg)
{
    arena_job *j = arg;
    for (int i = 0; i < ARENA_ALLOCS; i++) {
        size_t n = (size_t)(1 + (i * 37) % 3000);
        size_t align = (size_t)1 << (i % 7);
        uint8_t *p = rj_arena_alloc(j->arena, n, align, NULL);
        if (!p || ((uintptr_t)p & (align - 1))) {
            j->failed = 1;
            return NULL;
        }
        memset(p, j->tag, n);
        j->ptrs[i] = p;
        j->sizes[i] = n;
    }
    return NULL;
}

/* Threads allocate, check and free blocks of mixed classes: the free
 * lists hand a block to one owner at a time (a shared block would show as
 * a foreign tag). */
static void *arena_churn(void *arg)
{
    arena_job *j = arg;
    uint8_t *held[64] = {0};
    size_t held_n[64] = {0};
    for (int i = 0; i < ARENA_ALLOCS * 5; i++) {
        int slot = (i * 7919) % 64;
        if (held[slot]) {
            for (size_t k = 0; k < held_n[slot]; k++)
                j->failed += held[slot][k] != (uint8_t)j->tag;
            rj_arena_free(j->arena, held[slot], held_n[slot]);
        }
        size_t n = (size_t)(16 << (i % 8));
        held[slot] = rj_arena_alloc(j->arena, n, 16, NULL);
        held_n[slot] = n;
        if (!held[slot]) {
            j->failed++;
            return NULL;
        }
        memset(held[slot], j->tag, n);
    }
    for (int s = 0; s < 64; s++)
        if (held[s])
            rj_arena_free(j->arena, held[s], held_n[s]);
    return NULL;
}

static void test_arena_free_lists(void)
{
    rj_arena a;
    CHECK(rj_arena_init(&a, 65536) == 0);
    void *p = rj_arena_alloc(&a, 100, 16, NULL);
    rj_arena_free(&a, p, 100);
    CHECK(rj_arena_alloc(&a, 120, 16, NULL) == p); /* same class: reused */
    CHECK(atomic_load(&a.reused) == 1);
    pthread_t th[ARENA_THREADS];
    arena_job jobs[ARENA_THREADS];
    for (int t = 0; t < ARENA_THREADS; t++) {
        jobs[t] = (arena_job){&a, t + 1, NULL, NULL, 0};
        pthread_create(&th[t], NULL, arena_churn, &jobs[t]);
    }
    int failed = 0;
    for (int t = 0; t < ARENA_THREADS; t++) {
        pthread_join(th[t], NULL);
        failed += jobs[t].failed;
    }
    CHECK(failed == 0);
    CHECK(atomic_load(&a.reused) > 1000);
    rj_arena_destroy(&a);
}

static void test_arena_threads(void)
{
    rj_arena a;
    CHECK(rj_arena_init(&a, 65536) == 0);
    pthread_t th[ARENA_THREADS];
    arena_job jobs[ARENA_THREADS];
    for (int t = 0; t < ARENA_THREADS; t++) {
        jobs[t] = (arena_job){&a, t + 1, calloc(ARENA_ALLOCS, sizeof(uint8_t *)),
                              calloc(ARENA_ALLOCS, sizeof(size_t)), 0};
        pthread_create(&th[t], NULL, arena_worker, &jobs[t]);
    }
    int corrupt = 0, failed = 0;
    for (int t = 0; t < ARENA_THREADS; t++) {
        pthread_join(th[t], NULL);
        failed += jobs[t].failed;
    }
    /* Every byte still holds its owner's tag: no two allocations overlap. */
    for (int t = 0; t < ARENA_THREADS; t++)
        for (int i = 0; i < ARENA_ALLOCS && jobs[t].ptrs[i]; i++)
            for (size_t k = 0; k < jobs[t].sizes[i]; k++)
                corrupt += jobs[t].ptrs[i][k] != (uint8_t)(t + 1);
    CHECK(failed == 0);
    CHECK(corrupt == 0);
    CHECK(atomic_load(&a.chunks) > 1);
    void *big = rj_arena_alloc(&a, 1 << 20, 4096, NULL);
    CHECK(big && ((uintptr_t)big & 4095) == 0);
    CHECK(rj_arena_alloc(&a, 8, 3, NULL) == NULL && errno == EINVAL);
    rj_arena_reset(&a);
    CHECK(atomic_load(&a.in_use) == 0);
    uint8_t *again = rj_arena_alloc(&a, 100, 16, NULL);
    CHECK(again != NULL);
    memset(again, 0, 100);
    rj_arena_destroy(&a);
    for (int t = 0; t < ARENA_THREADS; t++) {
        free(jobs[t].ptrs);
        free(jobs[t].sizes);
    }
}

/* Ring: producers and consumers on threads, each with its own handle (as
 * separate processes would have). Every message carries its producer and
 * sequence number and a payload derived from them; consumers check each
 * one, per-producer order (per consumer), and the total. */
#define RING_MSGS 400000
typedef struct {
    const char *path;
    int id, producers;
    _Atomic long *consumed;
    long got, bad, disorder;
} ring_job;

static size_t ring_msg(uint8_t *buf, uint32_t producer, uint32_t seq)
{
    size_t len = 8 + (seq * 7u + producer) % 300;
    memcpy(buf, &producer, 4);
    memcpy(buf + 4, &seq, 4);
    for (size_t i = 8; i < len; i++)
        buf[i] = (uint8_t)(seq + i * 31 + producer);
    return len;
}

static void *ring_producer(void *arg)
{
    ring_job *j = arg;
    rj_ring r;
    const char *why;
    if (rj_ring_attach(&r, j->path, &why) < 0)
        return NULL;
    uint8_t buf[512];
    for (uint32_t s = 0; s < RING_MSGS; s++) {
        size_t len = ring_msg(buf, (uint32_t)j->id, s);
        int rc;
        while ((rc = rj_ring_write(&r, buf, len)) == -EAGAIN) {
            rj_ring_commit_writes(&r);
            rj_ring_wait_space(&r, len, 100000000);
        }
        if (rc < 0)
            j->bad++;
        if (s % 64 == 63)
            rj_ring_commit_writes(&r);
    }
    rj_ring_commit_writes(&r);
    rj_ring_close(&r);
    return NULL;
}

static void *ring_consumer(void *arg)
{
    ring_job *j = arg;
    rj_ring r;
    const char *why;
    if (rj_ring_attach(&r, j->path, &why) < 0)
        return NULL;
    uint32_t next[8] = {0};
    uint8_t want[512];
    long total = (long)j->producers * RING_MSGS;
    while (atomic_load(j->consumed) < total) {
        rj_ring_msg m;
        if (rj_ring_peek(&r, &m) < 0) {
            rj_ring_commit_reads(&r);
            rj_ring_wait_data(&r, 10000000);
            continue;
        }
        uint8_t got[512];
        size_t len = m.n1 + m.n2;
        if (len <= sizeof got) {
            memcpy(got, m.p1, m.n1);
            memcpy(got + m.n1, m.p2, m.n2);
        }
        rj_ring_done(&r, &m);
        atomic_fetch_add(j->consumed, 1);
        j->got++;
        uint32_t producer, seq;
        memcpy(&producer, got, 4);
        memcpy(&seq, got + 4, 4);
        if (len > sizeof got || len < 8 || producer >= 8 ||
            ring_msg(want, producer, seq) != len || memcmp(want, got, len) != 0) {
            j->bad++;
            continue;
        }
        if (seq < next[producer])
            j->disorder++;
        next[producer] = seq + 1;
    }
    rj_ring_commit_reads(&r);
    rj_ring_close(&r);
    return NULL;
}

static void ring_stress(int mode, int producers, int consumers)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/rulejet-ring-native-test-%d", (int)getpid());
    unlink(path);
    rj_ring owner;
    CHECK(rj_ring_create(&owner, path, 1 << 16, mode) == 0);
    _Atomic long consumed = 0;
    ring_job jobs[8];
    pthread_t th[8];
    int n = producers + consumers;
    for (int i = 0; i < n; i++) {
        jobs[i] = (ring_job){path, i < producers ? i : i - producers, producers, &consumed, 0, 0, 0};
        pthread_create(&th[i], NULL, i < producers ? ring_producer : ring_consumer, &jobs[i]);
    }
    long got = 0, bad = 0, disorder = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        got += i >= producers ? jobs[i].got : 0;
        bad += jobs[i].bad;
        disorder += jobs[i].disorder;
    }
    CHECK(got == (long)producers * RING_MSGS);
    CHECK(bad == 0);
    CHECK(disorder == 0);
    rj_ring_close(&owner);
    unlink(path);
}

static void test_ring(void)
{
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/rulejet-ring-native-basic-%d", (int)getpid());
    unlink(path);
    rj_ring r, r2;
    const char *why;
    CHECK(rj_ring_create(&r, path, 5000, RJ_RING_SPSC) == 0);
    CHECK(r.capacity == 8192);
    CHECK(rj_ring_create(&r2, path, 5000, RJ_RING_SPSC) == -EEXIST);
    CHECK(rj_ring_write(&r, "x", 8192) == -EMSGSIZE);
    rj_ring_msg m;
    CHECK(rj_ring_peek(&r, &m) == -EAGAIN);
    CHECK(rj_ring_wait_data(&r, 1000000) == -ETIMEDOUT);
    CHECK(rj_ring_write(&r, "abc", 3) == 0);
    CHECK(rj_ring_peek(&r, &m) == -EAGAIN); /* not committed yet */
    rj_ring_commit_writes(&r);
    CHECK(rj_ring_attach(&r2, path, &why) == 0);
    CHECK(rj_ring_peek(&r2, &m) == 0 && m.n1 == 3 && memcmp(m.p1, "abc", 3) == 0);
    rj_ring_done(&r2, &m);
    rj_ring_commit_reads(&r2);
    rj_ring_close(&r2);
    /* A scribbled header is refused. */
    r.sh->capacity ^= 1;
    CHECK(rj_ring_attach(&r2, path, &why) == -EINVAL && why != NULL);
    r.sh->capacity ^= 1;
    rj_ring_close(&r);
    unlink(path);
    ring_stress(RJ_RING_SPSC, 1, 1);
    ring_stress(RJ_RING_MPMC, 2, 2);
    ring_stress(RJ_RING_MPMC, 3, 1);
}

/* CRC-32C: the standard check value; hardware and table agree; chaining. */
static void test_crc32c(void)
{
    CHECK(rj_crc32c(0, "123456789", 9) == 0xE3069283u);
    CHECK(rj_crc32c_table(0, "123456789", 9) == 0xE3069283u);
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)rng();
    for (size_t n = 0; n < sizeof buf; n += 37)
        CHECK(rj_crc32c(0, buf, n) == rj_crc32c_table(0, buf, n));
    CHECK(rj_crc32c(rj_crc32c(0, buf, 300), buf + 300, 700) == rj_crc32c(0, buf, 1000));
}

/* The log: append through the writer thread, close, reopen (recovery
 * finds the end), and read every record back with rj_log_next. */
static void test_log(void)
{
    char dir[] = "/tmp/rulejet-native-log-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    void *b0, *b1;
    CHECK(posix_memalign(&b0, 4096, 1 << 16) == 0 && posix_memalign(&b1, 4096, 1 << 16) == 0);
    rj_log_options o = {.sync = RJ_SYNC_GROUP, .backend = RJ_BACKEND_WRITE, .direct = 1,
                        .strict = 1, .segment_bytes = 1 << 18, .buffers = {b0, b1},
                        .buffer_bytes = 1 << 16};
    for (int round = 0; round < 2; round++) {
        rj_log *l;
        rj_log_recovery rec;
        CHECK(rj_log_open(&l, dir, &o, &rec) == 0);
        CHECK(rj_log_next_seq(l) == (uint64_t)round * 3000);
        for (uint32_t i = 0; i < 3000; i++) {
            uint8_t msg[200];
            uint32_t len = i % 200;
            memset(msg, (int)(i & 0xff), len);
            uint64_t seq;
            int rc;
            while ((rc = rj_log_try_append(l, msg, len, rj_crc32c(0, msg, len), &seq)) == -EAGAIN)
                rj_log_wait_room(l, len);
            CHECK(rc == 0);
        }
        CHECK(rj_log_wait_durable(l, rj_log_next_seq(l)) == 0);
        rj_log_stats st;
        rj_log_get_stats(l, &st);
        CHECK(st.committed == (uint64_t)(round + 1) * 3000 && st.rolls > 0);
        CHECK(rj_log_close(l) == 0);
    }
    /* Read the first segment back. */
    char path[128];
    snprintf(path, sizeof path, "%s/%020d.rjlog", dir, 0);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    uint8_t *seg = malloc(1 << 18);
    CHECK(pread(fd, seg, 1 << 18, 0) == 1 << 18);
    close(fd);
    uint64_t first, bytes, off = RJ_LOG_HEADER, expect;
    CHECK(rj_log_check_header(seg, 1 << 18, &first, &bytes) == NULL && first == 0);
    const uint8_t *payload;
    uint32_t len;
    int bad = 0;
    for (expect = 0; rj_log_next(seg, 1 << 18, &off, expect, &payload, &len) == 1; expect++)
        bad += len != expect % 200 || (len && payload[0] != (uint8_t)(expect & 0xff));
    CHECK(expect > 100 && bad == 0);
    free(seg);
    free(b0);
    free(b1);
    remove_tree(dir);
}

/* ---- the log under injected faults ---- */

enum { F_NONE, F_EIO_WRITE, F_EIO_SYNC, F_TORN_WRITE, F_ENOSPC, F_SHORT_WRITES };
static int fault_mode, fault_at;
static _Atomic int n_pwrite, n_sync, n_falloc;

static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t off)
{
    int k = ++n_pwrite;
    if (fault_mode == F_EIO_WRITE && k == fault_at) {
        errno = EIO;
        return -1;
    }
    if (fault_mode == F_TORN_WRITE && k == fault_at) {
        /* A crash mid-write: the first block(s) reach the disk, then EIO. */
        size_t part = n > 4096 ? (n / 2) & ~(size_t)4095 : 0;
        if (part)
            (void)pwrite(fd, b, part, off);
        errno = EIO;
        return -1;
    }
    if (fault_mode == F_SHORT_WRITES && n > 4096)
        n = 4096; /* the kernel may always write less than asked */
    return pwrite(fd, b, n, off);
}

static int f_fdatasync(int fd)
{
    int k = ++n_sync;
    if (fault_mode == F_EIO_SYNC && k == fault_at) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int f_fallocate(int fd, int mode, off_t off, off_t len)
{
    int k = ++n_falloc;
    if (fault_mode == F_ENOSPC && k == fault_at) {
        errno = ENOSPC;
        return -1;
    }
    return fallocate(fd, mode, off, len);
}

/* fsyncs of the directory whose inode is watched_ino. */
static ino_t watched_ino;
static _Atomic int n_watched_fsync;

static int f_fsync(int fd)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_ino == watched_ino)
        n_watched_fsync++;
    return fsync(fd);
}

static const rj_log_sys faulty = {f_pwrite, f_fdatasync, f_fsync, f_fallocate, ftruncate};

static size_t rec_len(uint64_t seq) { return (size_t)(seq * 13 % 700); }

/* Read the whole log in dir: how many records form the valid prefix from
 * seq 0, and whether each had the right payload. */
static uint64_t read_prefix(const char *dir, int *bad)
{
    uint64_t expect = 0;
    for (;;) {
        char path[256];
        snprintf(path, sizeof path, "%s/%020llu.rjlog", dir, (unsigned long long)expect);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            return expect;
        struct stat st;
        fstat(fd, &st);
        uint8_t *p = malloc((size_t)st.st_size);
        ssize_t got = pread(fd, p, (size_t)st.st_size, 0);
        close(fd);
        uint64_t off = RJ_LOG_HEADER, first = expect;
        const uint8_t *payload;
        uint32_t len;
        while (got == st.st_size &&
               rj_log_next(p, (size_t)st.st_size, &off, expect, &payload, &len) == 1) {
            if (len != rec_len(expect) || (len && payload[len - 1] != (uint8_t)expect))
                (*bad)++;
            expect++;
        }
        free(p);
        if (expect == first)
            return expect;
    }
}

static void log_fault_case(int mode, int at)
{
    char dir[] = "/tmp/rulejet-native-fault-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    void *b0, *b1;
    CHECK(posix_memalign(&b0, 4096, 1 << 15) == 0 && posix_memalign(&b1, 4096, 1 << 15) == 0);
    rj_log_options o = {.sync = RJ_SYNC_GROUP, .backend = RJ_BACKEND_WRITE, .direct = 1,
                        .strict = 1, .segment_bytes = 1 << 16, .buffers = {b0, b1},
                        .buffer_bytes = 1 << 15, .sys = &faulty};
    fault_mode = mode;
    fault_at = at;
    n_pwrite = n_sync = n_falloc = 0;
    rj_log *l;
    rj_log_recovery rec;
    uint64_t acked = 0;
    int failed = 0;
    if (rj_log_open(&l, dir, &o, &rec) == 0) {
        uint8_t msg[700];
        for (uint64_t i = 0; i < 600 && !failed; i++) {
            size_t len = rec_len(i);
            memset(msg, (int)(i & 0xff), len);
            uint64_t seq;
            int rc;
            while ((rc = rj_log_try_append(l, msg, (uint32_t)len,
                                           rj_crc32c(0, msg, len), &seq)) == -EAGAIN)
                if (rj_log_wait_room(l, (uint32_t)len) < 0)
                    break;
            if (rc < 0)
                failed = 1;
            else if (i % 7 == 6) {
                if (rj_log_wait_durable(l, seq + 1) == 0)
                    acked = seq + 1;
                else
                    failed = 1;
            }
        }
        int crc = rj_log_close(l);
        if (mode == F_NONE || mode == F_SHORT_WRITES)
            CHECK(crc == 0 && !failed);
    } else {
        failed = 1;
    }
    if (mode != F_NONE && mode != F_SHORT_WRITES)
        CHECK(failed); /* the injected fault was seen, not swallowed */
    /* Recovery with the real system calls: exactly a prefix that holds
     * every acknowledged record, each byte-exact; and appends work. */
    o.sys = NULL;
    fault_mode = F_NONE;
    CHECK(rj_log_open(&l, dir, &o, &rec) == 0);
    uint64_t next = rj_log_next_seq(l);
    uint8_t one = (uint8_t)next;
    uint64_t seq = 0;
    int rc;
    while ((rc = rj_log_try_append(l, &one, 1, rj_crc32c(0, &one, 1), &seq)) == -EAGAIN)
        rj_log_wait_room(l, 1);
    CHECK(rc == 0 && seq == next);
    CHECK(rj_log_close(l) == 0);
    int bad = 0;
    uint64_t prefix = read_prefix(dir, &bad);
    CHECK(prefix == next + 1);
    CHECK(next >= acked);
    CHECK(bad <= 1); /* the one-byte record appended after recovery has its own length */
    free(b0);
    free(b1);
    remove_tree(dir);
}

typedef struct {
    rj_log *l;
    int n;
} durable_job;

static void *durable_appender(void *arg)
{
    durable_job *j = arg;
    uint8_t m[32] = {0};
    for (int i = 0; i < j->n; i++) {
        uint64_t seq;
        while (rj_log_try_append(j->l, m, sizeof m, rj_crc32c(0, m, sizeof m), &seq) == -EAGAIN)
            rj_log_wait_room(j->l, sizeof m);
        rj_log_wait_durable(j->l, seq + 1);
    }
    return NULL;
}

static void test_log_faults(void)
{
    log_fault_case(F_NONE, 0);
    log_fault_case(F_SHORT_WRITES, 0);
    for (int at = 1; at <= 9; at += 2) {
        log_fault_case(F_EIO_WRITE, at);
        log_fault_case(F_EIO_SYNC, at);
        log_fault_case(F_TORN_WRITE, at);
    }
    log_fault_case(F_ENOSPC, 2); /* the first roll's preallocation */
    /* Group commit: concurrent durable appends share syncs. */
    char dir[] = "/tmp/rulejet-native-group-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    void *b0, *b1;
    CHECK(posix_memalign(&b0, 4096, 1 << 16) == 0 && posix_memalign(&b1, 4096, 1 << 16) == 0);
    rj_log_options o = {.sync = RJ_SYNC_GROUP, .direct = 1, .strict = 1,
                        .segment_bytes = 1 << 20, .buffers = {b0, b1},
                        .buffer_bytes = 1 << 16, .sys = &faulty};
    fault_mode = F_NONE;
    n_sync = 0;
    rj_log *l;
    rj_log_recovery rec;
    CHECK(rj_log_open(&l, dir, &o, &rec) == 0);
    pthread_t th[8];
    durable_job job = {l, 200};
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, durable_appender, &job);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    rj_log_stats st;
    rj_log_get_stats(l, &st);
    CHECK(st.committed == 1600);
    CHECK(st.syncs < 1600 && st.max_batch > 1); /* fewer syncs than durable appends */
    CHECK(rj_log_close(l) == 0);
    free(b0);
    free(b1);
    remove_tree(dir);
}

/* Opening a log makes its directory's entry durable in the parent (a log
 * directory created by the open, lost in a crash, would take with it the
 * records flush had called stable): the parent is fsynced, for new,
 * nested and relative names alike. */
static void test_log_syncs_parent(void)
{
    char base[] = "/tmp/rulejet-native-parent-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    struct stat st;
    CHECK(stat(base, &st) == 0);
    watched_ino = st.st_ino;
    void *b0, *b1;
    CHECK(posix_memalign(&b0, 4096, 1 << 13) == 0 && posix_memalign(&b1, 4096, 1 << 13) == 0);
    rj_log_options o = {.sync = RJ_SYNC_GROUP, .direct = 0, .strict = 1,
                        .segment_bytes = 1 << 16, .buffers = {b0, b1},
                        .buffer_bytes = 1 << 13, .sys = &faulty};
    char dir[96], cwd[4096];
    const char *names[] = {"%s/log", "%s/log//", NULL};
    for (int i = 0; names[i]; i++) {
        snprintf(dir, sizeof dir, names[i], base);
        n_watched_fsync = 0;
        rj_log *l;
        rj_log_recovery rec;
        CHECK(rj_log_open(&l, dir, &o, &rec) == 0);
        CHECK(n_watched_fsync >= 1);
        CHECK(rj_log_close(l) == 0);
    }
    CHECK(getcwd(cwd, sizeof cwd) != NULL && chdir(base) == 0);
    n_watched_fsync = 0;
    rj_log *l;
    rj_log_recovery rec;
    CHECK(rj_log_open(&l, "rel", &o, &rec) == 0);
    CHECK(n_watched_fsync >= 1);
    CHECK(rj_log_close(l) == 0);
    CHECK(chdir(cwd) == 0);
    free(b0);
    free(b1);
    remove_tree(base);
}

static void test_probes(void)
{
    int r = rj_probe_odirect("/tmp");
    CHECK(r == 0 || r == 1);
    CHECK(rj_probe_odirect("/nonexistent-dir-for-probe") < 0);
    r = rj_probe_io_uring();
    CHECK(r == 0 || r == 1);
}

/* The value memo's table: a value is found again only by its exact bytes,
 * two values sharing a set both stay, a third evicts the one used less
 * recently, and an entry's results become the rule bitsets as a cells row
 * would (an AND rule's false conjunct: not possible; an OR rule's true
 * disjunct: any true). */
static void test_value_memo(void)
{
    uint32_t atoms[2] = {0, 1}, pair_rule[3] = {0, 1, 2};
    uint8_t pair_atom[3] = {0, 1, 0}, pair_or[3] = {0, 1, 1};
    uint64_t involved = 7;
    rj_memo_group g = {0, atoms, 2, 3, pair_rule, pair_atom, pair_or, &involved};
    rj_program p;
    memset(&p, 0, sizeof p);
    p.memos = &g;
    p.n_memos = 1;
    p.n_words = 1;
    rj_vmemo *m = rj_vmemo_new(&p);
    CHECK(m != NULL);
    if (!m)
        return;
    const uint8_t *a = (const uint8_t *)"Mozilla/5.0 (X11) bot", *b = (const uint8_t *)"Mozilla/5.0 (X11) bo";
    int64_t at = rj_vmemo_find(m, a, 21);
    CHECK(at < 0);
    uint32_t e = (uint32_t)(-1 - at);
    m->res[e * 2] = 0;     /* atom 0 false: rule 0 (AND) impossible, rule 2 (OR) not any */
    m->res[e * 2 + 1] = 1; /* atom 1 true: rule 1 (OR) any true */
    rj_vmemo_fill(&p, 0, m, e, a, 21);
    CHECK(rj_vmemo_find(m, a, 21) == (int64_t)e);
    CHECK(rj_vmemo_find(m, b, 20) < 0); /* a prefix is another value */
    const uint64_t *bits = m->bits + (size_t)e * RJ_CELL_SETS;
    CHECK((bits[0] & 7) == 6);         /* possible: not rule 0 */
    CHECK((bits[1] & 7) == 6);         /* satisfied: not rule 0 */
    CHECK((bits[2] & 7) == 2);         /* any true: rule 1 */
    CHECK((bits[3] & 7) == 5);         /* all false: rules 0 (not OR) and 2 */
    /* Three values of one set. */
    char text[3][16];
    uint32_t set = UINT32_MAX, found = 0;
    for (uint32_t i = 0; found < 3 && i < 100000; i++) {
        char t[16];
        int n = snprintf(t, sizeof t, "value-%u", i);
        uint32_t s = (uint32_t)(rj_vmemo_hash((const uint8_t *)t, (size_t)n) >> (64 - RJ_VMEMO_SET_BITS));
        if (set == UINT32_MAX)
            set = s;
        if (s == set)
            memcpy(text[found++], t, sizeof t);
    }
    CHECK(found == 3);
    int64_t idx[3];
    for (int i = 0; i < 3; i++) {
        const uint8_t *t = (const uint8_t *)text[i];
        uint32_t n = (uint32_t)strlen(text[i]);
        idx[i] = rj_vmemo_find(m, t, n);
        CHECK(idx[i] < 0);
        idx[i] = -1 - idx[i];
        rj_vmemo_fill(&p, 0, m, (uint32_t)idx[i], t, n);
        if (i == 1) { /* both kept; then the first is used again */
            CHECK(rj_vmemo_find(m, (const uint8_t *)text[0], (uint32_t)strlen(text[0])) == idx[0]);
            CHECK(idx[0] != idx[1]);
        }
    }
    CHECK(idx[2] == idx[1]); /* the third took the less recent way */
    CHECK(rj_vmemo_find(m, (const uint8_t *)text[0], (uint32_t)strlen(text[0])) == idx[0]);
    CHECK(rj_vmemo_find(m, (const uint8_t *)text[2], (uint32_t)strlen(text[2])) == idx[2]);
    CHECK(rj_vmemo_find(m, (const uint8_t *)text[1], (uint32_t)strlen(text[1])) < 0);
    /* A memo whose values do not repeat rests after its trial, then returns. */
    rj_vmemo_delete(m, &p);
    m = rj_vmemo_new(&p);
    CHECK(m != NULL);
    if (!m)
        return;
    uint32_t served = 0;
    for (uint32_t i = 0; i < RJ_VMEMO_TRIAL + RJ_VMEMO_REST + 1; i++)
        served += (uint32_t)rj_vmemo_use(m);
    CHECK(served == RJ_VMEMO_TRIAL + 1);
    rj_vmemo_delete(m, &p);
}

int main(void)
{
    test_kernels_match_reference();
    test_all_byte_values();
    test_find_kernels_agree();
    test_chunk_semantics();
    test_u64vec_overflow();
    test_dispatch();
    test_mapped();
    test_ahead();
    test_probes();
    test_json_values();
    test_json_kernels_agree();
    test_ndjson_lines_agree();
    test_arena_threads();
    test_arena_free_lists();
    test_ring();
    test_crc32c();
    test_log();
    test_log_faults();
    test_log_syncs_parent();
    test_value_memo();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
