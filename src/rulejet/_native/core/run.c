/* run.c: one partition of a rule run: find lines, extract the fields
 * every rule reads (one pass per event), evaluate all rules, count.
 *
 * An event that matches nothing leaves no trace but counters; one that
 * matches a collected rule leaves a 32-byte record pointing at its line
 * in the input. Nothing is allocated per event: the value row, the VM
 * stack and its scratch are set up once per call.
 */
#include "run.h"
#include "../kernels/kernels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int rj_run_result_init(rj_run_result *r, uint32_t n_rules, size_t max_errors)
{
    memset(r, 0, sizeof *r);
    r->counts = calloc(n_rules ? n_rules : 1, sizeof(uint64_t));
    r->err_counts = calloc(n_rules ? n_rules : 1, sizeof(uint64_t));
    r->errors = malloc((max_errors ? max_errors : 1) * sizeof(rj_line_error));
    r->max_errors = max_errors;
    if (!r->counts || !r->err_counts || !r->errors) {
        rj_run_result_free(r);
        return -ENOMEM;
    }
    return 0;
}

void rj_run_result_free(rj_run_result *r)
{
    free(r->counts);
    free(r->err_counts);
    free(r->errors);
    free(r->matches);
    free(r->match_rules);
    memset(r, 0, sizeof *r);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem, uint64_t *count)
{
    if (need <= *cap)
        return 0;
    (*count)++;
    size_t c = *cap ? *cap * 2 : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

int rj_run_lines(const rj_program *prog, const rj_kernel *k, const uint8_t *buf, size_t len,
                 uint64_t first_line, const uint8_t *collect, rj_ahead *ahead, size_t ahead_off,
                 rj_run_result *out)
{
    const rj_pathset *ps = prog->ps;
    uint32_t nr = prog->n_rules;
    rj_vm vm;
    rj_scan_scratch scratch = {0};
    rj_value *row = malloc((ps->n_slots ? ps->n_slots : 1) * sizeof(rj_value));
    uint32_t *matched = malloc((nr ? nr : 1) * sizeof(uint32_t));
    /* The rules whose errors are recorded, and their error counts before
     * each event (a rule errs at most once per event). */
    uint32_t *watch = malloc((nr ? nr : 1) * sizeof(uint32_t)), n_watch = 0;
    uint64_t *before = malloc((nr ? nr : 1) * sizeof(uint64_t));
    for (uint32_t r = 0; collect && r < nr; r++)
        if (collect[r] & RJ_COLLECT_ERRORS)
            watch[n_watch++] = r;
    int rc = (row && matched && watch && before) ? rj_vm_init(&vm, prog) : -ENOMEM;
    if (rc == 0 && (rc = rj_scratch_init(&scratch, ps)) < 0)
        rj_vm_free(&vm);
    vm.kernel = k; /* one kernel for the whole run */
    if (rc < 0) {
        free(row);
        free(matched);
        free(watch);
        free(before);
        return rc;
    }
    uint64_t line = first_line;
    /* Where the scan is, for the helper faulting the input in ahead of it
     * (every MiB: a relaxed store, nothing more). */
    size_t p = 0, next_note = ahead ? 0 : SIZE_MAX;
    while (p < len) {
        if (p >= next_note) {
            rj_ahead_note(ahead, ahead_off + p);
            next_note = p + ((size_t)1 << 20);
        }
        size_t end; /* the line's '\n', or len: the last line has none */
        rj_json_err jerr;
        int found = rj_ndjson_line(k, ps, &scratch, buf, p, len, row, &end, &jerr);
        out->lines++;
        if (found == RJ_LINE_BLANK) {
            out->blank++;
        } else {
            if (found == RJ_LINE_MALFORMED) {
                out->bad_lines++;
                if (out->n_errors < out->max_errors)
                    out->errors[out->n_errors++] =
                        (rj_line_error){line, jerr.offset, jerr.offset - p + 1, jerr.msg};
            } else {
                for (uint32_t w = 0; w < n_watch; w++)
                    before[w] = out->err_counts[watch[w]];
                uint32_t n = rj_vm_eval_event(&vm, row, buf, matched, out->err_counts);
                uint32_t wanted = 0;
                for (uint32_t i = 0; i < n; i++) {
                    out->counts[matched[i]]++;
                    wanted += collect && (collect[matched[i]] & RJ_COLLECT_MATCHES);
                }
                for (uint32_t w = 0; w < n_watch; w++)
                    wanted += out->err_counts[watch[w]] != before[w];
                if (wanted) {
                    if ((rc = grow((void **)&out->matches, &out->cap_matches, out->n_matches + 1,
                                   sizeof(rj_match), &out->allocations)) ||
                        (rc = grow((void **)&out->match_rules, &out->cap_match_rules,
                                   out->n_match_rules + wanted, sizeof(uint32_t),
                                   &out->allocations)))
                        break;
                    rj_match *m = &out->matches[out->n_matches++];
                    m->line = line;
                    m->offset = p;
                    m->length = (uint32_t)(end - p);
                    m->rules_off = (uint32_t)out->n_match_rules;
                    m->rules_len = wanted;
                    for (uint32_t i = 0; i < n; i++)
                        if (collect[matched[i]] & RJ_COLLECT_MATCHES)
                            out->match_rules[out->n_match_rules++] = matched[i];
                    for (uint32_t w = 0; w < n_watch; w++)
                        if (out->err_counts[watch[w]] != before[w])
                            out->match_rules[out->n_match_rules++] = nr + watch[w];
                }
            }
        }
        line++;
        p = end < len ? end + 1 : len;
    }
    out->allocations += atomic_load(&vm.scratch.chunks) - 1; /* the first is set-up */
    rj_vm_free(&vm);
    rj_scratch_free(&scratch);
    free(row);
    free(matched);
    free(watch);
    free(before);
    return rc;
}
