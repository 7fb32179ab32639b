/* lender.c: the lending fast path of FramePool, in C because a lease in
 * Python costs more (about 1 µs) than numpy.empty does for a whole frame.
 *
 * A Lender owns a fixed set of objects (frames) and, for each, the root
 * object that every view of it refers to (a numpy array's base). An
 * object may be lent when only the Lender refers to it and to its root
 * (reference counts 1 and 2: the root is held by the Lender and by the
 * object). When the root's own base is a memoryview (numpy's frombuffer
 * makes one), that memoryview and the memory's owner under it must be
 * as unreferenced as before the first lease too, and no other
 * memoryview may share its buffer: `frame.base.base` kept past a return
 * would otherwise write into the next lease. Lent objects are marked; giving back one that is not lent is a
 * ValueError. The most recently returned idle object is lent first (the
 * warmest in cache). Everything runs under the GIL, which is what makes
 * each call atomic; waiting, growth and timeouts stay in Python
 * (rulejet/pools.py). */
#include "module.h"

typedef struct {
    PyObject_HEAD
    PyObject **objs, **roots;
    /* The root's base memoryview and its exporter (NULL when the root's
     * base is not a memoryview), with their reference counts while idle
     * (recorded when first checked: the pool holds no temporaries then). */
    PyObject **views, **owners;
    Py_ssize_t *view_refs, *owner_refs;
    Py_ssize_t *stack; /* indexes of objects not lent; top = most recent */
    char *lent;
    Py_ssize_t n, cap, top;
} Lender;

typedef struct {
    PyObject_HEAD
    Lender *lender;
    PyObject *slow_take; /* called with (timeout,) when no object is idle */
    PyObject *timeout;
    PyObject *obj; /* the object lent to this block */
} Lease;

static int lender_is_idle(Lender *self, Py_ssize_t i)
{
    if (Py_REFCNT(self->objs[i]) != 1 || Py_REFCNT(self->roots[i]) != 2)
        return 0;
    PyObject *view = self->views[i];
    if (!view)
        return 1;
    /* Other memoryviews over the same buffer (slices, memoryview(view)). */
    if (((PyMemoryViewObject *)view)->mbuf->exports != 1)
        return 0;
    if (!self->view_refs[i]) {
        self->view_refs[i] = Py_REFCNT(view);
        self->owner_refs[i] = Py_REFCNT(self->owners[i]);
    }
    return Py_REFCNT(view) == self->view_refs[i] &&
           Py_REFCNT(self->owners[i]) == self->owner_refs[i];
}

static PyObject *lender_add(Lender *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "add(obj, root) takes two arguments");
        return NULL;
    }
    if (self->n == self->cap) {
        Py_ssize_t cap = self->cap ? self->cap * 2 : 8;
        /* Each array grown in turn; one left larger on failure is harmless. */
#define GROW(field)                                                                  \
    do {                                                                             \
        void *grown = PyMem_Realloc(self->field, (size_t)cap * sizeof *self->field); \
        if (!grown)                                                                  \
            return PyErr_NoMemory();                                                 \
        self->field = grown;                                                         \
    } while (0)
        GROW(objs);
        GROW(roots);
        GROW(views);
        GROW(owners);
        GROW(view_refs);
        GROW(owner_refs);
        GROW(stack);
        GROW(lent);
#undef GROW
        self->cap = cap;
    }
    PyObject *view = PyObject_GetAttrString(args[1], "base");
    if (!view)
        PyErr_Clear();
    else if (!PyMemoryView_Check(view) || !PyMemoryView_GET_BUFFER(view)->obj)
        Py_CLEAR(view);
    Py_ssize_t i = self->n++;
    self->objs[i] = Py_NewRef(args[0]);
    self->roots[i] = Py_NewRef(args[1]);
    self->views[i] = view;
    self->owners[i] = view ? Py_NewRef(PyMemoryView_GET_BUFFER(view)->obj) : NULL;
    self->view_refs[i] = self->owner_refs[i] = 0;
    self->lent[i] = 0;
    self->stack[self->top++] = i;
    return PyLong_FromSsize_t(i);
}

/* Index of an idle object, removed from the stack and marked lent; -1 if
 * none is idle. */
static Py_ssize_t lender_take_index(Lender *self)
{
    for (Py_ssize_t k = self->top - 1; k >= 0; k--) {
        Py_ssize_t i = self->stack[k];
        if (lender_is_idle(self, i)) {
            memmove(&self->stack[k], &self->stack[k + 1],
                    (size_t)(self->top - k - 1) * sizeof *self->stack);
            self->top--;
            self->lent[i] = 1;
            return i;
        }
    }
    return -1;
}

static PyObject *lender_take(Lender *self, PyObject *Py_UNUSED(a))
{
    Py_ssize_t i = lender_take_index(self);
    if (i < 0)
        Py_RETURN_NONE;
    return Py_NewRef(self->objs[i]);
}

static int lender_give_back_obj(Lender *self, PyObject *obj)
{
    for (Py_ssize_t i = 0; i < self->n; i++) {
        if (self->objs[i] == obj) {
            if (!self->lent[i])
                break;
            self->lent[i] = 0;
            self->stack[self->top++] = i;
            return 0;
        }
    }
    PyErr_SetString(PyExc_ValueError, "this frame is not lent out by this pool (returned twice?)");
    return -1;
}

static PyObject *lender_give_back(Lender *self, PyObject *obj)
{
    if (lender_give_back_obj(self, obj) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *lender_counts(Lender *self, PyObject *Py_UNUSED(a))
{
    /* (objects, lent, not lent but still referenced elsewhere) */
    Py_ssize_t lent = 0, busy = 0;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        if (self->lent[i])
            lent++;
        else if (!lender_is_idle(self, i))
            busy++;
    }
    return Py_BuildValue("nnn", self->n, lent, busy);
}

static void lender_drop_all(Lender *self)
{
    for (Py_ssize_t i = 0; i < self->n; i++) {
        Py_CLEAR(self->objs[i]);
        Py_CLEAR(self->roots[i]);
        Py_CLEAR(self->views[i]);
        Py_CLEAR(self->owners[i]);
    }
    self->n = self->top = 0;
}

static PyObject *lender_clear(Lender *self, PyObject *Py_UNUSED(a))
{
    lender_drop_all(self);
    Py_RETURN_NONE;
}

static PyObject *lender_lease(Lender *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "lease(slow_take, timeout) takes two arguments");
        return NULL;
    }
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    Lease *l = PyObject_GC_New(Lease, st->LeaseType);
    if (!l)
        return NULL;
    l->lender = (Lender *)Py_NewRef(self);
    l->slow_take = Py_NewRef(args[0]);
    l->timeout = Py_NewRef(args[1]);
    l->obj = NULL;
    PyObject_GC_Track(l);
    return (PyObject *)l;
}

static int lender_traverse(Lender *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->n; i++) {
        Py_VISIT(self->objs[i]);
        Py_VISIT(self->roots[i]);
        Py_VISIT(self->views[i]);
        Py_VISIT(self->owners[i]);
    }
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int lender_tp_clear(Lender *self)
{
    lender_drop_all(self);
    return 0;
}

static void lender_dealloc(Lender *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    lender_drop_all(self);
    PyMem_Free(self->objs);
    PyMem_Free(self->roots);
    PyMem_Free(self->stack);
    PyMem_Free(self->lent);
    PyMem_Free(self->views);
    PyMem_Free(self->owners);
    PyMem_Free(self->view_refs);
    PyMem_Free(self->owner_refs);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef lender_methods[] = {
    {"add", (PyCFunction)(void (*)(void))lender_add, METH_FASTCALL,
     "add(obj, root) -> index: lend obj while only the lender refers to it and to root"},
    {"take", (PyCFunction)lender_take, METH_NOARGS,
     "take() -> the most recently returned idle object, or None"},
    {"give_back", (PyCFunction)lender_give_back, METH_O,
     "give_back(obj): ValueError if obj is not lent out"},
    {"counts", (PyCFunction)lender_counts, METH_NOARGS,
     "counts() -> (objects, lent, returned but still referenced)"},
    {"clear", (PyCFunction)lender_clear, METH_NOARGS, "Drop every object."},
    {"lease", (PyCFunction)(void (*)(void))lender_lease, METH_FASTCALL,
     "lease(slow_take, timeout) -> context manager lending one object"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot lender_slots[] = {
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, lender_dealloc},
    {Py_tp_traverse, lender_traverse},
    {Py_tp_clear, lender_tp_clear},
    {Py_tp_methods, lender_methods},
    {Py_tp_doc, "Lender(): lends objects only while nothing else refers to them."},
    {0, NULL},
};

static PyType_Spec lender_spec = {
    .name = "rulejet._native.Lender",
    .basicsize = sizeof(Lender),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = lender_slots,
};

static PyObject *lease_enter(Lease *self, PyObject *Py_UNUSED(a))
{
    if (self->obj) {
        PyErr_SetString(PyExc_RuntimeError, "a lease can be entered only once at a time");
        return NULL;
    }
    Py_ssize_t i = lender_take_index(self->lender);
    if (i >= 0) {
        self->obj = Py_NewRef(self->lender->objs[i]);
    } else {
        /* None idle: Python waits, grows or times out (and marks it lent). */
        self->obj = PyObject_CallOneArg(self->slow_take, self->timeout);
        if (!self->obj)
            return NULL;
    }
    return Py_NewRef(self->obj);
}

static PyObject *lease_exit(Lease *self, PyObject *const *Py_UNUSED(args),
                            Py_ssize_t Py_UNUSED(nargs))
{
    PyObject *obj = self->obj;
    if (!obj)
        Py_RETURN_NONE;
    self->obj = NULL;
    int rc = lender_give_back_obj(self->lender, obj);
    Py_DECREF(obj);
    if (rc < 0)
        return NULL;
    Py_RETURN_FALSE;
}

static int lease_traverse(Lease *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lender);
    Py_VISIT(self->slow_take);
    Py_VISIT(self->timeout);
    Py_VISIT(self->obj);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int lease_clear(Lease *self)
{
    Py_CLEAR(self->lender);
    Py_CLEAR(self->slow_take);
    Py_CLEAR(self->timeout);
    Py_CLEAR(self->obj);
    return 0;
}

static void lease_dealloc(Lease *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    /* A lease dropped without __exit__ (never entered, or abandoned
     * mid-block by a generator) still gives its object back. */
    if (self->obj && self->lender)
        (void)lender_give_back_obj(self->lender, self->obj);
    lease_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(tp);
}

static PyMethodDef lease_methods[] = {
    {"__enter__", (PyCFunction)lease_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))lease_exit, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot lease_slots[] = {
    {Py_tp_dealloc, lease_dealloc},
    {Py_tp_traverse, lease_traverse},
    {Py_tp_clear, lease_clear},
    {Py_tp_methods, lease_methods},
    {Py_tp_doc, "A lease from a Lender: `with` lends one object for the block."},
    {0, NULL},
};

static PyType_Spec lease_spec = {
    .name = "rulejet._native.Lease",
    .basicsize = sizeof(Lease),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = lease_slots,
};

int rj_lender_init_types(PyObject *module, rj_state *st)
{
    st->LenderType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &lender_spec, NULL);
    st->LeaseType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &lease_spec, NULL);
    if (!st->LenderType || !st->LeaseType)
        return -1;
    if (PyModule_AddType(module, st->LenderType) < 0)
        return -1;
    return PyModule_AddType(module, st->LeaseType);
}
