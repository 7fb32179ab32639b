/* pathset.c: compiled paths, from a trie to the graph the scanner walks.
 *
 * rj_pathset_add builds a trie (tnodes/tedges) whose edges are keys,
 * indexes, or "key or index" (JSON Pointer digit tokens). Such a trie can
 * be ambiguous: under one parent, the key "0" may match both a KEY edge
 * and a KEY_OR_INDEX edge, and the scanner would have to follow two
 * children at once. rj_pathset_finish removes the ambiguity by the subset
 * construction: each graph node stands for a set of trie nodes, and its
 * edge for a key (or index) leads to the set of all trie children that
 * key matches. A graph node fills every slot that ends in its set, and
 * knows every slot reachable below it, to clear them when a duplicate key
 * makes an earlier value void. Arrays refer to each other by index, so
 * growth never invalidates a reference.
 */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    uint32_t c = *cap ? *cap : 8;
    while (c < need) {
        if (c > UINT32_MAX / 2)
            return -ENOMEM;
        c *= 2;
    }
    void *q = realloc(*p, (size_t)c * elem);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int new_tnode(rj_pathset *ps, uint32_t *out)
{
    int rc = grow((void **)&ps->tnodes, &ps->cap_tnodes, ps->n_tnodes + 1, sizeof(rj_node));
    if (rc)
        return rc;
    uint32_t cap = ps->cap_tnodes;
    int32_t *ts = realloc(ps->tslot, (size_t)cap * sizeof(int32_t));
    if (!ts)
        return -ENOMEM;
    ps->tslot = ts;
    rj_node *n = &ps->tnodes[ps->n_tnodes];
    memset(n, 0, sizeof *n);
    n->first_edge = NONE;
    ps->tslot[ps->n_tnodes] = -1;
    *out = ps->n_tnodes++;
    return 0;
}

int rj_pathset_init(rj_pathset *ps)
{
    memset(ps, 0, sizeof *ps);
    /* keys and slot_lists are never NULL, so "pointer + 0" and zero-length
     * memcmp on them are always defined. */
    ps->keys = malloc(64);
    ps->slot_lists = malloc(sizeof(uint32_t) * 8);
    if (!ps->keys || !ps->slot_lists)
        return -ENOMEM;
    ps->keys_cap = 64;
    uint32_t root;
    return new_tnode(ps, &root);
}

static int store_key(rj_pathset *ps, const char *key, size_t len, uint32_t *off)
{
    if (len > UINT32_MAX || ps->keys_len > UINT32_MAX - len)
        return -EINVAL;
    if (ps->keys_len + len > ps->keys_cap) {
        size_t cap = ps->keys_cap ? ps->keys_cap : 64;
        while (cap < ps->keys_len + len)
            cap *= 2;
        char *k = realloc(ps->keys, cap);
        if (!k)
            return -ENOMEM;
        ps->keys = k;
        ps->keys_cap = cap;
    }
    if (len)
        memcpy(ps->keys + ps->keys_len, key, len);
    *off = (uint32_t)ps->keys_len;
    ps->keys_len += len;
    return 0;
}

static int same_step(const rj_pathset *ps, const rj_edge *e, const rj_step *s)
{
    if (e->kind != s->kind)
        return 0;
    if (s->kind != RJ_STEP_KEY && e->index != s->index)
        return 0;
    if (s->kind != RJ_STEP_INDEX &&
        (e->key_len != s->key_len || memcmp(ps->keys + e->key_off, s->key, s->key_len)))
        return 0;
    return 1;
}

/* Append an edge to a node's sibling list (keeps the order given). */
static int append_edge(rj_edge **edges, uint32_t *n, uint32_t *cap, rj_node *parent,
                       const rj_edge *proto)
{
    int rc = grow((void **)edges, cap, *n + 1, sizeof(rj_edge));
    if (rc)
        return rc;
    (*edges)[*n] = *proto;
    (*edges)[*n].next = NONE;
    uint32_t *link = &parent->first_edge;
    while (*link != NONE)
        link = &(*edges)[*link].next;
    *link = (*n)++;
    return 0;
}

int rj_pathset_add(rj_pathset *ps, const rj_step *steps, size_t n)
{
    if (ps->finished || n > RJ_JSON_MAX_DEPTH)
        return -EINVAL;
    uint32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        const rj_step *s = &steps[i];
        if (s->kind < RJ_STEP_KEY || s->kind > RJ_STEP_KEY_OR_INDEX)
            return -EINVAL;
        uint32_t found = NONE;
        for (uint32_t e = ps->tnodes[node].first_edge; e != NONE; e = ps->tedges[e].next)
            if (same_step(ps, &ps->tedges[e], s)) {
                found = ps->tedges[e].child;
                break;
            }
        if (found == NONE) {
            rj_edge proto = {.kind = (uint8_t)s->kind, .index = s->index};
            int rc;
            if (s->kind != RJ_STEP_INDEX) {
                if ((rc = store_key(ps, s->key, s->key_len, &proto.key_off)))
                    return rc;
                proto.key_len = (uint32_t)s->key_len;
            }
            if ((rc = new_tnode(ps, &found)))
                return rc;
            proto.child = found;
            if ((rc = append_edge(&ps->tedges, &ps->n_tedges, &ps->cap_tedges,
                                  &ps->tnodes[node], &proto)))
                return rc;
        }
        node = found;
    }
    uint32_t *paths = realloc(ps->path_slot, (size_t)(ps->n_paths + 1) * sizeof(uint32_t));
    if (!paths)
        return -ENOMEM;
    ps->path_slot = paths;
    if (ps->tslot[node] < 0)
        ps->tslot[node] = (int32_t)ps->n_slots++;
    ps->path_slot[ps->n_paths++] = (uint32_t)ps->tslot[node];
    if (n > ps->max_depth)
        ps->max_depth = (uint32_t)n;
    return 0;
}

/* ---- Determinization ---- */

/* Sets of trie nodes, each a sorted run in one pool; graph node i is set i. */
typedef struct {
    uint32_t *pool;
    uint32_t pool_len, pool_cap;
    uint32_t *set_off, *set_len;
    uint32_t n_sets, cap_sets;
} sets_t;

static int find_or_add_set(rj_pathset *ps, sets_t *S, const uint32_t *members, uint32_t n,
                           uint32_t *id)
{
    for (uint32_t i = 0; i < S->n_sets; i++)
        if (S->set_len[i] == n && !memcmp(S->pool + S->set_off[i], members, n * sizeof *members)) {
            *id = i;
            return 0;
        }
    int rc;
    if ((rc = grow((void **)&S->pool, &S->pool_cap, S->pool_len + n, sizeof(uint32_t))))
        return rc;
    uint32_t cap = S->cap_sets;
    if ((rc = grow((void **)&S->set_off, &S->cap_sets, S->n_sets + 1, sizeof(uint32_t))))
        return rc;
    uint32_t *lens = realloc(S->set_len, (size_t)S->cap_sets * sizeof(uint32_t));
    if (!lens)
        return -ENOMEM;
    S->set_len = lens;
    (void)cap;
    memcpy(S->pool + S->pool_len, members, n * sizeof *members);
    S->set_off[S->n_sets] = S->pool_len;
    S->set_len[S->n_sets] = n;
    S->pool_len += n;
    if ((rc = grow((void **)&ps->nodes, &ps->cap_nodes, S->n_sets + 1, sizeof(rj_node))))
        return rc;
    rj_node *g = &ps->nodes[S->n_sets];
    memset(g, 0, sizeof *g);
    g->first_edge = NONE;
    *id = S->n_sets++;
    ps->n_nodes = S->n_sets;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Does trie edge e match the label (kind KEY with key, or INDEX with i)? */
static int label_matches(const rj_pathset *ps, const rj_edge *e, const rj_edge *label)
{
    if (label->kind == RJ_STEP_KEY)
        return e->kind != RJ_STEP_INDEX && e->key_len == label->key_len &&
               !memcmp(ps->keys + e->key_off, ps->keys + label->key_off, e->key_len);
    return e->kind != RJ_STEP_KEY && e->index == label->index;
}

static int push_slot(rj_pathset *ps, uint32_t *cap, uint32_t slot)
{
    int rc = grow((void **)&ps->slot_lists, cap, ps->n_slot_lists + 1, sizeof(uint32_t));
    if (!rc)
        ps->slot_lists[ps->n_slot_lists++] = slot;
    return rc;
}

/* Build graph node g's edges: one per distinct label among its members'
 * trie edges, each to the set of all trie children matching the label. */
static int expand(rj_pathset *ps, sets_t *S, uint32_t g, uint32_t *scratch)
{
    for (uint32_t m = 0; m < S->set_len[g]; m++) {
        uint32_t t = S->pool[S->set_off[g] + m];
        for (uint32_t e = ps->tnodes[t].first_edge; e != NONE; e = ps->tedges[e].next) {
            const rj_edge *te = &ps->tedges[e];
            for (int side = 0; side < 2; side++) {
                /* A key-or-index edge yields a key label and an index label. */
                rj_edge label = *te;
                if (te->kind == RJ_STEP_KEY_OR_INDEX)
                    label.kind = side ? RJ_STEP_INDEX : RJ_STEP_KEY;
                else if (side)
                    break;
                /* Skip labels already given an edge. */
                int seen = 0;
                for (uint32_t ge = ps->nodes[g].first_edge; ge != NONE && !seen;
                     ge = ps->edges[ge].next)
                    seen = ps->edges[ge].kind == label.kind &&
                           label_matches(ps, &ps->edges[ge], &label);
                if (seen)
                    continue;
                uint32_t n = 0;
                for (uint32_t m2 = 0; m2 < S->set_len[g]; m2++) {
                    uint32_t t2 = S->pool[S->set_off[g] + m2];
                    for (uint32_t e2 = ps->tnodes[t2].first_edge; e2 != NONE;
                         e2 = ps->tedges[e2].next)
                        if (label_matches(ps, &ps->tedges[e2], &label))
                            scratch[n++] = ps->tedges[e2].child;
                }
                qsort(scratch, n, sizeof *scratch, cmp_u32);
                uint32_t child;
                int rc = find_or_add_set(ps, S, scratch, n, &child);
                if (rc)
                    return rc;
                rj_edge ge = {.kind = label.kind, .key_off = label.key_off,
                              .key_len = label.kind == RJ_STEP_KEY ? label.key_len : 0,
                              .index = label.index, .child = child};
                if ((rc = append_edge(&ps->edges, &ps->n_edges, &ps->cap_edges, &ps->nodes[g],
                                      &ge)))
                    return rc;
                rj_node *gn = &ps->nodes[g];
                if (label.kind == RJ_STEP_KEY) {
                    gn->has_key_edges = 1;
                    gn->n_key_edges++;
                } else {
                    gn->has_index_edges = 1;
                    if (label.index > gn->max_index)
                        gn->max_index = label.index;
                }
            }
        }
    }
    return 0;
}

/* Every slot filled at or below graph node g, each once. The graph can
 * share nodes (key "0" and index 0 may lead to the same set), so nodes
 * are marked too: each is expanded once and the stack stays bounded. */
static int collect_reset(rj_pathset *ps, uint32_t g, uint32_t *cap, uint8_t *mark,
                         uint8_t *visited, uint32_t *stack)
{
    uint32_t top = 0;
    uint32_t start = ps->n_slot_lists;
    memset(mark, 0, ps->n_slots ? ps->n_slots : 1);
    memset(visited, 0, ps->n_nodes);
    stack[top++] = g;
    visited[g] = 1;
    while (top) {
        const rj_node *n = &ps->nodes[stack[--top]];
        for (uint32_t i = 0; i < n->n_term; i++) {
            uint32_t slot = ps->slot_lists[n->term_off + i];
            if (!mark[slot]) {
                mark[slot] = 1;
                int rc = push_slot(ps, cap, slot);
                if (rc)
                    return rc;
            }
        }
        for (uint32_t e = n->first_edge; e != NONE; e = ps->edges[e].next)
            if (!visited[ps->edges[e].child]) {
                visited[ps->edges[e].child] = 1;
                stack[top++] = ps->edges[e].child;
            }
    }
    ps->nodes[g].reset_off = start;
    ps->nodes[g].n_reset = ps->n_slot_lists - start;
    return 0;
}

/* Each node's key edges into its slice of ps->key_tab: at most an eighth
 * full (half for nodes of over 512 keys, to bound the memory), so that an
 * unwanted key, the usual member, nearly always meets an empty entry at
 * once instead of probing past a wanted one. */
static int build_key_tables(rj_pathset *ps)
{
    size_t total = 0;
    for (uint32_t g = 0; g < ps->n_nodes; g++) {
        rj_node *n = &ps->nodes[g];
        uint32_t keys = 0;
        for (uint32_t e = n->first_edge; e != UINT32_MAX; e = ps->edges[e].next)
            keys += ps->edges[e].kind != RJ_STEP_INDEX;
        n->key_tab_bits = 0;
        n->key_tab_off = (uint32_t)total;
        if (!keys)
            continue;
        uint32_t bits = 2;
        while ((1u << bits) < (keys <= 512 ? 8 : 2) * keys)
            bits++;
        n->key_tab_bits = bits;
        n->key_tab_shift = 64 - bits;
        n->key_tab_mask = (1u << bits) - 1;
        total += (size_t)1 << bits;
        if (total > UINT32_MAX)
            return -ENOMEM;
    }
    free(ps->key_tab);
    free(ps->key_tab_text);
    ps->key_tab = malloc((total ? total : 1) * sizeof(rj_key_entry));
    ps->key_tab_text = malloc((total ? total : 1) * sizeof(const char *));
    if (!ps->key_tab || !ps->key_tab_text)
        return -ENOMEM;
    for (size_t i = 0; i < (total ? total : 1); i++) {
        ps->key_tab[i] = (rj_key_entry){0, UINT32_MAX, 0};
        ps->key_tab_text[i] = NULL;
    }
    /* Pointers into keys: it no longer grows (paths are not added after
     * finish). */
    for (uint32_t g = 0; g < ps->n_nodes; g++) {
        rj_node *n = &ps->nodes[g];
        n->key_tab = ps->key_tab + n->key_tab_off;
        n->key_tab_text = (const char *const *)ps->key_tab_text + n->key_tab_off;
        for (uint32_t e = n->first_edge; e != UINT32_MAX; e = ps->edges[e].next) {
            rj_edge *ed = &ps->edges[e];
            if (ed->kind == RJ_STEP_INDEX)
                continue;
            uint64_t head = 0;
            memcpy(&head, ps->keys + ed->key_off, ed->key_len < 8 ? ed->key_len : 8);
            uint32_t h = rj_key_hash(head, n->key_tab_shift);
            while (ps->key_tab[n->key_tab_off + h].len != UINT32_MAX)
                h = (h + 1) & n->key_tab_mask;
            ps->key_tab[n->key_tab_off + h] = (rj_key_entry){head, ed->key_len, ed->child};
            ps->key_tab_text[n->key_tab_off + h] = ps->keys + ed->key_off;
        }
    }
    return 0;
}

int rj_pathset_finish(rj_pathset *ps)
{
    sets_t S = {0};
    uint32_t slot_cap = 8, root = 0;
    uint32_t *scratch = malloc(((size_t)ps->n_tnodes + ps->n_tedges + 1) * sizeof(uint32_t));
    uint8_t *mark = NULL;
    int rc = scratch ? find_or_add_set(ps, &S, &root, 1, &root) : -ENOMEM;
    /* Graph nodes are appended while expanding: a worklist by index. */
    for (uint32_t g = 0; rc == 0 && g < S.n_sets; g++)
        rc = expand(ps, &S, g, scratch);
    for (uint32_t g = 0; rc == 0 && g < S.n_sets; g++) {
        rj_node *n = &ps->nodes[g];
        n->term_off = ps->n_slot_lists;
        for (uint32_t m = 0; rc == 0 && m < S.set_len[g]; m++) {
            int32_t slot = ps->tslot[S.pool[S.set_off[g] + m]];
            if (slot >= 0)
                rc = push_slot(ps, &slot_cap, (uint32_t)slot);
        }
        n->n_term = ps->n_slot_lists - n->term_off;
        n->first_slot = n->n_term ? (int32_t)ps->slot_lists[n->term_off] : -1;
    }
    /* Each node is pushed at most once per walk: n_nodes bounds the stack. */
    uint32_t *stack = NULL;
    uint8_t *visited = NULL;
    if (rc == 0) {
        mark = malloc(ps->n_slots ? ps->n_slots : 1);
        visited = malloc(ps->n_nodes);
        stack = malloc((size_t)ps->n_nodes * sizeof(uint32_t));
        if (!mark || !visited || !stack)
            rc = -ENOMEM;
    }
    for (uint32_t g = 0; rc == 0 && g < S.n_sets; g++)
        rc = collect_reset(ps, g, &slot_cap, mark, visited, stack);
    if (rc == 0)
        rc = build_key_tables(ps);
    free(stack);
    free(visited);
    free(mark);
    free(scratch);
    free(S.pool);
    free(S.set_off);
    free(S.set_len);
    if (rc == 0)
        ps->finished = 1;
    return rc;
}

void rj_pathset_free(rj_pathset *ps)
{
    free(ps->nodes);
    free(ps->edges);
    free(ps->slot_lists);
    free(ps->key_tab);
    free(ps->key_tab_text);
    free(ps->tnodes);
    free(ps->tedges);
    free(ps->tslot);
    free(ps->keys);
    free(ps->path_slot);
    memset(ps, 0, sizeof *ps);
}

int rj_scratch_init(rj_scan_scratch *s, const rj_pathset *ps)
{
    size_t n = ps->n_nodes ? ps->n_nodes : 1;
    s->gen = 0;
    s->seen = calloc(n, sizeof(uint32_t));
    s->memo = calloc(n * RJ_MEMO_WAYS, sizeof(rj_key_memo));
    if (!s->seen || !s->memo) {
        rj_scratch_free(s);
        return -ENOMEM;
    }
    return 0;
}

void rj_scratch_free(rj_scan_scratch *s)
{
    free(s->seen);
    free(s->memo);
    s->seen = NULL;
    s->memo = NULL;
}
