/* run.h: the rule-engine loop over an NDJSON buffer (one partition). */
#ifndef RJ_RUN_H
#define RJ_RUN_H

#include "ahead.h"
#include "vm.h"

struct rj_kernel;

typedef struct rj_match {
    uint64_t line;   /* 1-based, counted from the partition's first_line */
    uint64_t offset; /* of the line, from the buffer start */
    uint32_t length; /* of the line, without its newline */
    uint32_t rules_off, rules_len; /* into rj_run_result.match_rules */
} rj_match;

typedef struct rj_run_result {
    uint64_t lines, blank, bad_lines;
    uint64_t *counts;     /* per rule: matches */
    uint64_t *err_counts; /* per rule: evaluations that ended in an error */
    rj_line_error *errors; /* the first max_errors malformed lines */
    size_t n_errors, max_errors;
    rj_match *matches;    /* lines matching a collected rule */
    size_t n_matches, cap_matches;
    uint32_t *match_rules;
    size_t n_match_rules, cap_match_rules;
    /* Heap or mmap allocations made inside the loop (after set-up): match
     * records growing, scratch chunks beyond the first. Not per event:
     * it stays flat as inputs grow. */
    uint64_t allocations;
} rj_run_result;

/* collect[r] flags: a match record for each event rule r matches (actions,
 * routes, scan); and one for each event where rule r's evaluation ended in
 * an error, naming it as rule n_rules + r (JSONLogic rules on the VM: the
 * events their translation could not decide). */
#define RJ_COLLECT_MATCHES 1
#define RJ_COLLECT_ERRORS 2

/* Evaluate every line of buf. collect (NULL: nothing) asks for match
 * records (the flags above); counts are always kept. first_line
 * numbers the first line. ahead (NULL: none) is a readahead helper over a
 * buffer in which buf starts at ahead_off: the scan tells it where it is.
 * 0, or -ENOMEM (the result holds what was done). Allocates only at start
 * and when match records grow. */
int rj_run_lines(const rj_program *prog, const struct rj_kernel *k, const uint8_t *buf,
                 size_t len, uint64_t first_line, const uint8_t *collect, rj_ahead *ahead,
                 size_t ahead_off, rj_run_result *out);

int rj_run_result_init(rj_run_result *r, uint32_t n_rules, size_t max_errors);
void rj_run_result_free(rj_run_result *r);

#endif
