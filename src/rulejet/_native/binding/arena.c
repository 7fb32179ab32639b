/* arena.c (binding): Arena and ArenaBuffer.
 *
 * Invariant: arena memory is never reset or unmapped while a buffer that
 * points into it is alive. Every ArenaBuffer holds a reference to its
 * Arena and counts itself in `live` (with the GIL held); every memoryview
 * or numpy array over a buffer holds a reference to the buffer. reset()
 * and close() refuse with BusyError while live > 0, the way bytearray
 * refuses to resize while exported.
 */
#include <unistd.h>

#include "module.h"
#include "../core/arena.h"

#include <errno.h>
#include <stdlib.h>

typedef struct {
    PyObject_HEAD
    rj_arena arena;
    Py_ssize_t live; /* ArenaBuffers alive (GIL held when changed) */
    int ready, closed;
    void *spare_objs; /* the last batch's object array, kept for the next */
    Py_ssize_t spare_count;
} Arena;

typedef struct {
    PyObject_HEAD
    Arena *owner;
    PyObject *parent; /* for proxies: the buffer whose memory this is */
    char *ptr;
    Py_ssize_t len;
    Py_ssize_t exports; /* live Py_buffer exports (GIL held when changed) */
    uint8_t reusable;   /* returns to its size class's free list when freed */
    uint8_t in_batch;   /* parent is its ArenaBatch, whose objs array holds self */
    uint8_t revoked;    /* a pool's proxy after its lease: no new views */
} ArenaBuffer;

#define SPARE_OBJS_MAX ((Py_ssize_t)1 << 20)

/* The block and the object array behind one alloc_many: not visible to
 * Python, held by the batch's buffers, gone with the last of them. */
typedef struct {
    PyObject_HEAD
    Arena *owner;
    void *block;
    Py_ssize_t size;
    int reusable;
    ArenaBuffer *objs;
    Py_ssize_t n_objs;
} ArenaBatch;

static int arena_init(Arena *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"chunk_size", NULL};
    Py_ssize_t chunk = 1 << 20;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "Arena already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|n:Arena", names, &chunk))
        return -1;
    if (chunk <= 0 || (uint64_t)chunk > (1ULL << 40)) {
        PyErr_SetString(PyExc_ValueError, "chunk_size must be positive and at most 1 TiB");
        return -1;
    }
    int rc = rj_arena_init(&self->arena, (size_t)chunk);
    if (rc < 0) {
        rj_raise_errno(rj_state_from_type(Py_TYPE(self)), rc, NULL);
        return -1;
    }
    self->ready = 1;
    return 0;
}

static void arena_dealloc(Arena *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    /* No buffer can be alive: each holds a reference to self. */
    if (self->ready && !self->closed)
        rj_arena_destroy(&self->arena);
    PyMem_Free(self->spare_objs);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int check_usable(Arena *self)
{
    if (!self->ready || self->closed) {
        rj_state *st = rj_state_from_type(Py_TYPE(self));
        PyErr_SetString(st->ClosedError, "the arena is closed");
        return -1;
    }
    return 0;
}

/* Fill a new buffer object over [p, p + len) of owner's memory; parent
 * (a new reference is taken) keeps that memory alive if it is not b's. */
static void init_buffer(ArenaBuffer *b, Arena *owner, PyObject *parent, void *p, Py_ssize_t len)
{
    b->owner = (Arena *)Py_NewRef(owner);
    b->parent = Py_XNewRef(parent);
    b->ptr = p;
    b->len = len;
    b->exports = 0;
    b->revoked = 0;
    b->reusable = 0;
    b->in_batch = 0;
    owner->live++;
}

static PyObject *new_buffer(rj_state *st, Arena *owner, void *p, Py_ssize_t len)
{
    ArenaBuffer *b = PyObject_New(ArenaBuffer, st->ArenaBufferType);
    if (b)
        init_buffer(b, owner, NULL, p, len);
    return (PyObject *)b;
}

static int parse_size(Py_ssize_t n, Py_ssize_t align)
{
    if (n < 0 || align <= 0 || (align & (align - 1))) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0 and align a power of two");
        return -1;
    }
    if ((size_t)align > (size_t)sysconf(_SC_PAGESIZE)) { /* bad input, not a failed call */
        PyErr_SetString(PyExc_ValueError, "align must be at most the page size");
        return -1;
    }
    return 0;
}

static PyObject *arena_alloc(Arena *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"size", "align", NULL};
    Py_ssize_t n, align = 16;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|$n:alloc", names, &n, &align) ||
        parse_size(n, align) < 0 || check_usable(self) < 0)
        return NULL;
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    void *p = rj_arena_alloc(&self->arena, (size_t)n, (size_t)align, NULL);
    if (!p)
        return rj_raise_errno(st, -errno, NULL);
    ArenaBuffer *b = (ArenaBuffer *)new_buffer(st, self, p, n);
    if (b)
        b->reusable = align <= 16;
    return (PyObject *)b;
}

/* alloc_many(separate=True): each buffer its own block, so each goes back
 * to its size class's free list when dropped. The loop runs without the
 * GIL: other threads allocate from the same arena at the same time (that
 * is what the CAS is for). */
static PyObject *alloc_separate(Arena *self, Py_ssize_t count, Py_ssize_t n, Py_ssize_t align)
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    void **ptrs = malloc((size_t)(count ? count : 1) * sizeof(void *));
    if (!ptrs)
        return PyErr_NoMemory();
    Py_ssize_t got = 0;
    int err = 0;
    /* live is raised before and settled after, so a concurrent reset()
     * (which needs the GIL) refuses while this batch is in flight. */
    self->live++;
    Py_BEGIN_ALLOW_THREADS
    for (; got < count; got++) {
        ptrs[got] = rj_arena_alloc(&self->arena, (size_t)n, (size_t)align, NULL);
        if (!ptrs[got]) {
            err = errno;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    self->live--;
    PyObject *list = NULL;
    if (err) {
        rj_raise_errno(st, -err, NULL);
        goto out;
    }
    list = PyList_New(count);
    for (Py_ssize_t i = 0; list && i < count; i++) {
        PyObject *b = new_buffer(st, self, ptrs[i], n);
        if (!b) {
            Py_CLEAR(list);
        } else {
            ((ArenaBuffer *)b)->reusable = align <= 16;
            PyList_SET_ITEM(list, i, b);
        }
    }
out:
    free(ptrs);
    return list;
}

static PyObject *arena_alloc_many(Arena *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"count", "size", "align", "separate", NULL};
    Py_ssize_t count, n, align = 16;
    int separate = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nn|$np:alloc_many", names, &count, &n, &align,
                                     &separate) ||
        parse_size(n, align) < 0 || check_usable(self) < 0)
        return NULL;
    if (count < 0 || count > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(void *)) {
        PyErr_SetString(PyExc_ValueError, "count out of range");
        return NULL;
    }
    if (separate)
        return alloc_separate(self, count, n, align);
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    if (!count)
        return PyList_New(0);
    /* One block for the whole batch (one bump or free-list pop instead of
     * one per buffer), held by an ArenaBatch that each buffer of the batch
     * keeps alive: the block goes back to its free list when the last of
     * them is dropped. */
    Py_ssize_t stride = (n + align - 1) / align * align;
    if (!stride)
        stride = align;
    if (stride > PY_SSIZE_T_MAX / count) {
        PyErr_SetString(PyExc_ValueError, "count * size out of range");
        return NULL;
    }
    void *block = rj_arena_alloc(&self->arena, (size_t)(stride * count), (size_t)align, NULL);
    if (!block)
        return rj_raise_errno(st, -errno, NULL);
    ArenaBatch *batch = PyObject_New(ArenaBatch, st->ArenaBatchType);
    if (!batch) {
        rj_arena_free(&self->arena, block, (size_t)(stride * count));
        return NULL;
    }
    batch->owner = (Arena *)Py_NewRef(self);
    batch->block = block;
    batch->size = stride * count;
    batch->reusable = align <= 16;
    /* The buffers' objects are one array too, kept by the arena for the
     * next batch when this one goes: a batch after reset() reuses memory
     * already touched instead of faulting fresh pages in. */
    if (self->spare_objs && self->spare_count >= count) {
        batch->objs = self->spare_objs;
        batch->n_objs = self->spare_count;
        self->spare_objs = NULL;
    } else {
        batch->objs = PyMem_Malloc((size_t)count * sizeof(ArenaBuffer));
        batch->n_objs = count;
    }
    PyObject *list = batch->objs ? PyList_New(count) : PyErr_NoMemory();
    if (!list) {
        Py_DECREF(batch);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        ArenaBuffer *b =
            (ArenaBuffer *)PyObject_Init((PyObject *)&batch->objs[i], st->ArenaBufferType);
        init_buffer(b, self, (PyObject *)batch, (char *)block + i * stride, n);
        b->in_batch = 1;
        PyList_SET_ITEM(list, i, (PyObject *)b);
    }
    Py_DECREF(batch); /* now held by its buffers only */
    return list;
}

static void batch_dealloc(ArenaBatch *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Arena *owner = self->owner;
    if (self->reusable && !owner->closed)
        rj_arena_free(&owner->arena, self->block, (size_t)self->size);
    /* The arena keeps the larger object array for the next batch, up to
     * SPARE_OBJS_MAX objects (64 MB): beyond, memory goes back at once. */
    if (self->objs && !owner->closed && self->n_objs <= SPARE_OBJS_MAX &&
        (!owner->spare_objs || owner->spare_count < self->n_objs)) {
        PyMem_Free(owner->spare_objs);
        owner->spare_objs = self->objs;
        owner->spare_count = self->n_objs;
    } else {
        PyMem_Free(self->objs);
    }
    Py_DECREF(owner);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static PyType_Slot batch_slots[] = {
    {Py_tp_dealloc, batch_dealloc},
    {Py_tp_doc, "The memory behind one Arena.alloc_many (internal)."},
    {0, NULL},
};

static PyType_Spec batch_spec = {
    .name = "rulejet._native.ArenaBatch",
    .basicsize = sizeof(ArenaBatch),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = batch_slots,
};

static PyObject *busy(Arena *self, const char *what)
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    return PyErr_Format(st->BusyError, "cannot %s the arena: %zd buffer(s) still alive", what,
                        self->live);
}

static PyObject *arena_reset(Arena *self, PyObject *Py_UNUSED(a))
{
    if (check_usable(self) < 0)
        return NULL;
    if (self->live)
        return busy(self, "reset");
    rj_arena_reset(&self->arena);
    Py_RETURN_NONE;
}

static PyObject *arena_close(Arena *self, PyObject *Py_UNUSED(a))
{
    if (!self->ready || self->closed)
        Py_RETURN_NONE;
    if (self->live)
        return busy(self, "close");
    rj_arena_destroy(&self->arena);
    self->closed = 1;
    PyMem_Free(self->spare_objs);
    self->spare_objs = NULL;
    Py_RETURN_NONE;
}

static PyObject *arena_stats(Arena *self, PyObject *Py_UNUSED(a))
{
    if (check_usable(self) < 0)
        return NULL;
    rj_arena *a = &self->arena;
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:n,s:n}", "reused",
        (unsigned long long)atomic_load(&a->reused), "chunks",
        (unsigned long long)atomic_load(&a->chunks), "bytes_in_use",
        (unsigned long long)atomic_load(&a->in_use), "high_water",
        (unsigned long long)atomic_load(&a->high_water), "small",
        (unsigned long long)atomic_load(&a->allocs[RJ_TIER_SMALL]), "medium",
        (unsigned long long)atomic_load(&a->allocs[RJ_TIER_MEDIUM]), "large",
        (unsigned long long)atomic_load(&a->allocs[RJ_TIER_LARGE]), "cas_retries",
        (unsigned long long)atomic_load(&a->contention), "chunk_size", (Py_ssize_t)a->chunk_size,
        "live_buffers", self->live);
}

static PyMethodDef arena_methods[] = {
    {"alloc", (PyCFunction)(void (*)(void))arena_alloc, METH_VARARGS | METH_KEYWORDS,
     "alloc(size, *, align=16) -> ArenaBuffer"},
    {"alloc_many", (PyCFunction)(void (*)(void))arena_alloc_many, METH_VARARGS | METH_KEYWORDS,
     "alloc_many(count, size, *, align=16, separate=False) -> list of ArenaBuffer: carved from "
     "one block, or (separate) each its own, allocated with the GIL released"},
    {"reset", (PyCFunction)arena_reset, METH_NOARGS, "Free everything; BusyError while buffers live."},
    {"close", (PyCFunction)arena_close, METH_NOARGS, "Unmap everything; BusyError while buffers live."},
    {"stats", (PyCFunction)arena_stats, METH_NOARGS, "Counters: chunks, bytes in use, per tier."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot arena_slots[] = {
    {Py_tp_init, arena_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, arena_dealloc},
    {Py_tp_methods, arena_methods},
    {Py_tp_doc, "Arena(chunk_size=1 MiB): lock-free bump allocation in mmap'd chunks."},
    {0, NULL},
};

static PyType_Spec arena_spec = {
    .name = "rulejet._native.Arena",
    .basicsize = sizeof(Arena),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = arena_slots,
};

static void buffer_dealloc(ArenaBuffer *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Arena *owner = self->owner;
    /* The last reference to this memory (proxies hold their parent): give
     * the block back for reuse unless the arena is already closed. */
    if (self->reusable && !self->parent && !owner->closed)
        rj_arena_free(&owner->arena, self->ptr, (size_t)self->len);
    owner->live--;
    PyObject *parent = self->parent;
    Py_DECREF(owner); /* the parent, if any, holds the arena too */
    if (self->in_batch) {
        /* self lives in its batch's object array, which may go with this
         * last reference: nothing touches self after it. */
        Py_DECREF(tp);
        Py_DECREF(parent);
        return;
    }
    PyObject_Free(self);
    Py_DECREF(tp);
    Py_XDECREF(parent);
}

static int buffer_getbuffer(ArenaBuffer *self, Py_buffer *view, int flags)
{
    if (self->revoked) {
        PyErr_SetString(PyExc_ValueError,
                        "this lease was given back: its memory may be lent to someone else");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, self->ptr, self->len, 0, flags) < 0)
        return -1;
    self->exports++;
    return 0;
}

static void buffer_releasebuffer(ArenaBuffer *self, Py_buffer *Py_UNUSED(view))
{
    self->exports--;
}

/* A new buffer object over the same memory: pools lend a fresh proxy per
 * lease, so its export count and its own lifetime tell whether anything
 * from that lease still holds the memory. */
static PyObject *buffer_proxy(ArenaBuffer *self, PyObject *Py_UNUSED(a))
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    ArenaBuffer *b = (ArenaBuffer *)new_buffer(st, self->owner, self->ptr, self->len);
    if (b)
        b->parent = Py_NewRef(self);
    return (PyObject *)b;
}

static PyObject *buffer_revoke(ArenaBuffer *self, PyObject *Py_UNUSED(a))
{
    self->revoked = 1;
    Py_RETURN_NONE;
}

static PyObject *buffer_exports(ArenaBuffer *self, void *Py_UNUSED(c))
{
    return PyLong_FromSsize_t(self->exports);
}

static PyMethodDef buffer_methods[] = {
    {"revoke", (PyCFunction)buffer_revoke, METH_NOARGS,
     "revoke(): no new buffer views of this object (views already made stay)."},
    {"proxy", (PyCFunction)buffer_proxy, METH_NOARGS,
     "A new ArenaBuffer over the same memory (with its own export count)."},
    {NULL, NULL, 0, NULL},
};

static Py_ssize_t buffer_len(ArenaBuffer *self) { return self->len; }

static PyObject *buffer_address(ArenaBuffer *self, void *Py_UNUSED(c))
{
    return PyLong_FromVoidPtr(self->ptr);
}

static PyGetSetDef buffer_getset[] = {
    {"address", (getter)buffer_address, NULL, "The memory address (for alignment checks).", NULL},
    {"exports", (getter)buffer_exports, NULL, "Buffer views currently exported.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot buffer_slots[] = {
    {Py_tp_dealloc, buffer_dealloc},
    {Py_bf_getbuffer, buffer_getbuffer},
    {Py_bf_releasebuffer, buffer_releasebuffer},
    {Py_tp_methods, buffer_methods},
    {Py_sq_length, buffer_len},
    {Py_tp_getset, buffer_getset},
    {Py_tp_doc, "Writable memory from an Arena (buffer protocol); keeps the arena from resetting."},
    {0, NULL},
};

static PyType_Spec buffer_spec = {
    .name = "rulejet._native.ArenaBuffer",
    .basicsize = sizeof(ArenaBuffer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = buffer_slots,
};

int rj_arena_init_types(PyObject *module, rj_state *st)
{
    st->ArenaType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &arena_spec, NULL);
    st->ArenaBufferType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &buffer_spec, NULL);
    st->ArenaBatchType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &batch_spec, NULL);
    if (!st->ArenaType || !st->ArenaBufferType || !st->ArenaBatchType)
        return -1;
    if (PyModule_AddType(module, st->ArenaType) < 0)
        return -1;
    return PyModule_AddType(module, st->ArenaBufferType);
}
