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
#define RJ_KFN_OUTLINE static __attribute__((noinline)) /* kept out of the hot loops */

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

/* Bytes below 0x20: for b < 0x80, (b & 0x7f) + 0x60 has its high bit set
 * exactly when b >= 0x20 (no carry leaves the byte: 0x7f + 0x60 < 0x100). */
static inline uint64_t rj_word_lt20(uint64_t x)
{
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL, hi = 0x8080808080808080ULL;
    uint64_t m = ~((x & lo7) + 0x6060606060606060ULL) & ~x & hi;
    return ((m >> 7) * 0x0102040810204080ULL) >> 56;
}

static inline uint64_t rj_word_high(uint64_t x)
{
    uint64_t m = x & 0x8080808080808080ULL;
    return ((m >> 7) * 0x0102040810204080ULL) >> 56;
}

static inline uint64_t rj_load_word(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

#define RJ_SB_WIDTH 8

static inline uint64_t rj_string_bits(const uint8_t *p, uint64_t *high)
{
    uint64_t x = rj_load_word(p);
    *high = rj_word_high(x);
    return rj_word_mask(x, 0x2222222222222222ULL) | rj_word_mask(x, 0x5c5c5c5c5c5c5c5cULL) |
           rj_word_lt20(x);
}

static inline uint64_t rj_string_stops(const uint8_t *p)
{
    uint64_t x = rj_load_word(p);
    return rj_word_mask(x, 0x2222222222222222ULL) | rj_word_mask(x, 0x5c5c5c5c5c5c5c5cULL) |
           rj_word_lt20(x) | rj_word_high(x);
}

/* '{' (0x7b) and '[' (0x5b) differ only in bit 0x20, as do '}' and ']':
 * OR-ing 0x20 into every byte lets one compare find both. */
static inline void rj_classify(const uint8_t *p, rj_blockmasks *m)
{
    const uint64_t q = 0x2222222222222222ULL, b = 0x5c5c5c5c5c5c5c5cULL;
    const uint64_t o = 0x7b7b7b7b7b7b7b7bULL, c = 0x7d7d7d7d7d7d7d7dULL;
    const uint64_t b20 = 0x2020202020202020ULL;
    m->quote = m->bslash = m->open = m->close = 0;
    for (int w = 0; w < 8; w++) {
        uint64_t x = rj_load_word(p + 8 * w);
        m->quote |= rj_word_mask(x, q) << (8 * w);
        m->bslash |= rj_word_mask(x, b) << (8 * w);
        m->open |= rj_word_mask(x | b20, o) << (8 * w);
        m->close |= rj_word_mask(x | b20, c) << (8 * w);
    }
}

/* rj_classify for the RJ_SB_WIDTH bytes at p (small containers). */
static inline void rj_small_classify(const uint8_t *p, rj_blockmasks *m)
{
    uint64_t x = rj_load_word(p), x20 = x | 0x2020202020202020ULL;
    m->quote = rj_word_mask(x, 0x2222222222222222ULL);
    m->bslash = rj_word_mask(x, 0x5c5c5c5c5c5c5c5cULL);
    m->open = rj_word_mask(x20, 0x7b7b7b7b7b7b7b7bULL);
    m->close = rj_word_mask(x20, 0x7d7d7d7d7d7d7d7dULL);
}

#include "prefix_xor_shift.h"

static inline uint64_t rj_pair_mask(const uint8_t *a, const uint8_t *b, uint8_t x, uint8_t y)
{
    return rj_word_mask(rj_load_word(a), 0x0101010101010101ULL * x) &
           rj_word_mask(rj_load_word(b), 0x0101010101010101ULL * y);
}

#include "lines_generic.h"
#include "json_generic.h"
#include "find_generic.h"

const rj_kernel rj_kernel_scalar = {
    .name = "scalar",
    .newline_ends = rj_newline_ends_scalar,
    .json_extract = rj_json_extract_scalar,
    .json_extract_line = rj_json_extract_line_scalar,
    .json_validate = rj_json_validate_scalar,
    .find = rj_find_scalar,
};
