/* sse2.c: 16-byte SSE2 kernel (every x86-64 CPU has it).
 *
 * Four 16-byte compares per 64-byte block; _mm_movemask_epi8 turns each
 * compare into 16 mask bits which are stacked into one 64-bit mask.
 */
#include "kernels.h"

#ifdef RJ_HAVE_X86_KERNELS
#include <emmintrin.h>
#include <string.h>

#define RJ_KFN static inline __attribute__((target("sse2")))
#define RJ_SUFFIX sse2
#define RJ_KFN_OUTLINE static __attribute__((target("sse2"), noinline)) /* kept out of the hot loops */

RJ_KFN uint64_t rj_block_mask(const uint8_t *p, uint8_t c)
{
    const __m128i needle = _mm_set1_epi8((char)c);
    uint64_t mask = 0;
    for (int q = 0; q < 4; q++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * q));
        uint64_t m = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, needle));
        mask |= m << (16 * q);
    }
    return mask;
}

#define RJ_SB_WIDTH 16

RJ_KFN uint64_t rj_string_bits(const uint8_t *p, uint64_t *high)
{
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* Signed v < 0x20 also holds for bytes >= 0x80; drop those. */
    uint32_t hi = (uint32_t)_mm_movemask_epi8(v);
    uint32_t m = (uint32_t)_mm_movemask_epi8(_mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b)), _mm_cmplt_epi8(v, sp)));
    *high = hi;
    return m & ~hi;
}

RJ_KFN uint64_t rj_string_stops(const uint8_t *p)
{
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    /* Signed v < 0x20 holds for bytes < 0x20 and >= 0x80: both count. */
    return (uint32_t)_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, b)), _mm_cmplt_epi8(v, sp)));
}

/* '{'/'[' and '}'/']' differ only in bit 0x20 (see scalar.c). */
RJ_KFN void rj_classify(const uint8_t *p, rj_blockmasks *m)
{
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
    const __m128i o = _mm_set1_epi8('{'), c = _mm_set1_epi8('}'), b20 = _mm_set1_epi8(0x20);
    m->quote = m->bslash = m->open = m->close = 0;
    for (int i = 0; i < 4; i++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
        __m128i v20 = _mm_or_si128(v, b20);
        m->quote |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q)) << (16 * i);
        m->bslash |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b)) << (16 * i);
        m->open |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, o)) << (16 * i);
        m->close |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, c)) << (16 * i);
    }
}

/* rj_classify for the RJ_SB_WIDTH bytes at p (small containers). */
RJ_KFN void rj_small_classify(const uint8_t *p, rj_blockmasks *m)
{
    const __m128i q = _mm_set1_epi8('"'), b = _mm_set1_epi8('\\');
    const __m128i o = _mm_set1_epi8('{'), c = _mm_set1_epi8('}');
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i v20 = _mm_or_si128(v, _mm_set1_epi8(0x20));
    m->quote = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, q));
    m->bslash = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v, b));
    m->open = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, o));
    m->close = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v20, c));
}

/* SSE2 has no carry-less multiply: the shift ladder instead. */
#include "prefix_xor_shift.h"

RJ_KFN uint64_t rj_pair_mask(const uint8_t *a, const uint8_t *b, uint8_t x, uint8_t y)
{
    __m128i va = _mm_loadu_si128((const __m128i *)(const void *)a);
    __m128i vb = _mm_loadu_si128((const __m128i *)(const void *)b);
    return (uint32_t)_mm_movemask_epi8(
        _mm_and_si128(_mm_cmpeq_epi8(va, _mm_set1_epi8((char)x)), _mm_cmpeq_epi8(vb, _mm_set1_epi8((char)y))));
}

#include "lines_generic.h"
#include "json_generic.h"
#include "find_generic.h"

const rj_kernel rj_kernel_sse2 = {
    .name = "sse2",
    .newline_ends = rj_newline_ends_sse2,
    .json_extract = rj_json_extract_sse2,
    .json_extract_line = rj_json_extract_line_sse2,
    .json_validate = rj_json_validate_sse2,
    .find = rj_find_sse2,
};
#endif
