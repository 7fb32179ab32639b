/* lines.c: chunked driver around a kernel's newline scan.
 *
 * Kernels need room for one offset per byte in the worst case; reserving
 * that for a whole 400 MB buffer would be 3.2 GB, so the buffer is fed to
 * the kernel in RJ_LINES_CHUNK pieces, reserving a chunk's worst case
 * before each. Never reads outside [buf, buf + len).
 */
#include "lines.h"

#include <errno.h>
#include <stdlib.h>

#define RJ_LINES_CHUNK ((size_t)1 << 16)

int rj_u64vec_reserve(rj_u64vec *v, size_t extra)
{
    if (extra <= v->cap - v->len)
        return 0;
    if (extra > SIZE_MAX / sizeof(uint64_t) - v->len)
        return -EOVERFLOW;
    size_t need = v->len + extra;
    size_t cap = v->cap ? v->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 / sizeof(uint64_t) ? need : cap * 2;
    uint64_t *p = realloc(v->data, cap * sizeof(uint64_t));
    if (!p)
        return -ENOMEM;
    v->data = p;
    v->cap = cap;
    return 0;
}

void rj_u64vec_free(rj_u64vec *v)
{
    free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

int rj_line_starts(const rj_kernel *k, const uint8_t *buf, size_t len,
                   uint64_t base, int at_start, int at_end, rj_u64vec *out)
{
    size_t old_len = out->len;
    int rc;
    if (at_start && len > 0) {
        if ((rc = rj_u64vec_reserve(out, 1)) < 0)
            return rc;
        out->data[out->len++] = base;
    }
    for (size_t i = 0; i < len; i += RJ_LINES_CHUNK) {
        size_t n = len - i < RJ_LINES_CHUNK ? len - i : RJ_LINES_CHUNK;
        if ((rc = rj_u64vec_reserve(out, n)) < 0) {
            out->len = old_len;
            return rc;
        }
        out->len += k->newline_ends(buf + i, n, base + i, out->data + out->len);
    }
    if (at_end && out->len > old_len && len > 0 &&
        out->data[out->len - 1] == base + len)
        out->len--;
    return 0;
}
