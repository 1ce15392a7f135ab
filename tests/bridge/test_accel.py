"""The bridge's optional C extensions: built where a C compiler is, used, and can be turned off."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from asgishift.bridge import _environ, _response, _scope

#: extension -> (the module that uses it, its Python definition, the name it is bound to)
EXTENSIONS = {
    "_cenviron": (_environ, "python_build_environ", "build_environ"),
    "_cresponse": (_response, "python_encode_start", "encode_start"),
    "_cscope": (_scope, "python_build_scope", "build_scope"),
}


def _c_compiler() -> str | None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(compiler)


@pytest.mark.skipif(_c_compiler() is None, reason="no C compiler here: the extensions are optional")
@pytest.mark.skipif(
    bool(os.environ.get("ASGISHIFT_NO_EXTENSIONS")), reason="ASGISHIFT_NO_EXTENSIONS is set"
)
@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_extension_is_built_and_used_where_a_c_compiler_is(name: str) -> None:
    try:
        extension = importlib.import_module(f"asgishift.bridge.{name}")
    except ImportError as exc:
        pytest.fail(
            f"asgishift.bridge.{name} is not built although a C compiler is here ({exc}): "
            "reinstall with `pip install -e .` and read the build's warning"
        )
    module, _definition, bound = EXTENSIONS[name]
    assert getattr(module, bound) is getattr(extension, bound.split(".")[-1])


def test_no_extensions_variable_selects_the_python_definitions() -> None:
    checks = [
        f"{module.__name__.rsplit('.', 1)[1]}.{bound} is "
        f"{module.__name__.rsplit('.', 1)[1]}.{definition}"
        for module, definition, bound in EXTENSIONS.values()
    ]
    code = (
        "from asgishift.bridge import _asgi_to_wsgi, _environ, _response, _scope,"
        " _wsgi_response, _wsgi_to_asgi\n"
        f"print({', '.join(checks)},"
        " _wsgi_to_asgi.build_environ is _environ.python_build_environ,"
        " _wsgi_response.encode_start is _response.python_encode_start,"
        " _asgi_to_wsgi.build_scope is _scope.python_build_scope)"
    )
    env = {**os.environ, "ASGISHIFT_NO_EXTENSIONS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True"] * 6
