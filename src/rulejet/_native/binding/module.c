/* module.c: rulejet._native init (multi-phase, per-module state), the
 * error table, and the kernel-dispatch and probe functions.
 *
 * Exception classes live in rulejet/errors.py so Python and C raise the
 * same types; exec imports that module and keeps references in state.
 * RULEJET_KERNEL is applied here, at import: an unknown or unsupported
 * name fails the import with KernelError rather than running a kernel the
 * CPU cannot execute.
 */
#include "module.h"
#include "../core/cpu.h"
#include "../core/dispatch.h"
#include "../core/mapped.h"
#include "../core/probe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

rj_state *rj_get_state(PyObject *module) { return PyModule_GetState(module); }

PyObject *rj_raise_errno(rj_state *st, int rc, PyObject *path)
{
    int e = -rc;
    if (e == ENOMEM)
        return PyErr_NoMemory();
    PyObject *exc = path
        ? PyObject_CallFunction(st->FileError, "isO", e, strerror(e), path)
        : PyObject_CallFunction(st->FileError, "is", e, strerror(e));
    if (exc) {
        PyErr_SetObject(st->FileError, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *kernel_names(int supported_only)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && rj_all_kernels[i]; i++) {
        if (supported_only && !rj_kernel_supported(rj_all_kernels[i]))
            continue;
        PyObject *s = PyUnicode_FromString(rj_all_kernels[i]->name);
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(s);
    }
    return list;
}

const struct rj_kernel *rj_kernel_arg(rj_state *st, const char *name)
{
    const rj_kernel *k = rj_kernel_by_name(name);
    if (!k) {
        PyObject *all = kernel_names(0);
        PyErr_Format(st->KernelError, "unknown kernel '%s' (known: %R)", name, all);
        Py_XDECREF(all);
        return NULL;
    }
    if (!rj_kernel_supported(k)) {
        PyObject *ok = kernel_names(1);
        PyErr_Format(st->KernelError,
                     "kernel '%s' is not supported by this CPU (available: %R)",
                     name, ok);
        Py_XDECREF(ok);
        return NULL;
    }
    return k;
}

static PyObject *py_set_kernel(PyObject *module, PyObject *arg)
{
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name || !rj_kernel_arg(rj_get_state(module), name))
        return NULL;
    rj_kernel_select(name); /* cannot fail: name checked above */
    Py_RETURN_NONE;
}

static PyObject *py_active_kernel(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    return PyUnicode_FromString(rj_kernel_active()->name);
}

static PyObject *py_available_kernels(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    return kernel_names(1);
}

static PyObject *py_compiled_kernels(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    return kernel_names(0);
}

static PyObject *py_cpu_features(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    static const struct { uint32_t bit; const char *name; } names[] = {
        {RJ_CPU_SSE2, "sse2"}, {RJ_CPU_SSE42, "sse4.2"}, {RJ_CPU_AVX2, "avx2"},
        {RJ_CPU_PCLMUL, "pclmul"}, {RJ_CPU_BMI1, "bmi1"}, {RJ_CPU_BMI2, "bmi2"},
    };
    uint32_t f = rj_cpu_features();
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < sizeof names / sizeof names[0]; i++) {
        if (!(f & names[i].bit))
            continue;
        PyObject *s = PyUnicode_FromString(names[i].name);
        if (!s || PyList_Append(list, s) < 0)
            Py_CLEAR(list);
        Py_XDECREF(s);
    }
    return list;
}

static PyObject *py_page_size(PyObject *m, PyObject *Py_UNUSED(a))
{
    (void)m;
    return PyLong_FromSize_t(rj_page_size());
}

static PyObject *probe_result(rj_state *st, int rc, PyObject *path)
{
    if (rc < 0)
        return rj_raise_errno(st, rc, path);
    return PyBool_FromLong(rc);
}

static PyObject *py_probe_odirect(PyObject *module, PyObject *arg)
{
    PyObject *bytes_path;
    if (!PyUnicode_FSConverter(arg, &bytes_path))
        return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = rj_probe_odirect(PyBytes_AS_STRING(bytes_path));
    Py_END_ALLOW_THREADS
    Py_DECREF(bytes_path);
    return probe_result(rj_get_state(module), rc, arg);
}

static PyObject *py_probe_io_uring(PyObject *module, PyObject *Py_UNUSED(a))
{
    return probe_result(rj_get_state(module), rj_probe_io_uring(), NULL);
}

static PyMethodDef module_methods[] = {
    {"set_kernel", py_set_kernel, METH_O, "Force the kernel set by name."},
    {"active_kernel", py_active_kernel, METH_NOARGS, "Name of the active kernel."},
    {"available_kernels", py_available_kernels, METH_NOARGS,
     "Kernels this CPU can run, best first."},
    {"compiled_kernels", py_compiled_kernels, METH_NOARGS,
     "Kernels compiled into this build, best first."},
    {"cpu_features", py_cpu_features, METH_NOARGS, "Detected CPU features."},
    {"page_size", py_page_size, METH_NOARGS, "The OS page size in bytes."},
    {"probe_odirect", py_probe_odirect, METH_O,
     "True if O_DIRECT writes work in the given directory."},
    {"probe_io_uring", py_probe_io_uring, METH_NOARGS,
     "True if io_uring_setup(2) is allowed."},
    {NULL, NULL, 0, NULL},
};

static int load_exceptions(rj_state *st)
{
    PyObject *errors = PyImport_ImportModule("rulejet.errors");
    if (!errors)
        return -1;
    st->FileError = PyObject_GetAttrString(errors, "FileError");
    st->ClosedError = PyObject_GetAttrString(errors, "ClosedError");
    st->BusyError = PyObject_GetAttrString(errors, "BusyError");
    st->KernelError = PyObject_GetAttrString(errors, "KernelError");
    st->JSONError = PyObject_GetAttrString(errors, "JSONError");
    st->PathError = PyObject_GetAttrString(errors, "PathError");
    st->RingError = PyObject_GetAttrString(errors, "RingError");
    st->LogCorruptionError = PyObject_GetAttrString(errors, "LogCorruptionError");
    Py_DECREF(errors);
    if (!(st->FileError && st->ClosedError && st->BusyError && st->KernelError &&
          st->JSONError && st->PathError && st->RingError && st->LogCorruptionError))
        return -1;
    PyObject *sentinel = PyImport_ImportModule("rulejet._sentinel");
    if (!sentinel)
        return -1;
    st->MISSING = PyObject_GetAttrString(sentinel, "MISSING");
    Py_DECREF(sentinel);
    PyObject *json = PyImport_ImportModule("json");
    if (!json)
        return -1;
    st->json_loads = PyObject_GetAttrString(json, "loads");
    Py_DECREF(json);
    return st->MISSING && st->json_loads ? 0 : -1;
}

static int apply_kernel_env(rj_state *st)
{
    const char *name = getenv("RULEJET_KERNEL");
    if (!name || !*name)
        return 0;
    if (!rj_kernel_arg(st, name)) {
        /* Prefix the variable so the import error says where it came from. */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_Format(st->KernelError, "RULEJET_KERNEL=%s: %S", name, value);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return -1;
    }
    rj_kernel_select(name);
    return 0;
}

static int module_exec(PyObject *module)
{
    rj_state *st = rj_get_state(module);
    if (load_exceptions(st) < 0 || rj_u64array_init_type(module, st) < 0 ||
        rj_mapping_init_type(module, st) < 0 || rj_rawjson_init_types(module, st) < 0 ||
        rj_pathset_init_type(module, st) < 0 || rj_program_init_type(module, st) < 0 ||
        rj_arena_init_types(module, st) < 0 || rj_lender_init_types(module, st) < 0 ||
        rj_ring_init_type(module, st) < 0 || rj_log_init_type(module, st) < 0 ||
        rj_readahead_init_type(module, st) < 0 ||
        PyModule_AddFunctions(module, rj_log_methods) < 0 ||
        PyModule_AddFunctions(module, rj_files_methods) < 0 ||
        PyModule_AddFunctions(module, rj_lines_methods) < 0 ||
        PyModule_AddFunctions(module, rj_json_methods) < 0)
        return -1;
    return apply_kernel_env(st);
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    rj_state *st = rj_get_state(module);
    Py_VISIT(st->FileError);
    Py_VISIT(st->ClosedError);
    Py_VISIT(st->BusyError);
    Py_VISIT(st->KernelError);
    Py_VISIT(st->JSONError);
    Py_VISIT(st->PathError);
    Py_VISIT(st->RingError);
    Py_VISIT(st->LogCorruptionError);
    Py_VISIT(st->MISSING);
    Py_VISIT(st->json_loads);
    Py_VISIT(st->U64ArrayType);
    Py_VISIT(st->MappingType);
    Py_VISIT(st->PinType);
    Py_VISIT(st->RawJSONType);
    Py_VISIT(st->PathSetType);
    Py_VISIT(st->ProgramType);
    Py_VISIT(st->ArenaType);
    Py_VISIT(st->ArenaBufferType);
    Py_VISIT(st->ArenaBatchType);
    Py_VISIT(st->LenderType);
    Py_VISIT(st->LeaseType);
    Py_VISIT(st->RingType);
    Py_VISIT(st->LogWriterType);
    Py_VISIT(st->ReadaheadType);
    return 0;
}

static int module_clear(PyObject *module)
{
    rj_state *st = rj_get_state(module);
    Py_CLEAR(st->FileError);
    Py_CLEAR(st->ClosedError);
    Py_CLEAR(st->BusyError);
    Py_CLEAR(st->KernelError);
    Py_CLEAR(st->JSONError);
    Py_CLEAR(st->PathError);
    Py_CLEAR(st->RingError);
    Py_CLEAR(st->LogCorruptionError);
    Py_CLEAR(st->MISSING);
    Py_CLEAR(st->json_loads);
    Py_CLEAR(st->U64ArrayType);
    Py_CLEAR(st->MappingType);
    Py_CLEAR(st->PinType);
    Py_CLEAR(st->RawJSONType);
    Py_CLEAR(st->PathSetType);
    Py_CLEAR(st->ProgramType);
    Py_CLEAR(st->ArenaType);
    Py_CLEAR(st->ArenaBufferType);
    Py_CLEAR(st->ArenaBatchType);
    Py_CLEAR(st->LenderType);
    Py_CLEAR(st->LeaseType);
    Py_CLEAR(st->RingType);
    Py_CLEAR(st->LogWriterType);
    Py_CLEAR(st->ReadaheadType);
    return 0;
}

static void module_free(void *module) { module_clear((PyObject *)module); }

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rulejet._native",
    .m_doc = "rulejet's C core: kernels, line indexing, memory maps.",
    .m_size = sizeof(rj_state),
    .m_methods = module_methods,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__native(void) { return PyModuleDef_Init(&module_def); }

rj_state *rj_state_from_type(PyTypeObject *tp)
{
    /* Our types are created with PyType_FromModuleAndSpec; only RingBase
     * may be subclassed (in Python), so look up the MRO for the module. */
    if (tp->tp_flags & Py_TPFLAGS_BASETYPE)
        return PyModule_GetState(PyType_GetModuleByDef(tp, &module_def));
    return PyType_GetModuleState(tp);
}
