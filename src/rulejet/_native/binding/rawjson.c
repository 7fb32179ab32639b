/* rawjson.c: RawJSON, a zero-copy bytes-like view of an object or array's
 * exact text, and Pin, the holder of the source buffer it points into.
 *
 * Invariant: a RawJSON's pointer stays valid because it holds a reference
 * to a Pin, and the Pin holds a Py_buffer export of the source (so bytes
 * stay alive and a memory map refuses to close) until the last value that
 * uses it is gone.
 */
#include "module.h"

typedef struct {
    PyObject_HEAD
    Py_buffer view;
} Pin;

static void pin_dealloc(Pin *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyBuffer_Release(&self->view);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static PyType_Slot pin_slots[] = {
    {Py_tp_dealloc, pin_dealloc},
    {Py_tp_doc, "Keeps a source buffer exported while values point into it."},
    {0, NULL},
};

static PyType_Spec pin_spec = {
    .name = "rulejet._native._Pin",
    .basicsize = sizeof(Pin),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = pin_slots,
};

PyObject *rj_pin_get(rj_state *st, rj_pinned *pb)
{
    if (!pb->pin) {
        Pin *pin = PyObject_New(Pin, st->PinType);
        if (!pin)
            return NULL;
        pin->view = pb->view; /* the Pin now owns the export */
        pb->view.obj = NULL;
        pb->pin = (PyObject *)pin;
    }
    return pb->pin;
}

void rj_pinned_done(rj_pinned *pb)
{
    if (pb->pin)
        Py_CLEAR(pb->pin);
    else
        PyBuffer_Release(&pb->view);
}

typedef struct {
    PyObject_HEAD
    PyObject *pin;
    const char *ptr;
    Py_ssize_t len;
} RawJSON;

PyObject *rj_rawjson_new(rj_state *st, PyObject *pin, const char *ptr, Py_ssize_t len)
{
    RawJSON *self = PyObject_New(RawJSON, st->RawJSONType);
    if (!self)
        return NULL;
    self->pin = Py_NewRef(pin);
    self->ptr = ptr;
    self->len = len;
    return (PyObject *)self;
}

static void rawjson_dealloc(RawJSON *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    Py_DECREF(self->pin);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static int rawjson_getbuffer(RawJSON *self, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)self, (void *)self->ptr, self->len, 1, flags);
}

static PyObject *rawjson_bytes(RawJSON *self, PyObject *Py_UNUSED(a))
{
    return PyBytes_FromStringAndSize(self->ptr, self->len);
}

static PyObject *rawjson_decode(RawJSON *self, PyObject *Py_UNUSED(a))
{
    rj_state *st = rj_state_from_type(Py_TYPE(self));
    PyObject *b = PyBytes_FromStringAndSize(self->ptr, self->len);
    if (!b)
        return NULL;
    PyObject *r = PyObject_CallOneArg(st->json_loads, b);
    Py_DECREF(b);
    return r;
}

static Py_ssize_t rawjson_len(RawJSON *self) { return self->len; }

static PyObject *rawjson_repr(RawJSON *self)
{
    PyObject *b = PyBytes_FromStringAndSize(self->ptr, self->len > 200 ? 200 : self->len);
    if (!b)
        return NULL;
    PyObject *r = PyUnicode_FromFormat(self->len > 200 ? "RawJSON(%R...)" : "RawJSON(%R)", b);
    Py_DECREF(b);
    return r;
}

static PyObject *rawjson_richcompare(RawJSON *self, PyObject *other, int op)
{
    if (op != Py_EQ && op != Py_NE)
        Py_RETURN_NOTIMPLEMENTED;
    Py_buffer ov;
    if (!(PyObject_TypeCheck(other, Py_TYPE(self)) || PyBytes_Check(other)) ||
        PyObject_GetBuffer(other, &ov, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    int eq = ov.len == self->len && memcmp(ov.buf, self->ptr, (size_t)self->len) == 0;
    PyBuffer_Release(&ov);
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static Py_hash_t rawjson_hash(RawJSON *self)
{
    /* Equal to hash(bytes(v)), so RawJSON and bytes can share dict keys. */
    PyObject *b = PyBytes_FromStringAndSize(self->ptr, self->len);
    if (!b)
        return -1;
    Py_hash_t h = PyObject_Hash(b);
    Py_DECREF(b);
    return h;
}

static PyMethodDef rawjson_methods[] = {
    {"__bytes__", (PyCFunction)rawjson_bytes, METH_NOARGS, "The exact JSON text."},
    {"decode", (PyCFunction)rawjson_decode, METH_NOARGS,
     "The Python value of the text (json.loads)."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot rawjson_slots[] = {
    {Py_tp_dealloc, rawjson_dealloc},
    {Py_tp_repr, rawjson_repr},
    {Py_tp_richcompare, rawjson_richcompare},
    {Py_tp_hash, rawjson_hash},
    {Py_tp_methods, rawjson_methods},
    {Py_sq_length, rawjson_len},
    {Py_bf_getbuffer, rawjson_getbuffer},
    {Py_tp_doc, "A JSON object or array: a zero-copy view of its exact text. "
                "bytes(v) gives the text, v.decode() the Python value."},
    {0, NULL},
};

static PyType_Spec rawjson_spec = {
    .name = "rulejet._native.RawJSON",
    .basicsize = sizeof(RawJSON),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = rawjson_slots,
};

int rj_rawjson_init_types(PyObject *module, rj_state *st)
{
    st->PinType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &pin_spec, NULL);
    if (!st->PinType)
        return -1;
    st->RawJSONType = (PyTypeObject *)PyType_FromModuleAndSpec(module, &rawjson_spec, NULL);
    if (!st->RawJSONType)
        return -1;
    return PyModule_AddType(module, st->RawJSONType);
}
