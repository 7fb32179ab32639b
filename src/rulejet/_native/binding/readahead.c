/* readahead.c: Readahead, the helper thread of core/ahead.c over a buffer.
 *
 * Readahead(buffer) holds the buffer (a MappedFile lease cannot close
 * under it) and starts the helper when the buffer is 16 MiB or more;
 * Program.run(..., readahead=r, offset=o) then tells it where the scan
 * is (o: the run's buffer's offset within r's). close() stops the helper
 * and releases the buffer; dealloc does the same.
 */
#include "module.h"

#include "../core/ahead.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
    int have_view;
    rj_ahead ahead;
} Readahead;

rj_ahead *rj_readahead_of(rj_state *st, PyObject *obj, size_t *len)
{
    if (!PyObject_TypeCheck(obj, st->ReadaheadType)) {
        PyErr_Format(PyExc_TypeError, "readahead must be a Readahead, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    Readahead *self = (Readahead *)obj;
    if (!self->have_view) {
        PyErr_SetString(PyExc_ValueError, "the Readahead is closed");
        return NULL;
    }
    *len = (size_t)self->view.len;
    return &self->ahead;
}

static void readahead_close_impl(Readahead *self)
{
    if (self->ahead.running) {
        Py_BEGIN_ALLOW_THREADS
        rj_ahead_stop(&self->ahead);
        Py_END_ALLOW_THREADS
    }
    if (self->have_view) {
        PyBuffer_Release(&self->view);
        self->have_view = 0;
    }
}

static int readahead_init(Readahead *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"buffer", NULL};
    Py_buffer view;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "y*:Readahead", names, &view))
        return -1;
    readahead_close_impl(self); /* __init__ called again */
    self->view = view;
    self->have_view = 1;
    rj_ahead_start(&self->ahead, view.buf, (size_t)view.len);
    return 0;
}

static void readahead_dealloc(Readahead *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    readahead_close_impl(self);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *readahead_close(Readahead *self, PyObject *Py_UNUSED(ignored))
{
    readahead_close_impl(self);
    Py_RETURN_NONE;
}

static PyObject *readahead_enter(Readahead *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *readahead_exit(Readahead *self, PyObject *Py_UNUSED(args))
{
    readahead_close_impl(self);
    Py_RETURN_FALSE;
}

static PyObject *readahead_get_running(Readahead *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->ahead.running);
}

static PyObject *readahead_get_requested(Readahead *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSize_t(atomic_load(&self->ahead.done));
}

static PyMethodDef readahead_methods[] = {
    {"close", (PyCFunction)readahead_close, METH_NOARGS,
     "Stop the helper (waiting for it) and release the buffer. Idempotent."},
    {"__enter__", (PyCFunction)readahead_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)readahead_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef readahead_getset[] = {
    {"running", (getter)readahead_get_running, NULL,
     "Whether a helper thread was started (16 MiB or more, RULEJET_READAHEAD not 0).", NULL},
    {"requested", (getter)readahead_get_requested, NULL,
     "Bytes the helper has asked the kernel for so far.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot readahead_slots[] = {
    {Py_tp_init, readahead_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, readahead_dealloc},
    {Py_tp_methods, readahead_methods},
    {Py_tp_getset, readahead_getset},
    {Py_tp_doc, "Readahead(buffer): fault a buffer in ahead of a Program.run scan, on a "
                "helper thread (see core/ahead.h)."},
    {0, NULL},
};

static PyType_Spec readahead_spec = {
    .name = "rulejet._native.Readahead",
    .basicsize = sizeof(Readahead),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = readahead_slots,
};

int rj_readahead_init_type(PyObject *module, rj_state *st)
{
    st->ReadaheadType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &readahead_spec, NULL);
    if (!st->ReadaheadType || PyModule_AddType(module, st->ReadaheadType) < 0)
        return -1;
    PyObject *floor = PyLong_FromSize_t(RJ_AHEAD_MIN);
    int rc = floor ? PyModule_AddObjectRef(module, "READAHEAD_MIN", floor) : -1;
    Py_XDECREF(floor);
    return rc;
}
