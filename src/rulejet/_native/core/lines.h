/* lines.h: line indexing of NDJSON buffers. */
#ifndef RJ_LINES_H
#define RJ_LINES_H

#include "../kernels/kernels.h"
#include "u64vec.h"

/* Append to out the start offsets (plus base) of the lines in buf.
 *
 * A line starts at 0 (when at_start and len > 0) and after every '\n'.
 * The position just past a '\n' that ends the buffer is a line start only
 * if more data follows, so it is omitted when at_end is set: a final
 * newline does not create an empty last line, while a missing final
 * newline still counts the last line. '\r' is line content (a "\r\n"
 * line's bytes end with '\r'); empty lines are lines.
 *
 * Returns 0, or -ENOMEM / -EOVERFLOW (out keeps what it had). */
int rj_line_starts(const rj_kernel *k, const uint8_t *buf, size_t len,
                   uint64_t base, int at_start, int at_end, rj_u64vec *out);

#endif
