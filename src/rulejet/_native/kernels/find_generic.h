/* find_generic.h: substring search, written once over one primitive.
 *
 * Including file defines, before including this header:
 *   RJ_KFN, RJ_SUFFIX, RJ_SB_WIDTH  as for json_generic.h.
 *   rj_pair_mask  RJ_KFN uint64_t rj_pair_mask(const uint8_t *a,
 *                 const uint8_t *b, uint8_t x, uint8_t y): bit i set iff
 *                 a[i] == x and b[i] == y, for i < RJ_SB_WIDTH.
 *
 * Candidates are the start positions whose first and last bytes are the
 * needle's, a window of them per compare (Mula's "SIMD-friendly" substring
 * search); only those have their middle compared. No load leaves
 * [h, h + hn): the last window overlaps the one before it, and a haystack
 * too short for one window is copied into a zero-padded buffer. Every
 * kernel returns the first occurrence, so they agree exactly.
 */
#include <string.h>

#ifndef RJ_COPY_SHORT
#define RJ_COPY_SHORT
/* memcpy of n < 2 * RJ_SB_WIDTH bytes as two overlapping fixed-size
 * moves (inlined; a libc call costs more than the search on the short
 * strings events hold). */
static inline __attribute__((always_inline)) void rj_copy_short(uint8_t *d, const uint8_t *s,
                                                                size_t n)
{
    if (RJ_SB_WIDTH >= 32 && n >= 32) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (RJ_SB_WIDTH >= 16 && n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}
#endif

RJ_KFN const uint8_t *RJ_CAT(rj_find_, RJ_SUFFIX)(const uint8_t *h, size_t hn, const uint8_t *n,
                                                 size_t nn)
{
    if (!nn)
        return h;
    if (nn > hn)
        return NULL;
    const size_t W = RJ_SB_WIDTH, starts = hn - nn + 1;
    const uint8_t x = n[0], y = n[nn - 1];
    size_t mid = nn > 2 ? nn - 2 : 0; /* bytes between the first and the last */
    if (starts < W) {
        uint64_t m;
        if (nn <= W) { /* hn < W + nn - 1 <= 2W - 1: it fits */
            uint8_t tmp[2 * RJ_SB_WIDTH] = {0};
            rj_copy_short(tmp, h, hn);
            m = rj_pair_mask(tmp, tmp + nn - 1, x, y) & ((1ULL << starts) - 1);
        } else { /* a needle longer than a window: rare, byte by byte */
            m = 0;
            for (size_t i = 0; i < starts; i++)
                m |= (uint64_t)(h[i] == x && h[i + nn - 1] == y) << i;
        }
        for (; m; m &= m - 1) {
            size_t at = (size_t)__builtin_ctzll(m);
            if (rj_bytes_equal(h + at + 1, n + 1, mid))
                return h + at;
        }
        return NULL;
    }
    for (size_t i = 0;; i += W) {
        if (i > starts - W)
            i = starts - W; /* the last window: positions already seen fail again */
        for (uint64_t m = rj_pair_mask(h + i, h + i + nn - 1, x, y); m; m &= m - 1) {
            size_t at = i + (size_t)__builtin_ctzll(m);
            if (rj_bytes_equal(h + at + 1, n + 1, mid))
                return h + at;
        }
        if (i == starts - W)
            return NULL;
    }
}
