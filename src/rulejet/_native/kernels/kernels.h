/* kernels.h: the per-ISA kernel table shared by core and kernels.
 *
 * Each ISA file (scalar.c, sse2.c, avx2.c) defines one rj_kernel that
 * fills every slot. Kernels must return exactly what the scalar kernel
 * returns for every input; tests/test_kernels.py checks that.
 * Kernels never allocate, never touch Python and never read outside
 * [p, p + n).
 */
#ifndef RJ_KERNELS_H
#define RJ_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/json.h"

/* Masks of one 64-byte block, bit i for byte i (see json_generic.h). */
typedef struct rj_blockmasks {
    uint64_t quote, bslash, open, close;
} rj_blockmasks;

typedef struct rj_kernel {
    const char *name;
    /* Write base + i + 1 for every byte p[i] == '\n' into out, in order,
     * and return how many were written. The caller guarantees that out
     * has room for n entries (one per byte, the worst case). */
    size_t (*newline_ends)(const uint8_t *p, size_t n, uint64_t base,
                           uint64_t *out);
    /* Extract the values of ps's paths from the JSON document at
     * base[start, end) into out[0 .. ps->n_slots). Loads may read up to
     * base + limit (limit >= end; pass end when nothing follows). Offsets
     * in out and err are from base. 0, or RJ_EJSON / RJ_ETOOBIG with *err
     * set. */
    int (*json_extract)(const rj_pathset *ps, rj_scan_scratch *scratch,
                        const uint8_t *base, size_t start, size_t end, size_t limit,
                        rj_value *out, rj_json_err *err);
    /* json_extract for the NDJSON line at base + start whose end is not
     * yet known (len: the buffer's end): 0 with *line_end at its '\n' (or
     * len), or RJ_EJSON without an error set (blank, malformed or over
     * 4 GiB: find the newline and call json_extract for the error). */
    int (*json_extract_line)(const rj_pathset *ps, rj_scan_scratch *scratch,
                             const uint8_t *base, size_t start, size_t len,
                             rj_value *out, size_t *line_end);
    /* Validate base[start, end) as one RFC 8259 document: 0, or RJ_EJSON /
     * RJ_EDEPTH with *err set. */
    int (*json_validate)(const uint8_t *base, size_t start, size_t end,
                         rj_json_err *err);
    /* The first occurrence of n[0..nn) in h[0..hn), or NULL (h if nn is 0). */
    const uint8_t *(*find)(const uint8_t *h, size_t hn, const uint8_t *n, size_t nn);
} rj_kernel;

extern const rj_kernel rj_kernel_scalar;
#if defined(__x86_64__) || defined(__i386__)
#define RJ_HAVE_X86_KERNELS 1
extern const rj_kernel rj_kernel_sse2;
extern const rj_kernel rj_kernel_avx2;
#endif

#endif
