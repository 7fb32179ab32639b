/* vmemo.c: value memos (see vmemo.h): which atoms and rules a field's
 * memo covers, and the per-VM table of remembered values. */
#include "vmemo.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Can atom a go into its field's memo? Its result must depend only on
 * the field's string value, and be worth remembering (a constant holding
 * a byte JSON escapes settles a plain value at once). */
static int memo_atom(const rj_program *p, const rj_atom *a)
{
    if (a->cells >= 0)
        return 0;
    if (a->op == RJ_OP_F_MATCHES)
        return 1;
    if (a->op != RJ_OP_F_CONTAINS && a->op != RJ_OP_F_ENDS && a->op != RJ_OP_F_STARTS &&
        a->op != RJ_OP_F_EQ && a->op != RJ_OP_F_NE)
        return 0;
    return a->arg >= 0 && (uint32_t)a->arg < p->n_consts &&
           p->consts[a->arg].type == RJ_C_STR && a->fast == RJ_FAST_STR;
}

static void free_group(rj_memo_group *g)
{
    free(g->atoms);
    free(g->pair_rule);
    free(g->pair_atom);
    free(g->pair_or);
    free(g->involved);
    free(g->note);
}

void rj_vmemo_free_program(rj_program *p)
{
    for (uint32_t i = 0; p->memos && i < p->n_memos; i++)
        free_group(&p->memos[i]);
    free(p->memos);
    p->memos = NULL;
    p->n_memos = 0;
}

/* Rules whose atoms a memo may settle: those the cells' bits can decide
 * (AND, OR) and those whose atoms are necessary conjuncts (GENERAL). */
static int pairs_rule(const rj_rule_code *rc)
{
    return rc->shape == RJ_SHAPE_AND || rc->shape == RJ_SHAPE_OR || rc->shape == RJ_SHAPE_GENERAL;
}

/* The index in g->atoms of atom i, or -1. */
static int member_index(const rj_memo_group *g, uint32_t i)
{
    for (uint32_t j = 0; j < g->n_atoms; j++)
        if (g->atoms[j] == i)
            return (int)j;
    return -1;
}

/* Fill g (slot set, atoms listed) with its pairs; 0 when it settles too
 * few rules to keep. */
static int build_pairs(const rj_program *p, rj_memo_group *g)
{
    uint32_t W = p->n_words ? p->n_words : 1, n_rules = 0, cap = 0;
    for (uint32_t r = 0; r < p->n_rules; r++)
        if (pairs_rule(&p->rules[r]))
            cap += RJ_MAX_ATOMS;
    g->pair_rule = malloc((cap ? cap : 1) * sizeof(uint32_t));
    g->pair_atom = malloc(cap ? cap : 1);
    g->pair_or = malloc(cap ? cap : 1);
    g->involved = calloc(W, sizeof(uint64_t));
    if (!g->pair_rule || !g->pair_atom || !g->pair_or || !g->involved)
        return -ENOMEM;
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        if (!pairs_rule(rc))
            continue;
        int any = 0;
        for (int k = 0; k < RJ_MAX_ATOMS && rc->pre[k] >= 0; k++) {
            int j = member_index(g, (uint32_t)rc->pre[k]);
            if (j < 0)
                continue;
            g->pair_rule[g->n_pairs] = r;
            g->pair_atom[g->n_pairs] = (uint8_t)j;
            g->pair_or[g->n_pairs++] = rc->shape == RJ_SHAPE_OR;
            any = 1;
        }
        if (any) {
            g->involved[r / 64] |= 1ULL << (r % 64);
            n_rules++;
        }
    }
    return n_rules >= RJ_VMEMO_MIN_RULES;
}

/* Each group's atoms that a rule may read one by one (a tree's, or those
 * of a rule the bits do not decide): a hit notes their results for it.
 * The others are read only through the bits. */
static int note_readers(rj_program *p)
{
    for (uint32_t m = 0; m < p->n_memos; m++) {
        rj_memo_group *g = &p->memos[m];
        g->note = malloc(g->n_atoms * sizeof(uint32_t));
        if (!g->note)
            return -ENOMEM;
        for (uint32_t j = 0; j < g->n_atoms; j++) {
            int read = 0;
            for (uint32_t r = 0; r < p->n_rules && !read; r++) {
                const rj_rule_code *rc = &p->rules[r];
                if (rc->shape == RJ_SHAPE_TREE) {
                    for (uint32_t t = 0; t < rc->tree_len && !read; t++)
                        read = p->tree[rc->tree_off + t] == (int32_t)g->atoms[j];
                    continue;
                }
                if ((p->table_and[r / 64] | p->table_or[r / 64]) >> (r % 64) & 1)
                    continue;
                for (int k = 0; k < RJ_MAX_ATOMS && rc->pre[k] >= 0 && !read; k++)
                    read = rc->pre[k] == (int32_t)g->atoms[j];
            }
            if (read)
                g->note[g->n_note++] = j;
        }
    }
    return 0;
}

int rj_vmemo_build(rj_program *p)
{
    p->memos = calloc(p->n_atoms ? p->n_atoms : 1, sizeof(rj_memo_group));
    uint8_t *placed = calloc(p->n_atoms ? p->n_atoms : 1, 1);
    if (!p->memos || !placed) {
        free(placed);
        rj_vmemo_free_program(p);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < p->n_atoms; i++) {
        if (placed[i] || !memo_atom(p, &p->atoms[i]))
            continue;
        rj_memo_group *g = &p->memos[p->n_memos];
        g->slot = p->atoms[i].a;
        g->atoms = malloc(RJ_VMEMO_MAX_ATOMS * sizeof(uint32_t));
        if (!g->atoms)
            goto nomem;
        for (uint32_t j = i; j < p->n_atoms && g->n_atoms < RJ_VMEMO_MAX_ATOMS; j++) {
            if (!placed[j] && p->atoms[j].a == g->slot && memo_atom(p, &p->atoms[j])) {
                placed[j] = 1;
                g->atoms[g->n_atoms++] = j;
            }
        }
        int keep = build_pairs(p, g);
        if (keep < 0)
            goto nomem;
        if (!keep) {
            free_group(g);
            memset(g, 0, sizeof *g);
            continue;
        }
        for (uint32_t j = 0; j < g->n_atoms; j++)
            p->atoms[g->atoms[j]].shared = 1; /* results written per event: read them back */
        p->n_memos++;
    }
    free(placed);
    if (!p->n_memos) {
        rj_vmemo_free_program(p);
        return 0;
    }
    /* Rules whose every atom is now in cells or a memo are decided by bits. */
    for (uint32_t r = 0; r < p->n_rules; r++) {
        const rj_rule_code *rc = &p->rules[r];
        if (rc->shape != RJ_SHAPE_AND && rc->shape != RJ_SHAPE_OR)
            continue;
        int covered = 1;
        for (int k = 0; k < RJ_MAX_ATOMS && rc->pre[k] >= 0 && covered; k++) {
            if (p->atoms[rc->pre[k]].cells >= 0)
                continue;
            covered = 0;
            for (uint32_t m = 0; m < p->n_memos && !covered; m++)
                covered = member_index(&p->memos[m], (uint32_t)rc->pre[k]) >= 0;
        }
        if (covered)
            (rc->shape == RJ_SHAPE_OR ? p->table_or : p->table_and)[r / 64] |= 1ULL << (r % 64);
    }
    return note_readers(p) < 0 ? -ENOMEM : 0;
nomem:
    free(placed);
    rj_vmemo_free_program(p);
    return -ENOMEM;
}

rj_vmemo *rj_vmemo_new(const rj_program *p)
{
    if (!p->n_memos)
        return NULL;
    size_t W = p->n_words ? p->n_words : 1;
    rj_vmemo *m = calloc(p->n_memos, sizeof *m);
    if (!m)
        return NULL;
    for (uint32_t i = 0; i < p->n_memos; i++) {
        m[i].entries = malloc(RJ_VMEMO_ENTRIES * sizeof *m[i].entries);
        m[i].recent = calloc(1u << RJ_VMEMO_SET_BITS, 1);
        m[i].res = malloc((size_t)RJ_VMEMO_ENTRIES * p->memos[i].n_atoms);
        m[i].bits = malloc(RJ_VMEMO_ENTRIES * RJ_CELL_SETS * W * sizeof(uint64_t));
        if (!m[i].entries || !m[i].recent || !m[i].res || !m[i].bits) {
            rj_vmemo_delete(m, p);
            return NULL;
        }
        for (uint32_t e = 0; e < RJ_VMEMO_ENTRIES; e++)
            m[i].entries[e].len = UINT32_MAX;
    }
    return m;
}

void rj_vmemo_delete(rj_vmemo *m, const rj_program *p)
{
    for (uint32_t i = 0; m && i < p->n_memos; i++) {
        free(m[i].entries);
        free(m[i].recent);
        free(m[i].res);
        free(m[i].bits);
    }
    free(m);
}

void rj_vmemo_fill(const rj_program *p, uint32_t gi, rj_vmemo *m, uint32_t at, const uint8_t *s,
                   uint32_t n)
{
    const rj_memo_group *g = &p->memos[gi];
    const size_t W = p->n_words ? p->n_words : 1;
    const uint8_t *res = m->res + (size_t)at * g->n_atoms;
    uint64_t *b = m->bits + (size_t)at * RJ_CELL_SETS * W;
    rj_row_bits_start(b, W); /* as rj_cells_rule_bits builds a cells row */
    for (uint32_t i = 0; i < g->n_pairs; i++)
        rj_row_bits_narrow(b, W, g->pair_rule[i], res[g->pair_atom[i]], g->pair_or[i]);
    m->entries[at].len = n;
    memcpy(m->entries[at].text, s, n);
}
