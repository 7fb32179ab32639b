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

#include "lines_generic.h"

const rj_kernel rj_kernel_sse2 = {
    .name = "sse2",
    .newline_ends = rj_newline_ends_sse2,
};
#endif
