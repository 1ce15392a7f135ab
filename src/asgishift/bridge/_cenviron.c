/* The ASGI scope -> PEP 3333 environ translation of _environ.py, in C, for the
 * common request only.
 *
 * _environ.build_environ is the definition. This module builds the same dict
 * for the request every server sends almost every time, and hands the whole
 * scope to the Python function for anything else, so that every rare rule (a
 * repeated header, a percent-escaped or prefixed path, a bad Content-Length, a
 * scope without a server address, a value that is not exactly bytes or str)
 * is written once, in Python. Python's function restarts from the scope: this
 * one never leaves a half-built environ behind, and the only state it shares
 * with Python is the header-name cache, which Python fills.
 *
 * A fast-path result is always equal to Python's; tests/bridge/test_cenviron.py
 * checks that on a table of scopes and on generated ones.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_cintern.h"

/* Set by configure(): the Python definition and its helpers. */
static PyObject *py_build_environ = NULL; /* _environ.python_build_environ */
static PyObject *py_environ_key = NULL;   /* _environ._environ_key */
static PyObject *key_cache = NULL;        /* _environ._KEY_CACHE (dict) */

/* Interned strings. */
static PyObject *s_method, *s_scheme, *s_http_version, *s_query_string, *s_raw_path,
    *s_root_path, *s_client, *s_headers, *s_server, *s_http, *s_REQUEST_METHOD,
    *s_url_scheme, *s_SERVER_PROTOCOL, *s_QUERY_STRING, *s_SCRIPT_NAME, *s_PATH_INFO,
    *s_REMOTE_ADDR, *s_REMOTE_PORT, *s_CONTENT_LENGTH, *s_SERVER_NAME, *s_SERVER_PORT,
    *s_empty, *s_http_1_1;

/* Returned by the helpers below: take Python's path for this scope. */
#define SLOW 1

static PyObject *
fallback(PyObject *scope, PyObject *base)
{
    PyObject *args[2] = {scope, base};
    return PyObject_Vectorcall(py_build_environ, args, 2, NULL);
}

/* Borrowed scope[key], NULL if absent (no error set) or on error (error set). */
static PyObject *
get(PyObject *scope, PyObject *key)
{
    return PyDict_GetItemWithError(scope, key);
}

/* Set REQUEST_METHOD, wsgi.url_scheme, SERVER_PROTOCOL. 0, -1 on error, SLOW. */
static int
set_request_line(PyObject *scope, PyObject *environ)
{
    PyObject *method = get(scope, s_method);
    if (method == NULL) {
        return PyErr_Occurred() ? -1 : SLOW; /* Python raises the KeyError */
    }
    if (PyDict_SetItem(environ, s_REQUEST_METHOD, method) < 0) {
        return -1;
    }
    PyObject *scheme = get(scope, s_scheme);
    if (scheme == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (scheme == NULL || (PyUnicode_CheckExact(scheme) && PyUnicode_GET_LENGTH(scheme) == 0)) {
        scheme = s_http;
    }
    else if (!PyUnicode_CheckExact(scheme)) {
        return SLOW;
    }
    if (PyDict_SetItem(environ, s_url_scheme, scheme) < 0) {
        return -1;
    }
    PyObject *version = get(scope, s_http_version);
    if (version == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (version == NULL || (PyUnicode_CheckExact(version) && PyUnicode_GET_LENGTH(version) == 0)) {
        return PyDict_SetItem(environ, s_SERVER_PROTOCOL, s_http_1_1);
    }
    if (!PyUnicode_CheckExact(version)) {
        return SLOW;
    }
    if (PyUnicode_CompareWithASCIIString(version, "1.1") == 0) {
        return PyDict_SetItem(environ, s_SERVER_PROTOCOL, s_http_1_1);
    }
    PyObject *protocol = PyUnicode_FromFormat("HTTP/%U", version);
    if (protocol == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(environ, s_SERVER_PROTOCOL, protocol);
    Py_DECREF(protocol);
    return rc;
}

/* Set QUERY_STRING, SCRIPT_NAME and PATH_INFO. */
static int
set_path(PyObject *scope, PyObject *environ)
{
    PyObject *query = get(scope, s_query_string);
    if (query == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (query != NULL && query != Py_None) {
        if (!PyBytes_CheckExact(query)) {
            return SLOW;
        }
        Py_ssize_t size = PyBytes_GET_SIZE(query);
        if (size) {
            PyObject *text = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(query), size, NULL);
            if (text == NULL) {
                return -1;
            }
            int rc = PyDict_SetItem(environ, s_QUERY_STRING, text);
            Py_DECREF(text);
            if (rc < 0) {
                return -1;
            }
        }
    }
    /* The common case only: a raw_path that starts with "/" and has no "%", and
       no root_path. */
    PyObject *root = get(scope, s_root_path);
    if (root == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (root != NULL && root != Py_None
        && !(PyUnicode_CheckExact(root) && PyUnicode_GET_LENGTH(root) == 0)) {
        return SLOW;
    }
    PyObject *raw = get(scope, s_raw_path);
    if (raw == NULL && PyErr_Occurred()) {
        return -1;
    }
    if (raw == NULL || raw == Py_None || !PyBytes_CheckExact(raw) || PyBytes_GET_SIZE(raw) == 0) {
        return SLOW;
    }
    const char *data = PyBytes_AS_STRING(raw);
    if (data[0] != '/') {
        return SLOW; /* an absolute-form or asterisk-form target */
    }
    Py_ssize_t size = PyBytes_GET_SIZE(raw);
    const char *mark = memchr(data, '?', (size_t)size);
    if (mark != NULL) {
        size = mark - data;
    }
    if (memchr(data, '%', (size_t)size) != NULL) {
        return SLOW;
    }
    PyObject *path = PyUnicode_DecodeLatin1(data, size, NULL);
    if (path == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(environ, s_SCRIPT_NAME, s_empty);
    if (rc == 0) {
        rc = PyDict_SetItem(environ, s_PATH_INFO, path);
    }
    Py_DECREF(path);
    return rc;
}

/* Set item `key` of environ to str(value). */
static int
set_str(PyObject *environ, PyObject *key, PyObject *value)
{
    PyObject *text = PyObject_Str(value);
    if (text == NULL) {
        return -1;
    }
    int rc = PyDict_SetItem(environ, key, text);
    Py_DECREF(text);
    return rc;
}

/* Borrowed item i of a tuple or list of length 2 or more; NULL for anything else. */
static PyObject *
item(PyObject *pair, Py_ssize_t i)
{
    if (PyTuple_CheckExact(pair) && PyTuple_GET_SIZE(pair) == 2) {
        return PyTuple_GET_ITEM(pair, i);
    }
    if (PyList_CheckExact(pair) && PyList_GET_SIZE(pair) == 2) {
        return PyList_GET_ITEM(pair, i);
    }
    return NULL;
}

/* Set REMOTE_ADDR and REMOTE_PORT from scope["client"]. */
static int
set_client(PyObject *scope, PyObject *environ)
{
    PyObject *client = get(scope, s_client);
    if (client == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (client == Py_None) {
        return 0;
    }
    PyObject *host = item(client, 0);
    if (host == NULL) {
        return SLOW;
    }
    if (set_str(environ, s_REMOTE_ADDR, host) < 0) {
        return -1;
    }
    PyObject *port = item(client, 1);
    if (port != Py_None && set_str(environ, s_REMOTE_PORT, port) < 0) {
        return -1;
    }
    return 0;
}

/* Translate one header pair (held by the caller); a repeated one is Python's work. */
static int
set_header(PyObject *environ, PyObject *pair)
{
    PyObject *name = item(pair, 0);
    PyObject *value = item(pair, 1);
    if (name == NULL || !PyBytes_CheckExact(name) || !PyBytes_CheckExact(value)) {
        return SLOW;
    }
    PyObject *key = PyDict_GetItemWithError(key_cache, name);
    if (key != NULL) {
        Py_INCREF(key);
    }
    else if (PyErr_Occurred()) {
        return -1;
    }
    else {
        key = PyObject_CallOneArg(py_environ_key, name);
        if (key == NULL) {
            return -1;
        }
    }
    int rc = 0;
    if (!PyUnicode_Check(key)) {
        rc = SLOW;
    }
    else if (PyUnicode_GET_LENGTH(key) != 0) { /* "": a dropped name */
        int present = PyDict_Contains(environ, key);
        if (present != 0) {
            rc = present < 0 ? -1 : SLOW;
        }
        else {
            PyObject *text =
                PyUnicode_DecodeLatin1(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), NULL);
            rc = text == NULL ? -1 : PyDict_SetItem(environ, key, text);
            Py_XDECREF(text);
        }
    }
    Py_DECREF(key);
    return rc;
}

/* Translate the headers; a repeated one is Python's work. */
static int
set_headers(PyObject *scope, PyObject *environ)
{
    PyObject *headers = get(scope, s_headers);
    if (headers == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!PyList_CheckExact(headers) && !PyTuple_CheckExact(headers)) {
        return SLOW;
    }
    PyObject *fast = headers;
    Py_INCREF(fast);
    int rc = 0;
    /* The size is read on each pass and every object is held while Python runs
     * (the header-name translation): nothing here trusts the list to stay put. */
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(pair);
        rc = set_header(environ, pair);
        Py_DECREF(pair);
        if (rc != 0) {
            break;
        }
    }
    Py_DECREF(fast);
    return rc;
}

/* A Content-Length that is not plain ASCII digits is Python's to refuse or to strip. */
static int
check_length(PyObject *environ)
{
    PyObject *length = PyDict_GetItemWithError(environ, s_CONTENT_LENGTH);
    if (length == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (!PyUnicode_CheckExact(length) || !PyUnicode_IS_ASCII(length)) {
        return SLOW;
    }
    Py_ssize_t size = PyUnicode_GET_LENGTH(length);
    const Py_UCS1 *data = PyUnicode_1BYTE_DATA(length);
    if (size == 0) {
        return SLOW;
    }
    for (Py_ssize_t i = 0; i < size; i++) {
        if (data[i] < '0' || data[i] > '9') {
            return SLOW;
        }
    }
    return 0;
}

/* Set SERVER_NAME and SERVER_PORT from scope["server"] when it has a port. */
static int
set_server(PyObject *scope, PyObject *environ)
{
    PyObject *server = get(scope, s_server);
    if (server == NULL) {
        return PyErr_Occurred() ? -1 : SLOW;
    }
    PyObject *host = item(server, 0);
    if (host == NULL) {
        return SLOW;
    }
    PyObject *port = item(server, 1);
    if (port == Py_None) {
        return SLOW;
    }
    if (set_str(environ, s_SERVER_NAME, host) < 0) {
        return -1;
    }
    return set_str(environ, s_SERVER_PORT, port);
}

static PyObject *
build_environ(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "build_environ(scope, base) takes 2 arguments");
        return NULL;
    }
    PyObject *scope = args[0], *base = args[1];
    if (py_build_environ == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgishift.bridge._cenviron is not configured");
        return NULL;
    }
    if (!PyDict_CheckExact(scope) || !PyDict_CheckExact(base)) {
        return fallback(scope, base);
    }
    PyObject *environ = PyDict_Copy(base);
    if (environ == NULL) {
        return NULL;
    }
    int rc = set_request_line(scope, environ);
    if (rc == 0) {
        rc = set_path(scope, environ);
    }
    if (rc == 0) {
        rc = set_client(scope, environ);
    }
    if (rc == 0) {
        rc = set_headers(scope, environ);
    }
    if (rc == 0) {
        rc = check_length(environ);
    }
    if (rc == 0) {
        rc = set_server(scope, environ);
    }
    if (rc == 0) {
        return environ;
    }
    Py_DECREF(environ);
    if (rc < 0) {
        return NULL;
    }
    return fallback(scope, base);
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *build, *environ_key, *cache;
    if (!PyArg_ParseTuple(args, "OOO!:configure", &build, &environ_key, &PyDict_Type, &cache)) {
        return NULL;
    }
    Py_INCREF(build);
    Py_INCREF(environ_key);
    Py_INCREF(cache);
    Py_XSETREF(py_build_environ, build);
    Py_XSETREF(py_environ_key, environ_key);
    Py_XSETREF(key_cache, cache);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"build_environ", (PyCFunction)(void (*)(void))build_environ, METH_FASTCALL,
     "build_environ(scope, base) -> dict: _environ.build_environ for the common request."},
    {"configure", configure, METH_VARARGS,
     "configure(python_build_environ, environ_key, key_cache) -> None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_cenviron",
    .m_doc = "The common request of asgishift.bridge._environ.build_environ, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__cenviron(void)
{
    INTERN(s_method, "method");
    INTERN(s_scheme, "scheme");
    INTERN(s_http_version, "http_version");
    INTERN(s_query_string, "query_string");
    INTERN(s_raw_path, "raw_path");
    INTERN(s_root_path, "root_path");
    INTERN(s_client, "client");
    INTERN(s_headers, "headers");
    INTERN(s_server, "server");
    INTERN(s_http, "http");
    INTERN(s_REQUEST_METHOD, "REQUEST_METHOD");
    INTERN(s_url_scheme, "wsgi.url_scheme");
    INTERN(s_SERVER_PROTOCOL, "SERVER_PROTOCOL");
    INTERN(s_QUERY_STRING, "QUERY_STRING");
    INTERN(s_SCRIPT_NAME, "SCRIPT_NAME");
    INTERN(s_PATH_INFO, "PATH_INFO");
    INTERN(s_REMOTE_ADDR, "REMOTE_ADDR");
    INTERN(s_REMOTE_PORT, "REMOTE_PORT");
    INTERN(s_CONTENT_LENGTH, "CONTENT_LENGTH");
    INTERN(s_SERVER_NAME, "SERVER_NAME");
    INTERN(s_SERVER_PORT, "SERVER_PORT");
    INTERN(s_empty, "");
    INTERN(s_http_1_1, "HTTP/1.1");
    return PyModule_Create(&module_def);
}
