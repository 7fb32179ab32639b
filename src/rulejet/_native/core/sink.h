/* sink.h: writing matched lines out of the input with vectored writes. */
#ifndef RJ_SINK_H
#define RJ_SINK_H

#include <stddef.h>
#include <stdint.h>

/* Write each line base[off, off + len) followed by "\n" to fd, straight
 * from the input buffer (no copy): writev in batches of up to IOV_MAX
 * vectors, resuming after short writes and EINTR. spans holds n pairs
 * (offset, length). 0 or -errno. */
int rj_write_lines(int fd, const uint8_t *base, const uint64_t *spans, size_t n);

#endif
