/* test_core.c: native tests of the portable core and every kernel, built
 * without Python by scripts/native-tests.sh (normally under ASan + UBSan).
 *
 * Buffers are malloc'ed at their exact size so AddressSanitizer flags any
 * kernel that reads past the end. Prints "N passed, N failed".
 */
#define _GNU_SOURCE
#include "../../src/rulejet/_native/core/cpu.h"
#include "../../src/rulejet/_native/core/dispatch.h"
#include "../../src/rulejet/_native/core/lines.h"
#include "../../src/rulejet/_native/core/mapped.h"
#include "../../src/rulejet/_native/core/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

    unlink(path);
    snprintf(path, sizeof path, "%s/empty", dir);
    unlink(path);
    CHECK(rmdir(dir) == 0);
}

static void test_probes(void)
{
    int r = rj_probe_odirect("/tmp");
    CHECK(r == 0 || r == 1);
    CHECK(rj_probe_odirect("/nonexistent-dir-for-probe") < 0);
    r = rj_probe_io_uring();
    CHECK(r == 0 || r == 1);
}

int main(void)
{
    test_kernels_match_reference();
    test_all_byte_values();
    test_chunk_semantics();
    test_u64vec_overflow();
    test_dispatch();
    test_mapped();
    test_probes();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
