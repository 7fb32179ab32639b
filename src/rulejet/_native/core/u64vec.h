/* u64vec.h: a growable array of uint64_t owned by C code.
 * Growth is overflow-checked; on failure the vector is left unchanged. */
#ifndef RJ_U64VEC_H
#define RJ_U64VEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct rj_u64vec {
    uint64_t *data;
    size_t len;
    size_t cap;
} rj_u64vec;

/* Ensure room for `extra` more entries: 0 or -ENOMEM / -EOVERFLOW. */
int rj_u64vec_reserve(rj_u64vec *v, size_t extra);
void rj_u64vec_free(rj_u64vec *v);

#endif
