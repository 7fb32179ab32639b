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
            memcpy(tmp, h, hn);
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
