/* The PEP 3333 environ -> ASGI HTTP scope translation of _scope.py, in C, for the
 * common request only.
 *
 * _scope.python_build_scope is the definition. This module builds the same dict
 * for the request a WSGI server sends almost every time (ASCII path and values,
 * a request target that equals the path, header names and addresses seen
 * before), and hands the whole call to the Python function for anything else:
 * a non-ASCII or percent-escaped path, a bad CONTENT_LENGTH, a lowercase method,
 * a header name or an address it has not cached yet, a value that is not exactly
 * a str. Python's function restarts from the environ, so this one never leaves
 * a half-built scope behind; the caches it reads are Python's, and only Python
 * fills them.
 *
 * A fast-path result is always equal to Python's;
 * tests/asgi_to_wsgi/test_a2w_cscope.py checks that on a table of environs and
 * on generated ones.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_cintern.h"
#include <string.h>

/* Set by configure(): the Python definition and the tables it shares. */
static PyObject *py_build_scope = NULL; /* _scope.python_build_scope */
static PyObject *name_cache = NULL;     /* _scope._NAME_CACHE: environ key -> header name or None */
static PyObject *address_cache = NULL;  /* _scope._ADDRESS_CACHE: (host, port) -> address */
static PyObject *http_versions = NULL;  /* _scope._HTTP_VERSIONS */
static PyObject *asgi_version = NULL;   /* _scope.ASGI_VERSION */

/* Interned strings. */
static PyObject *s_type, *s_asgi, *s_http_version, *s_method, *s_scheme, *s_path, *s_raw_path,
    *s_query_string, *s_root_path, *s_headers, *s_client, *s_server, *s_state, *s_extensions,
    *s_http, *s_GET, *s_HTTP_1_1, *s_empty, *s_SCRIPT_NAME, *s_PATH_INFO, *s_CONTENT_TYPE,
    *s_CONTENT_LENGTH, *s_SERVER_PROTOCOL, *s_REQUEST_METHOD, *s_url_scheme, *s_RAW_URI,
    *s_REQUEST_URI, *s_QUERY_STRING, *s_REMOTE_ADDR, *s_REMOTE_PORT, *s_SERVER_NAME,
    *s_SERVER_PORT;
static PyObject *b_content_type, *b_content_length;

/* Returned by the helpers below: take Python's path for this environ. */
#define SLOW 1

/* Borrowed environ[key] as an exact str, ``fallback`` when absent.
 * 0 (``*out`` set), SLOW (present, not an exact str), -1 (error set). */
static int
get_str(PyObject *environ, PyObject *key, PyObject *fallback, PyObject **out)
{
    PyObject *value = PyDict_GetItemWithError(environ, key);
    if (value == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        *out = fallback;
        return 0;
    }
    if (!PyUnicode_CheckExact(value)) {
        return SLOW;
    }
    *out = value;
    return 0;
}

/* New bytes of an ASCII str; NULL without an error set when ``text`` is not ASCII. */
static PyObject *
ascii_bytes(PyObject *text)
{
    if (!PyUnicode_IS_ASCII(text)) {
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)PyUnicode_DATA(text),
                                     PyUnicode_GET_LENGTH(text));
}

/* 1 when every character of the ASCII ``text`` is one quote_from_bytes keeps. */
static int
quote_safe(PyObject *text)
{
    const unsigned char *data = (const unsigned char *)PyUnicode_DATA(text);
    Py_ssize_t size = PyUnicode_GET_LENGTH(text);
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            continue;
        }
        if (c == 0 || strchr("/:@!$&'()*+,;=-._~", c) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* The request target of RAW_URI or REQUEST_URI (the first that is not empty).
 * 0 (``*out`` borrowed, or NULL for none), SLOW, -1. */
static int
request_target(PyObject *environ, PyObject **out)
{
    PyObject *keys[2] = {s_RAW_URI, s_REQUEST_URI};
    for (int i = 0; i < 2; i++) {
        PyObject *value = PyDict_GetItemWithError(environ, keys[i]);
        if (value == NULL) {
            if (PyErr_Occurred()) {
                return -1;
            }
            continue;
        }
        if (value == Py_None) {
            continue;
        }
        if (!PyUnicode_CheckExact(value)) {
            return SLOW;
        }
        if (PyUnicode_GET_LENGTH(value) > 0) {
            *out = value;
            return 0;
        }
    }
    *out = NULL;
    return 0;
}

/* New raw_path for the ASCII ``path`` (_scope._raw_path); NULL with ``*rc`` SLOW or -1. */
static PyObject *
raw_path(PyObject *environ, PyObject *path, int *rc)
{
    PyObject *raw;
    *rc = request_target(environ, &raw);
    if (*rc != 0) {
        return NULL;
    }
    if (raw != NULL && PyUnicode_READ_CHAR(raw, 0) == '/') {
        if (!PyUnicode_IS_ASCII(raw)) {
            *rc = SLOW;
            return NULL;
        }
        const char *data = (const char *)PyUnicode_DATA(raw);
        Py_ssize_t size = PyUnicode_GET_LENGTH(raw);
        const char *query = memchr(data, '?', (size_t)size);
        Py_ssize_t target = query == NULL ? size : (Py_ssize_t)(query - data);
        if (memchr(data, '%', (size_t)target) != NULL) {
            *rc = SLOW; /* Python decodes the escapes to compare */
            return NULL;
        }
        if (target == PyUnicode_GET_LENGTH(path) &&
            memcmp(data, PyUnicode_DATA(path), (size_t)target) == 0) {
            return PyBytes_FromStringAndSize(data, target);
        }
    }
    if (!quote_safe(path)) {
        *rc = SLOW; /* Python percent-encodes it */
        return NULL;
    }
    return ascii_bytes(path);
}

/* Borrowed address of (environ[host_key], environ[port_key]) from the cache, Py_None
 * when there is no host; NULL with ``*rc`` SLOW (not cached yet) or -1. */
static PyObject *
address(PyObject *environ, PyObject *host_key, PyObject *port_key, int *rc)
{
    PyObject *host = PyDict_GetItemWithError(environ, host_key);
    if (host == NULL) {
        *rc = PyErr_Occurred() ? -1 : 0;
        return *rc == 0 ? Py_None : NULL;
    }
    if (host == Py_None) {
        *rc = 0;
        return Py_None;
    }
    if (!PyUnicode_CheckExact(host)) {
        *rc = SLOW;
        return NULL;
    }
    if (PyUnicode_GET_LENGTH(host) == 0) {
        *rc = 0;
        return Py_None;
    }
    PyObject *port = PyDict_GetItemWithError(environ, port_key);
    if (port == NULL && PyErr_Occurred()) {
        *rc = -1;
        return NULL;
    }
    PyObject *key = PyTuple_Pack(2, host, port == NULL ? Py_None : port);
    if (key == NULL) {
        *rc = -1;
        return NULL;
    }
    PyObject *cached = PyDict_GetItemWithError(address_cache, key);
    Py_DECREF(key);
    if (cached == NULL) {
        if (PyErr_Occurred()) {
            PyErr_Clear(); /* an unhashable port: Python's path says what to do */
        }
        *rc = SLOW;
        return NULL;
    }
    *rc = 0;
    return cached;
}

/* Append (name, value) to ``headers``; steals both. 0 or -1. */
static int
append_pair(PyObject *headers, PyObject *name, PyObject *value)
{
    if (name == NULL || value == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(value);
        return -1;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(name);
        Py_DECREF(value);
        return -1;
    }
    PyTuple_SET_ITEM(pair, 0, name);
    PyTuple_SET_ITEM(pair, 1, value);
    int rc = PyList_Append(headers, pair);
    Py_DECREF(pair);
    return rc;
}

/* Fill ``headers`` from the HTTP_* keys, CONTENT_TYPE and CONTENT_LENGTH. 0, SLOW, -1. */
static int
fill_headers(PyObject *environ, PyObject *headers)
{
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(environ, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            return SLOW;
        }
        PyObject *name = PyDict_GetItemWithError(name_cache, key);
        if (name == NULL) {
            return PyErr_Occurred() ? -1 : SLOW; /* Python caches the new key's name */
        }
        if (name == Py_None) {
            continue;
        }
        if (!PyUnicode_CheckExact(value) || !PyUnicode_IS_ASCII(value)) {
            return SLOW;
        }
        Py_INCREF(name);
        if (append_pair(headers, name, ascii_bytes(value)) < 0) {
            return -1;
        }
    }
    PyObject *content_type;
    int rc = get_str(environ, s_CONTENT_TYPE, s_empty, &content_type);
    if (rc != 0) {
        return rc;
    }
    if (PyUnicode_GET_LENGTH(content_type) > 0) {
        if (!PyUnicode_IS_ASCII(content_type)) {
            return SLOW;
        }
        Py_INCREF(b_content_type);
        if (append_pair(headers, b_content_type, ascii_bytes(content_type)) < 0) {
            return -1;
        }
    }
    PyObject *length;
    rc = get_str(environ, s_CONTENT_LENGTH, s_empty, &length);
    if (rc != 0) {
        return rc;
    }
    Py_ssize_t size = PyUnicode_GET_LENGTH(length);
    if (size > 0) {
        if (!PyUnicode_IS_ASCII(length)) {
            return SLOW;
        }
        const char *digits = (const char *)PyUnicode_DATA(length);
        for (Py_ssize_t i = 0; i < size; i++) {
            if (digits[i] < '0' || digits[i] > '9') {
                return SLOW; /* Python raises ScopeError */
            }
        }
        Py_INCREF(b_content_length);
        if (append_pair(headers, b_content_length, ascii_bytes(length)) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The scope for a dict environ; NULL with ``*rc`` SLOW (take Python's path) or -1. */
static PyObject *
fast_scope(PyObject *environ, PyObject *state, PyObject *extensions, int *rc)
{
    PyObject *script_name, *path_info, *protocol, *method, *query;
    if ((*rc = get_str(environ, s_SCRIPT_NAME, s_empty, &script_name)) != 0 ||
        (*rc = get_str(environ, s_PATH_INFO, s_empty, &path_info)) != 0 ||
        (*rc = get_str(environ, s_SERVER_PROTOCOL, s_HTTP_1_1, &protocol)) != 0 ||
        (*rc = get_str(environ, s_REQUEST_METHOD, s_GET, &method)) != 0 ||
        (*rc = get_str(environ, s_QUERY_STRING, s_empty, &query)) != 0) {
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(script_name) || !PyUnicode_IS_ASCII(path_info) ||
        !PyUnicode_IS_ASCII(method) || !PyUnicode_IS_ASCII(query)) {
        *rc = SLOW;
        return NULL;
    }
    const char *letters = (const char *)PyUnicode_DATA(method);
    for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(method); i++) {
        if (letters[i] >= 'a' && letters[i] <= 'z') {
            *rc = SLOW; /* Python upper-cases it */
            return NULL;
        }
    }
    PyObject *version = PyDict_GetItemWithError(http_versions, protocol);
    if (version == NULL) {
        *rc = PyErr_Occurred() ? -1 : SLOW; /* another spelling: Python upper-cases it */
        return NULL;
    }
    if (state != Py_None && !PyDict_CheckExact(state)) {
        *rc = SLOW;
        return NULL;
    }
    PyObject *scheme = PyDict_GetItemWithError(environ, s_url_scheme);
    if (scheme == NULL) {
        if (PyErr_Occurred()) {
            *rc = -1;
            return NULL;
        }
        scheme = s_http;
    }
    PyObject *client = address(environ, s_REMOTE_ADDR, s_REMOTE_PORT, rc);
    if (client == NULL) {
        return NULL;
    }
    PyObject *server = address(environ, s_SERVER_NAME, s_SERVER_PORT, rc);
    if (server == NULL) {
        return NULL;
    }
    PyObject *path = PyUnicode_Concat(script_name, path_info);
    if (path == NULL) {
        *rc = -1;
        return NULL;
    }
    PyObject *raw = raw_path(environ, path, rc);
    if (raw == NULL) {
        Py_DECREF(path);
        if (*rc == 0) {
            *rc = -1;
        }
        return NULL;
    }
    PyObject *headers = PyList_New(0);
    if (headers == NULL) {
        Py_DECREF(path);
        Py_DECREF(raw);
        *rc = -1;
        return NULL;
    }
    *rc = fill_headers(environ, headers);
    if (*rc != 0) {
        Py_DECREF(path);
        Py_DECREF(raw);
        Py_DECREF(headers);
        return NULL;
    }
    PyObject *asgi = PyDict_Copy(asgi_version);
    PyObject *query_bytes = ascii_bytes(query);
    PyObject *state_copy = state == Py_None ? NULL : PyDict_Copy(state);
    /* Sized once, as Python's dict display is (CPython 3.10-3.13 export it). */
    PyObject *scope = _PyDict_NewPresized(14);
    /* The keys in the order of Python's dict display. */
    int failed = asgi == NULL || query_bytes == NULL || (state != Py_None && state_copy == NULL) ||
                 scope == NULL || PyDict_SetItem(scope, s_type, s_http) < 0 ||
                 PyDict_SetItem(scope, s_asgi, asgi) < 0 ||
                 PyDict_SetItem(scope, s_http_version, version) < 0 ||
                 PyDict_SetItem(scope, s_method, method) < 0 ||
                 PyDict_SetItem(scope, s_scheme, scheme) < 0 ||
                 PyDict_SetItem(scope, s_path, path) < 0 ||
                 PyDict_SetItem(scope, s_raw_path, raw) < 0 ||
                 PyDict_SetItem(scope, s_query_string, query_bytes) < 0 ||
                 PyDict_SetItem(scope, s_root_path, script_name) < 0 ||
                 PyDict_SetItem(scope, s_headers, headers) < 0 ||
                 PyDict_SetItem(scope, s_client, client) < 0 ||
                 PyDict_SetItem(scope, s_server, server) < 0 ||
                 (state_copy != NULL && PyDict_SetItem(scope, s_state, state_copy) < 0) ||
                 (extensions != Py_None && PyDict_SetItem(scope, s_extensions, extensions) < 0);
    Py_XDECREF(asgi);
    Py_XDECREF(query_bytes);
    Py_XDECREF(state_copy);
    Py_DECREF(path);
    Py_DECREF(raw);
    Py_DECREF(headers);
    if (failed) {
        Py_XDECREF(scope);
        *rc = -1;
        return NULL;
    }
    *rc = 0;
    return scope;
}

static PyObject *
build_scope(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    if (py_build_scope == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgishift.bridge._cscope is not configured");
        return NULL;
    }
    PyObject *environ = nargs > 0 ? args[0] : NULL;
    PyObject *state = Py_None, *extensions = Py_None;
    int usual = nargs == 1 && PyDict_CheckExact(environ);
    Py_ssize_t keywords = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; usual && i < keywords; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (name == s_state || PyUnicode_Compare(name, s_state) == 0) {
            state = args[nargs + i];
        }
        else if (name == s_extensions || PyUnicode_Compare(name, s_extensions) == 0) {
            extensions = args[nargs + i];
        }
        else {
            usual = 0; /* Python raises the TypeError */
        }
    }
    if (usual) {
        int rc;
        PyObject *scope = fast_scope(environ, state, extensions, &rc);
        if (scope != NULL || rc < 0) {
            return scope;
        }
    }
    return PyObject_Vectorcall(py_build_scope, args, (size_t)nargs, kwnames);
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *build, *names, *addresses, *versions, *asgi;
    if (!PyArg_ParseTuple(args, "OO!O!O!O!:configure", &build, &PyDict_Type, &names, &PyDict_Type,
                          &addresses, &PyDict_Type, &versions, &PyDict_Type, &asgi)) {
        return NULL;
    }
    Py_INCREF(build);
    Py_INCREF(names);
    Py_INCREF(addresses);
    Py_INCREF(versions);
    Py_INCREF(asgi);
    Py_XSETREF(py_build_scope, build);
    Py_XSETREF(name_cache, names);
    Py_XSETREF(address_cache, addresses);
    Py_XSETREF(http_versions, versions);
    Py_XSETREF(asgi_version, asgi);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"build_scope", (PyCFunction)(void (*)(void))build_scope, METH_FASTCALL | METH_KEYWORDS,
     "build_scope(environ, state=None, extensions=None) -> dict: _scope.build_scope for the "
     "common request."},
    {"configure", configure, METH_VARARGS,
     "configure(python_build_scope, name_cache, address_cache, http_versions, asgi_version) "
     "-> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_cscope",
    .m_doc = "The common request of asgishift.bridge._scope.build_scope, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__cscope(void)
{
    INTERN(s_type, "type");
    INTERN(s_asgi, "asgi");
    INTERN(s_http_version, "http_version");
    INTERN(s_method, "method");
    INTERN(s_scheme, "scheme");
    INTERN(s_path, "path");
    INTERN(s_raw_path, "raw_path");
    INTERN(s_query_string, "query_string");
    INTERN(s_root_path, "root_path");
    INTERN(s_headers, "headers");
    INTERN(s_client, "client");
    INTERN(s_server, "server");
    INTERN(s_state, "state");
    INTERN(s_extensions, "extensions");
    INTERN(s_http, "http");
    INTERN(s_GET, "GET");
    INTERN(s_HTTP_1_1, "HTTP/1.1");
    INTERN(s_empty, "");
    INTERN(s_SCRIPT_NAME, "SCRIPT_NAME");
    INTERN(s_PATH_INFO, "PATH_INFO");
    INTERN(s_CONTENT_TYPE, "CONTENT_TYPE");
    INTERN(s_CONTENT_LENGTH, "CONTENT_LENGTH");
    INTERN(s_SERVER_PROTOCOL, "SERVER_PROTOCOL");
    INTERN(s_REQUEST_METHOD, "REQUEST_METHOD");
    INTERN(s_url_scheme, "wsgi.url_scheme");
    INTERN(s_RAW_URI, "RAW_URI");
    INTERN(s_REQUEST_URI, "REQUEST_URI");
    INTERN(s_QUERY_STRING, "QUERY_STRING");
    INTERN(s_REMOTE_ADDR, "REMOTE_ADDR");
    INTERN(s_REMOTE_PORT, "REMOTE_PORT");
    INTERN(s_SERVER_NAME, "SERVER_NAME");
    INTERN(s_SERVER_PORT, "SERVER_PORT");
    b_content_type = PyBytes_FromString("content-type");
    b_content_length = PyBytes_FromString("content-length");
    if (b_content_type == NULL || b_content_length == NULL) {
        return NULL;
    }
    return PyModule_Create(&module_def);
}
