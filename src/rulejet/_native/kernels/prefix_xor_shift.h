/* prefix_xor_shift.h: rj_prefix_xor without a carry-less multiply, for the
 * kernels whose ISA lacks one. After the six steps bit i holds the xor of
 * bits 0..i (each step doubles the span already folded in). Included once
 * per kernel file. */
static inline uint64_t rj_prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}
