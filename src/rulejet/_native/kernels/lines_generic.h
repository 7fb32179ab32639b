/* lines_generic.h: the newline scan, written once over one primitive.
 *
 * Including file defines, before including this header:
 *   RJ_KFN         attributes for every function here (static + target).
 *   RJ_SUFFIX      the ISA name used to build symbol names.
 *   rj_block_mask  RJ_KFN uint64_t rj_block_mask(const uint8_t *p, uint8_t c):
 *                  bit i set iff p[i] == c, for the 64 bytes at p.
 *
 * The scan walks 64-byte blocks; each set bit in a block's mask is one
 * newline. Bits are peeled lowest-first with count-trailing-zeros and
 * "mask &= mask - 1" (clears the lowest set bit), so offsets come out in
 * increasing order. The last partial block is copied into a zero-padded
 * stack buffer so no kernel ever loads past p + n; padding bytes are 0,
 * never '\n', so they add no bits.
 */
#include <string.h>

#ifndef RJ_CAT
#define RJ_CAT2(a, b) a##b
#define RJ_CAT(a, b) RJ_CAT2(a, b)
#endif

RJ_KFN size_t RJ_CAT(rj_emit_, RJ_SUFFIX)(uint64_t mask, uint64_t at,
                                          uint64_t *out, size_t k)
{
    while (mask) {
        out[k++] = at + (uint64_t)__builtin_ctzll(mask) + 1;
        mask &= mask - 1;
    }
    return k;
}

RJ_KFN size_t RJ_CAT(rj_newline_ends_, RJ_SUFFIX)(const uint8_t *p, size_t n,
                                                  uint64_t base, uint64_t *out)
{
    size_t i = 0, k = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t mask = rj_block_mask(p + i, '\n');
        if (mask)
            k = RJ_CAT(rj_emit_, RJ_SUFFIX)(mask, base + i, out, k);
    }
    if (i < n) {
        uint8_t tail[64];
        memset(tail, 0, sizeof tail);
        memcpy(tail, p + i, n - i);
        k = RJ_CAT(rj_emit_, RJ_SUFFIX)(rj_block_mask(tail, '\n'), base + i,
                                        out, k);
    }
    return k;
}
