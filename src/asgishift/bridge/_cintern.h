/* What the bridge's C modules (_cenviron.c, _cscope.c) share: one place for it.
 *
 * INTERN(var, text) sets the static `var` to the interned str `text`; on a
 * failure (out of memory) it returns NULL from the module's init function,
 * which the import then reports with Python's exception.
 */
#ifndef ASGISHIFT_CINTERN_H
#define ASGISHIFT_CINTERN_H

#include <Python.h>

#define INTERN(var, text)                                                                         \
    do {                                                                                          \
        var = PyUnicode_InternFromString(text);                                                   \
        if (var == NULL) {                                                                        \
            return NULL;                                                                          \
        }                                                                                         \
    } while (0)

#endif /* ASGISHIFT_CINTERN_H */
