/* crc32c.h: CRC-32C (Castagnoli), the checksum of the durable log.
 *
 * Uses the SSE4.2 crc32 instruction (8 bytes a step) when the CPU has it,
 * else a slicing-by-8 table. Both give identical results (tested). */
#ifndef RJ_CRC32C_H
#define RJ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) with n bytes; the result is the finished CRC of
 * everything so far, so calls chain: crc(a + b) == rj_crc32c(rj_crc32c(0, a), b). */
uint32_t rj_crc32c(uint32_t crc, const void *data, size_t n);
uint32_t rj_crc32c_table(uint32_t crc, const void *data, size_t n);
/* 1 if the hardware path is in use. */
int rj_crc32c_hw(void);

#endif
