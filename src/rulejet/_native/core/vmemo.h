/* vmemo.h: value memos, the cells' counterpart for string tests that
 * have no order (contains, endsWith, matches).
 *
 * A field such as a user agent holds a few values over and over, and rules
 * test it with contains(): the cells cannot sort those tests into
 * thresholds, so each such rule was visited and its substring searched per
 * event. A value memo remembers, per VM and per distinct plain string of
 * the field, the results of every such atom on it and the four rule
 * bitsets they imply (as a cells row does), so the rules whose atoms are
 * all in cells or memos are decided by bits. A value it does not hold is
 * evaluated once and remembered; values that are not plain strings, longer
 * than RJ_VMEMO_MAX, or fields whose values rarely repeat (see
 * RJ_VMEMO_TRIAL) leave the rules undecided, evaluated as before.
 * RULEJET_VALUE_MEMO=0 turns memos off. Results never depend on them.
 */
#ifndef RJ_VMEMO_H
#define RJ_VMEMO_H

#include <stdint.h>
#include <string.h>

#include "vm.h"

#define RJ_VMEMO_SET_BITS 6 /* 64 sets ... */
#define RJ_VMEMO_WAYS 2     /* ... of 2 values each */
#define RJ_VMEMO_ENTRIES ((1u << RJ_VMEMO_SET_BITS) * RJ_VMEMO_WAYS)
#define RJ_VMEMO_MAX 128      /* bytes: user agents, paths, names */
#define RJ_VMEMO_MAX_ATOMS 64 /* per field */
#define RJ_VMEMO_MIN_RULES 2  /* rules it must settle to pay for its hash */
/* After RJ_VMEMO_TRIAL lookups with fewer than RJ_VMEMO_MIN_HITS hits,
 * a memo rests for RJ_VMEMO_REST events: a miss costs about what a hit
 * saves (values that rarely repeat, such as URL paths, would only pay for
 * hash, compare and copy). */
#define RJ_VMEMO_TRIAL 1024
#define RJ_VMEMO_MIN_HITS (RJ_VMEMO_TRIAL * 3 / 4)
#define RJ_VMEMO_REST 65536

/* Build p->memos from the atoms the cells left to be evaluated alone, and
 * add the rules they complete to p->table_and / table_or (after
 * rj_cells_rule_bits). */
int rj_vmemo_build(rj_program *p);
void rj_vmemo_free_program(rj_program *p);

typedef struct rj_vmemo_entry {
    uint32_t len; /* UINT32_MAX: empty */
    uint8_t text[RJ_VMEMO_MAX];
} rj_vmemo_entry;

/* One memo group's per-VM state. */
typedef struct rj_vmemo {
    rj_memo_trial trial;
    uint32_t awake;          /* serving this event (rj_vmemo_use said so) */
    rj_vmemo_entry *entries; /* set s's ways at s * RJ_VMEMO_WAYS */
    uint8_t *recent;         /* per set: the way hit or filled last */
    uint8_t *res;            /* per entry: the group's atom results (0, 1, 2) */
    uint64_t *bits;          /* per entry: RJ_CELL_SETS bitsets of n_words */
} rj_vmemo;

/* Per-VM state for every memo group of p (NULL when p has none, or on
 * no memory: memos only save time). */
rj_vmemo *rj_vmemo_new(const rj_program *p);
void rj_vmemo_delete(rj_vmemo *m, const rj_program *p);

/* Whether memo m is to serve this event (counts the trial). */
static inline int rj_vmemo_use(rj_vmemo *m)
{
    return rj_memo_trial_use(&m->trial, RJ_VMEMO_TRIAL, RJ_VMEMO_MIN_HITS, RJ_VMEMO_REST);
}

/* Length and three 8-byte samples (head, middle, tail): values that
 * differ elsewhere only share a set (the compare tells them apart). */
static inline uint64_t rj_vmemo_hash(const uint8_t *s, size_t n)
{
    uint64_t a = 0, b = 0, c = 0;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n / 2 - 4, 8);
        memcpy(&c, s + n - 8, 8);
    } else {
        memcpy(&a, s, n);
    }
    uint64_t h = (a ^ n) * 0x9E3779B97F4A7C15ULL ^ (b + c * 0xFF51AFD7ED558CCDULL);
    return h * 0xC4CEB9FE1A85EC53ULL;
}

/* s and t equal over n bytes (n <= RJ_VMEMO_MAX): 8 at a time, the last
 * word overlapping (a libc call costs more on these short values). */
static inline int rj_vmemo_equal(const uint8_t *s, const uint8_t *t, size_t n)
{
    uint64_t x, y;
    if (n < 8)
        return memcmp(s, t, n) == 0;
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, s + i, 8);
        memcpy(&y, t + i, 8);
        if (x != y)
            return 0;
    }
    memcpy(&x, s + n - 8, 8);
    memcpy(&y, t + n - 8, 8);
    return x == y;
}

/* The entry holding s[0..n) (n <= RJ_VMEMO_MAX), or, when none does,
 * -1 - the entry to fill for it (its results then go to res and
 * rj_vmemo_fill completes it). Inline: one call per event and memo. */
static inline int64_t rj_vmemo_find(rj_vmemo *m, const uint8_t *s, uint32_t n)
{
    uint32_t set = (uint32_t)(rj_vmemo_hash(s, n) >> (64 - RJ_VMEMO_SET_BITS));
    rj_vmemo_entry *e = m->entries + (size_t)set * RJ_VMEMO_WAYS;
    for (uint32_t w = 0; w < RJ_VMEMO_WAYS; w++) {
        if (e[w].len == n && rj_vmemo_equal(e[w].text, s, n)) {
            m->recent[set] = (uint8_t)w;
            m->trial.hits++;
            return (int64_t)set * RJ_VMEMO_WAYS + w;
        }
    }
    /* The way not used last makes room (two hot values in one set stay). */
    uint32_t w = m->recent[set] ^ 1u;
    m->recent[set] = (uint8_t)w;
    return -1 - ((int64_t)set * RJ_VMEMO_WAYS + w);
}

/* Entry `at` now holds s[0..n): its results (already in m->res) become
 * its rule bitsets. */
void rj_vmemo_fill(const rj_program *p, uint32_t gi, rj_vmemo *m, uint32_t at, const uint8_t *s,
                   uint32_t n);

#endif
