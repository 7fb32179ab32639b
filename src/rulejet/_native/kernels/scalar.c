/* scalar.c: the portable kernel, and the truth every SIMD kernel must match.
 *
 * The block mask is built with SWAR over 8-byte words: x ^ broadcast(c)
 * turns matching bytes into zero; "~(((y & 0x7f..) + 0x7f..) | y | 0x7f..)"
 * sets the high bit of exactly the zero bytes (no false positives, unlike
 * the cheaper haszero trick whose borrow can leak into the next byte).
 * Multiplying the isolated high bits by 0x02040810204081 gathers them into
 * the top byte, giving 8 mask bits per word.
 */
#include "kernels.h"

#include <string.h>

#define RJ_KFN static inline
#define RJ_SUFFIX scalar

static inline uint64_t rj_word_mask(uint64_t x, uint64_t bcast)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t y = x ^ bcast;
    uint64_t hi = ~(((y & lo7) + lo7) | y | lo7); /* 0x80 in zero bytes */
    /* Little-endian byte order: byte j of the word is bit 8j+7 here. */
    return ((hi >> 7) * 0x0102040810204080ULL) >> 56;
}

static inline uint64_t rj_block_mask(const uint8_t *p, uint8_t c)
{
    uint64_t bcast = 0x0101010101010101ULL * c, mask = 0;
    for (int w = 0; w < 8; w++) {
        uint64_t x;
        memcpy(&x, p + 8 * w, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        x = __builtin_bswap64(x);
#endif
        mask |= rj_word_mask(x, bcast) << (8 * w);
    }
    return mask;
}

#include "lines_generic.h"

const rj_kernel rj_kernel_scalar = {
    .name = "scalar",
    .newline_ends = rj_newline_ends_scalar,
};
