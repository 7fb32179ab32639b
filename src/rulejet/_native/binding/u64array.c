/* u64array.c: U64Array, an immutable array of uint64 in native memory.
 *
 * Exposes the buffer protocol (format "Q") so memoryview, array and numpy
 * read it without copying, plus len() and indexing. The data is owned,
 * never resized after creation, and freed only in dealloc, which cannot
 * run while a buffer export holds a reference.
 */
#include "module.h"

#include <stdlib.h>

typedef struct {
    PyObject_HEAD
    uint64_t *data;
    Py_ssize_t len;
} U64Array;

PyObject *rj_u64array_steal(rj_state *st, uint64_t *data, size_t len)
{
    if (len > (size_t)PY_SSIZE_T_MAX / sizeof(uint64_t)) {
        free(data);
        return PyErr_NoMemory();
    }
    U64Array *self = PyObject_New(U64Array, st->U64ArrayType);
    if (!self) {
        free(data);
        return NULL;
    }
    self->data = data;
    self->len = (Py_ssize_t)len;
    return (PyObject *)self;
}

static void u64array_dealloc(U64Array *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    free(self->data);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static Py_ssize_t u64array_len(U64Array *self) { return self->len; }

static PyObject *u64array_item(U64Array *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->len) {
        PyErr_SetString(PyExc_IndexError, "U64Array index out of range");
        return NULL;
    }
    return PyLong_FromUnsignedLongLong(self->data[i]);
}

static int u64array_getbuffer(U64Array *self, Py_buffer *view, int flags)
{
    static uint64_t empty;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "U64Array is read-only");
        return -1;
    }
    view->obj = Py_NewRef(self);
    view->buf = self->data ? (void *)self->data : (void *)&empty;
    view->len = self->len * (Py_ssize_t)sizeof(uint64_t);
    view->readonly = 1;
    view->itemsize = sizeof(uint64_t);
    view->format = (flags & PyBUF_FORMAT) ? "Q" : NULL;
    view->ndim = 1;
    view->shape = (flags & PyBUF_ND) ? &self->len : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? &view->itemsize : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

static PyObject *u64array_tolist(U64Array *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *list = PyList_New(self->len);
    if (!list)
        return NULL;
    for (Py_ssize_t i = 0; i < self->len; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(self->data[i]);
        if (!v) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

static PyObject *u64array_repr(U64Array *self)
{
    return PyUnicode_FromFormat("<U64Array len=%zd>", self->len);
}

static PyMethodDef u64array_methods[] = {
    {"tolist", (PyCFunction)u64array_tolist, METH_NOARGS,
     "The offsets as a list of ints."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot u64array_slots[] = {
    {Py_tp_dealloc, u64array_dealloc},
    {Py_tp_repr, u64array_repr},
    {Py_tp_methods, u64array_methods},
    {Py_sq_length, u64array_len},
    {Py_sq_item, u64array_item},
    {Py_bf_getbuffer, u64array_getbuffer},
    {Py_tp_doc, "Immutable array of uint64 in native memory (buffer format 'Q')."},
    {0, NULL},
};

static PyType_Spec u64array_spec = {
    .name = "rulejet._native.U64Array",
    .basicsize = sizeof(U64Array),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = u64array_slots,
};

int rj_u64array_init_type(PyObject *module, rj_state *st)
{
    st->U64ArrayType =
        (PyTypeObject *)PyType_FromModuleAndSpec(module, &u64array_spec, NULL);
    if (!st->U64ArrayType)
        return -1;
    return PyModule_AddType(module, st->U64ArrayType);
}
