/* module.h: per-module state and helpers shared by the binding files. */
#ifndef RJ_BINDING_MODULE_H
#define RJ_BINDING_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

typedef struct rj_state {
    /* Exception classes, defined in Python (rulejet/errors.py). */
    PyObject *FileError;
    PyObject *ClosedError;
    PyObject *BusyError;
    PyObject *KernelError;
    PyObject *JSONError;
    PyObject *PathError;
    PyObject *RingError;
    PyObject *LogCorruptionError;
    /* rulejet._sentinel.MISSING and json.loads. */
    PyObject *MISSING;
    PyObject *json_loads;
    /* Heap types. */
    PyTypeObject *U64ArrayType;
    PyTypeObject *MappingType;
    PyTypeObject *PinType;
    PyTypeObject *RawJSONType;
    PyTypeObject *PathSetType;
    PyTypeObject *ProgramType;
    PyTypeObject *ArenaType;
    PyTypeObject *ArenaBufferType;
    PyTypeObject *ArenaBatchType;
    PyTypeObject *LenderType;
    PyTypeObject *LeaseType;
    PyTypeObject *RingType;
    PyTypeObject *LogWriterType;
    PyTypeObject *ReadaheadType;
} rj_state;

rj_state *rj_get_state(PyObject *module);
rj_state *rj_state_from_type(PyTypeObject *tp);

/* The one table from core return codes to exceptions: -ENOMEM becomes
 * MemoryError, any other -errno a FileError carrying errno and path
 * (path may be NULL). Always returns NULL. */
PyObject *rj_raise_errno(rj_state *st, int rc, PyObject *path);

/* The kernel named by a Python caller, or NULL with KernelError set if
 * the name is unknown or this CPU cannot run it. */
struct rj_kernel;
const struct rj_kernel *rj_kernel_arg(rj_state *st, const char *name);

/* Types and functions defined in the other binding files. */
int rj_u64array_init_type(PyObject *module, rj_state *st);
PyObject *rj_u64array_steal(rj_state *st, uint64_t *data, size_t len);
int rj_mapping_init_type(PyObject *module, rj_state *st);
int rj_rawjson_init_types(PyObject *module, rj_state *st);
int rj_pathset_init_type(PyObject *module, rj_state *st);
int rj_program_init_type(PyObject *module, rj_state *st);
int rj_arena_init_types(PyObject *module, rj_state *st);
int rj_lender_init_types(PyObject *module, rj_state *st);
int rj_ring_init_type(PyObject *module, rj_state *st);
int rj_log_init_type(PyObject *module, rj_state *st);
int rj_readahead_init_type(PyObject *module, rj_state *st);
/* The helper of a Readahead object and its buffer's length, or NULL with
 * TypeError (not one) or ValueError (closed) set. */
struct rj_ahead;
struct rj_ahead *rj_readahead_of(rj_state *st, PyObject *obj, size_t *len);
extern PyMethodDef rj_log_methods[];
extern PyMethodDef rj_files_methods[];
extern PyMethodDef rj_lines_methods[];
extern PyMethodDef rj_json_methods[];

/* A buffer argument that may have to outlive the call: values that point
 * into it (RawJSON) share one Pin, created on first need, which then owns
 * the Py_buffer. Call rj_pinned_done exactly once. */
typedef struct rj_pinned {
    Py_buffer view;
    PyObject *pin; /* NULL until a value needed it */
} rj_pinned;

PyObject *rj_pin_get(rj_state *st, rj_pinned *pb);
void rj_pinned_done(rj_pinned *pb);
PyObject *rj_rawjson_new(rj_state *st, PyObject *pin, const char *ptr, Py_ssize_t len);

/* Raise JSONError for a failure at byte `offset` of buf, with 1-based line
 * and column computed from the newlines before it. Returns NULL. */
PyObject *rj_raise_json(rj_state *st, int rc, const char *msg, const uint8_t *buf,
                        size_t offset);

/* GIL is released for native loops over more bytes than this: below it,
 * the release/acquire pair costs more than it frees. */
#define RJ_GIL_THRESHOLD ((Py_ssize_t)1 << 16)

#endif
