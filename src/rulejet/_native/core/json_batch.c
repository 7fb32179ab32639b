/* json_batch.c: the NDJSON loop, values kept in native memory.
 *
 * One row per line, aligned with the line numbers; a malformed line gets
 * an all-MISSING row and an error record and the loop goes on. The batch
 * owns its arrays and reuses them across calls (rj_batch_clear), so the
 * steady state allocates nothing per line.
 */
#include "json.h"
#include "../kernels/kernels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int reserve_rows(rj_batch *b, size_t slots, size_t need)
{
    if (need <= b->cap_rows)
        return 0;
    size_t cap = b->cap_rows ? b->cap_rows : 1024;
    while (cap < need)
        cap *= 2;
    size_t width = slots ? slots : 1;
    if (cap > SIZE_MAX / sizeof(rj_value) / width)
        return -ENOMEM;
    rj_value *v = realloc(b->values, cap * width * sizeof(rj_value));
    if (!v)
        return -ENOMEM;
    b->values = v;
    b->cap_rows = cap;
    return 0;
}

static int add_error(rj_batch *b, uint64_t line, uint64_t offset, uint64_t column, const char *msg)
{
    if (b->n_errors == b->cap_errors) {
        size_t cap = b->cap_errors ? b->cap_errors * 2 : 16;
        rj_line_error *e = realloc(b->errors, cap * sizeof *e);
        if (!e)
            return -ENOMEM;
        b->errors = e;
        b->cap_errors = cap;
    }
    b->errors[b->n_errors++] = (rj_line_error){line, offset, column, msg};
    return 0;
}

int rj_batch_reject_row(rj_batch *b, size_t slots, size_t row, uint64_t line, uint64_t offset,
                        uint64_t column, const char *msg)
{
    if (add_error(b, line, offset, column, msg))
        return -ENOMEM;
    memset(b->values + row * slots, 0, slots * sizeof *b->values);
    /* Keep the errors in line order: move the new one back into place. */
    for (size_t i = b->n_errors - 1; i > 0 && b->errors[i - 1].line > line; i--) {
        rj_line_error t = b->errors[i - 1];
        b->errors[i - 1] = b->errors[i];
        b->errors[i] = t;
    }
    return 0;
}

/* The usual line is scanned once, its end found by the scan that reads
 * it (a separate newline pass would read every byte again); a malformed
 * one is scanned again between known ends, which gives its error and
 * position exactly as a single document's. */
int rj_ndjson_line(const rj_kernel *k, const rj_pathset *ps, rj_scan_scratch *scratch,
                   const uint8_t *buf, size_t p, size_t len, rj_value *row, size_t *end,
                   rj_json_err *err)
{
    size_t q = p;
    while (q < len && (buf[q] == ' ' || buf[q] == '\t' || buf[q] == '\r'))
        q++;
    if (q == len || buf[q] == '\n') {
        *end = q;
        return RJ_LINE_BLANK;
    }
    if (k->json_extract_line(ps, scratch, buf, p, len, row, end) == 0)
        return RJ_LINE_VALUES;
    const uint8_t *nl = memchr(buf + q, '\n', len - q);
    *end = nl ? (size_t)(nl - buf) : len;
    return k->json_extract(ps, scratch, buf, p, *end, len, row, err) ? RJ_LINE_MALFORMED
                                                                      : RJ_LINE_VALUES;
}

int rj_json_extract_lines(const rj_kernel *k, const rj_pathset *ps, rj_scan_scratch *scratch,
                          const uint8_t *buf, size_t len, size_t *pos, uint64_t *line_no,
                          size_t max_rows, rj_batch *b)
{
    size_t slots = ps->n_slots, p = *pos;
    size_t stop_rows = b->rows + max_rows;
    int rc = 0;
    while (p < len && b->rows < stop_rows) {
        if ((rc = reserve_rows(b, slots, b->rows + 1)))
            break;
        rj_value *row = b->values + b->rows * slots;
        rj_json_err err;
        size_t end;
        switch (rj_ndjson_line(k, ps, scratch, buf, p, len, row, &end, &err)) {
        case RJ_LINE_BLANK:
            memset(row, 0, slots * sizeof *row);
            b->blank++;
            break;
        case RJ_LINE_MALFORMED:
            memset(row, 0, slots * sizeof *row);
            rc = add_error(b, *line_no, err.offset, err.offset - p + 1, err.msg);
            break;
        }
        if (rc)
            break;
        b->rows++;
        (*line_no)++;
        p = end < len ? end + 1 : len;
    }
    *pos = p;
    return rc;
}

void rj_batch_clear(rj_batch *b)
{
    b->rows = 0;
    b->n_errors = 0;
    b->blank = 0;
}

void rj_batch_free(rj_batch *b)
{
    free(b->values);
    free(b->errors);
    memset(b, 0, sizeof *b);
}
