/* The start of a WSGI response (_response.python_encode_start), in C, for the
 * response apps send almost every time.
 *
 * The Python function is the definition, and it keeps every rule: this module
 * checks nothing itself. It answers only from the caches Python fills after
 * checking a value (_STATUS_CACHE: status line -> code; _PAIR_CACHE: a
 * (name, value) tuple of str -> its ASGI byte pair), and hands the call to
 * Python for anything else: a status line or a header pair seen for the first
 * time, a header that is not a tuple, HEAD, a status without a body. A result
 * from here is always the one Python gives; tests/bridge/test_cresponse.py
 * checks that.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Set by configure(). */
static PyObject *py_encode_start = NULL; /* _response.python_encode_start */
static PyObject *status_cache = NULL;    /* _response._STATUS_CACHE (dict) */
static PyObject *pair_cache = NULL;      /* _response._PAIR_CACHE (dict) */

static PyObject *
fallback(PyObject *const *args)
{
    return PyObject_Vectorcall(py_encode_start, args, 3, NULL);
}

/* The Content-Length of encoded pairs as an int, a new reference to None when
 * there is none, NULL on error. Only one Content-Length of ASCII digits is
 * answered here: *slow is set for anything else (a repeated or malformed one),
 * which Python refuses or accepts by its own rules. */
static PyObject *
declared_length(PyObject *encoded, int *slow)
{
    Py_ssize_t count = PyList_GET_SIZE(encoded);
    PyObject *found = NULL; /* borrowed */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *pair = PyList_GET_ITEM(encoded, i);
        PyObject *name = PyTuple_GET_ITEM(pair, 0);
        if (PyBytes_GET_SIZE(name) != 14 || memcmp(PyBytes_AS_STRING(name), "content-length", 14)) {
            continue;
        }
        PyObject *value = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t size = PyBytes_GET_SIZE(value);
        const char *digits = PyBytes_AS_STRING(value);
        Py_ssize_t j = 0;
        while (j < size && digits[j] >= '0' && digits[j] <= '9') {
            j++;
        }
        if (found != NULL || size == 0 || j != size) {
            *slow = 1;
            Py_RETURN_NONE;
        }
        found = value;
    }
    if (found == NULL) {
        Py_RETURN_NONE;
    }
    return PyLong_FromString(PyBytes_AS_STRING(found), NULL, 10);
}

static PyObject *
encode_start(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "encode_start(status, headers, method) takes 3 arguments");
        return NULL;
    }
    if (py_encode_start == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgishift.bridge._cresponse is not configured");
        return NULL;
    }
    PyObject *status = args[0], *headers = args[1], *method = args[2];
    if (!PyUnicode_CheckExact(status) || !PyUnicode_CheckExact(method)
        || PyUnicode_CompareWithASCIIString(method, "HEAD") == 0) {
        return fallback(args);
    }
    PyObject *code = PyDict_GetItemWithError(status_cache, status); /* borrowed */
    if (code == NULL) {
        return PyErr_Occurred() ? NULL : fallback(args);
    }
    long number = PyLong_AsLong(code);
    if (number == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (number < 200 || number == 204 || number == 304) { /* no body: Python's rules */
        return fallback(args);
    }
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return fallback(args);
    }
    Py_INCREF(code);
    Py_INCREF(headers);
    Py_ssize_t count = PySequence_Fast_GET_SIZE(headers);
    PyObject *encoded = PyList_New(count);
    PyObject *result = NULL;
    int slow = 0;
    if (encoded == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        /* A lookup may run Python code (a str subclass's __eq__): re-check the size. */
        if (PySequence_Fast_GET_SIZE(headers) != count) {
            slow = 1;
            break;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(headers, i);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2) {
            slow = 1;
            break;
        }
        Py_INCREF(item);
        PyObject *pair = PyDict_GetItemWithError(pair_cache, item); /* borrowed */
        Py_DECREF(item);
        if (pair == NULL) {
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
                    goto done; /* an unhashable item is Python's to refuse */
                }
                PyErr_Clear();
            }
            slow = 1;
            break;
        }
        Py_INCREF(pair);
        PyList_SET_ITEM(encoded, i, pair);
    }
    if (slow) {
        result = fallback(args);
        goto done;
    }
    PyObject *declared = declared_length(encoded, &slow);
    if (declared != NULL) {
        if (slow) {
            result = fallback(args);
        }
        else {
            result = PyTuple_Pack(4, code, encoded, Py_True, declared);
        }
        Py_DECREF(declared);
    }
done:
    Py_XDECREF(encoded);
    Py_DECREF(headers);
    Py_DECREF(code);
    return result;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *function, *statuses, *pairs;
    if (!PyArg_ParseTuple(args, "OO!O!:configure", &function, &PyDict_Type, &statuses,
                          &PyDict_Type, &pairs)) {
        return NULL;
    }
    Py_INCREF(function);
    Py_INCREF(statuses);
    Py_INCREF(pairs);
    Py_XSETREF(py_encode_start, function);
    Py_XSETREF(status_cache, statuses);
    Py_XSETREF(pair_cache, pairs);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"encode_start", (PyCFunction)(void (*)(void))encode_start, METH_FASTCALL,
     "encode_start(status, headers, method) -> (code, headers, has_body, declared)"},
    {"configure", configure, METH_VARARGS,
     "configure(python_encode_start, status_cache, pair_cache) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_cresponse",
    .m_doc = "The common response start of asgishift.bridge._response.encode_start, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__cresponse(void)
{
    return PyModule_Create(&module_def);
}
