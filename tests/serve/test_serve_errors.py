"""``asgishift serve`` failures: one line naming the fix, a documented exit code, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from serve_helpers import SERVE_APPS_DIR, run_serve

from live import free_port


def _one_line_error(result: object) -> str:
    stderr: str = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("asgishift serve: error: ")
    return lines[0]


def test_missing_module_names_module_and_app_dir(tmp_path: Path) -> None:
    result = run_serve("no_such_module:app", "--app-dir", str(tmp_path), "--port", "1")
    line = _one_line_error(result)
    assert result.returncode == 1
    assert "'no_such_module'" in line
    assert str(tmp_path) in line
    assert "--app-dir" in line


def test_missing_attribute_names_it_and_lists_candidates() -> None:
    result = run_serve("serve_apps:application", "--app-dir", str(SERVE_APPS_DIR))
    line = _one_line_error(result)
    assert result.returncode == 1
    assert "has no attribute 'application'" in line
    assert str(SERVE_APPS_DIR / "serve_apps.py") in line


def test_module_importing_a_missing_package_names_the_package(tmp_path: Path) -> None:
    (tmp_path / "needs_dep.py").write_text("import not_installed_pkg\napp = None\n")
    result = run_serve("needs_dep:app", "--app-dir", str(tmp_path))
    line = _one_line_error(result)
    assert result.returncode == 1
    assert "pip install not_installed_pkg" in line


def _app_traceback_then_error(result: object) -> tuple[str, str]:
    """Split stderr into the app's traceback and the final one-line error."""
    stderr: str = result.stderr  # type: ignore[attr-defined]
    *above, last = stderr.strip().splitlines()
    assert last.startswith("asgishift serve: error: "), stderr
    assert not any(line.startswith("asgishift serve: error: ") for line in above), stderr
    return "\n".join(above), last


def test_app_module_raising_shows_only_its_own_frames(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(
        "def connect():\n    raise RuntimeError('no DATABASE_URL')\n\nconnect()\napp = None\n"
    )
    result = run_serve("broken:app", "--app-dir", str(tmp_path), "--port", "1")
    trace, line = _app_traceback_then_error(result)
    assert result.returncode == 1
    assert "importing module 'broken' raised RuntimeError: no DATABASE_URL" in line
    assert f"{tmp_path / 'broken.py'}, line 2" in line
    # The app's frames, not asgishift's, runpy's or importlib's.
    assert f'File "{tmp_path / "broken.py"}", line 4, in <module>' in trace
    assert "asgishift" not in trace
    assert "importlib" not in trace
    assert "runpy" not in trace


def test_app_module_with_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "typo.py").write_text("app = None\ndef f(:\n    pass\n")
    result = run_serve("typo:app", "--app-dir", str(tmp_path), "--port", "1")
    trace, line = _app_traceback_then_error(result)
    assert result.returncode == 1
    assert "SyntaxError" in line
    assert f"{tmp_path / 'typo.py'}, line 2" in line
    assert "asgishift" not in trace
    assert "importlib" not in trace


def test_failing_factory_shows_only_its_own_frames(tmp_path: Path) -> None:
    (tmp_path / "factory.py").write_text("def create_app():\n    return {}['SECRET_KEY']\n")
    result = run_serve("--factory", "factory:create_app", "--app-dir", str(tmp_path), "--port", "1")
    trace, line = _app_traceback_then_error(result)
    assert result.returncode == 1
    assert "calling the factory factory:create_app raised KeyError: 'SECRET_KEY'" in line
    assert f'File "{tmp_path / "factory.py"}", line 2, in create_app' in trace
    assert "asgishift" not in trace


def test_factory_needing_arguments_names_them(tmp_path: Path) -> None:
    """Before: 'raised TypeError: create_app() missing 1 required positional argument'."""
    (tmp_path / "needs_args.py").write_text("def create_app(config, *, env):\n    pass\n")
    result = run_serve(
        "--factory", "needs_args:create_app", "--app-dir", str(tmp_path), "--port", "1"
    )
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--factory needs_args:create_app requires arguments (config, env)" in line


@pytest.mark.parametrize(
    "spec", ["serve_apps:create_wsgi_app()", "serve_apps:create_wsgi_app('x')"]
)
def test_factory_call_in_app_asks_for_factory_flag(spec: str) -> None:
    result = run_serve(spec)
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--factory serve_apps:create_wsgi_app" in line
    assert "has no attribute" not in line


def test_missing_server_extra_names_the_pip_command(hide_module: Callable[..., Path]) -> None:
    shim = hide_module("granian")
    result = run_serve("serve_apps:wsgi_app", "--server", "granian", extra_pythonpath=[shim])
    line = _one_line_error(result)
    assert result.returncode == 1
    assert "pip install 'asgishift[granian]'" in line


@pytest.mark.parametrize("host", [pytest.param("127.0.0.1", id="ipv4")])
def test_port_in_use_names_port_and_flag(host: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((host, 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_serve("serve_apps:wsgi_app", "--host", host, "--port", str(port))
    line = _one_line_error(result)
    assert result.returncode == 1
    assert f"port {port}" in line
    assert "--port" in line


def test_undetectable_app_asks_for_interface() -> None:
    result = run_serve("serve_apps:validated_only", "--port", str(free_port()))
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--interface wsgi" in line


@pytest.mark.parametrize(
    ("app", "interface", "detected"),
    [
        pytest.param("serve_apps:wsgi_app", "asgi", "WSGI (callable(environ", id="wsgi-as-asgi"),
        pytest.param("serve_apps:asgi_app", "wsgi", "ASGI (async function)", id="asgi-as-wsgi"),
    ],
)
def test_interface_contradicting_the_app_is_a_usage_error(
    app: str, interface: str, detected: str
) -> None:
    """Before, the server started and answered every request 500 with a TypeError."""
    result = run_serve(app, "--interface", interface, "--port", str(free_port()))
    line = _one_line_error(result)
    assert result.returncode == 2
    assert f"--interface {interface} contradicts the app, which is {detected}" in line


def test_factory_without_flag_asks_for_factory() -> None:
    result = run_serve("serve_apps:create_wsgi_app", "--port", str(free_port()))
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--factory" in line


def test_non_callable_is_rejected() -> None:
    result = run_serve("serve_apps:not_an_app", "--port", str(free_port()))
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "not callable" in line


def test_non_callable_error_reads_correctly(tmp_path: Path) -> None:
    (tmp_path / "settings_only.py").write_text("LIMIT = 3\n", encoding="utf-8")
    result = run_serve("settings_only:LIMIT", "--app-dir", str(tmp_path))
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "the object is an int, which is not callable" in line


@pytest.mark.parametrize(
    ("given", "fix"),
    [
        ("serve_apps.py:wsgi_app", "serve_apps:wsgi_app"),
        ("./serve_apps.py:wsgi_app", "serve_apps:wsgi_app"),
        ("apps/serve_apps.py:wsgi_app", "serve_apps:wsgi_app --app-dir apps"),
    ],
)
def test_a_file_path_as_app_names_the_module_to_use(given: str, fix: str) -> None:
    """``asgishift serve app.py:app`` (a file, as some servers take) said only that no
    module 'app.py' exists; now it names the module form."""
    result = run_serve(given, "--app-dir", str(SERVE_APPS_DIR))
    line = _one_line_error(result)
    assert result.returncode == 2
    assert line.endswith(f"names a file; name the module instead, as Python imports it: {fix}")


def test_daphne_refuses_workers() -> None:
    result = run_serve("serve_apps:wsgi_app", "--server", "daphne", "--workers", "2")
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--server uvicorn" in line


def test_uvicorn_refuses_workers_with_reload() -> None:
    """Before, uvicorn ran one worker and warned, under a banner saying '2 workers'."""
    result = run_serve("serve_apps:wsgi_app", "--workers", "2", "--reload")
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "drop --workers" in line


def test_loop_lag_needs_detect_blocking() -> None:
    result = run_serve("serve_apps:asgi_app", "--loop-lag-ms", "50")
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "add --detect-blocking" in line


def test_detect_blocking_without_runtime_errors_clearly(
    hide_module: Callable[..., Path],
) -> None:
    shim = hide_module("asgishift.runtime")
    result = run_serve(
        "serve_apps:asgi_app",
        "--detect-blocking",
        "--port",
        str(free_port()),
        extra_pythonpath=[shim],
    )
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "asgishift.runtime.BlockingDetectorMiddleware" in line


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        pytest.param("--port", "70000", id="port-range"),
        pytest.param("--workers", "0", id="workers-zero"),
        pytest.param("--max-workers", "x", id="max-workers-nan"),
        pytest.param("--forwarded-allow-ips", "nginx", id="forwarded-allow-ips-name"),
    ],
)
def test_bad_flag_values_are_usage_errors(flag: str, value: str) -> None:
    result = run_serve("serve_apps:asgi_app", flag, value)
    assert result.returncode == 2
    assert f"argument {flag}" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_mount_names_the_mount() -> None:
    result = run_serve(
        "serve_apps:wsgi_app", "--mount", "/api=serve_apps:no_api", "--port", str(free_port())
    )
    line = _one_line_error(result)
    assert result.returncode == 1
    assert "--mount /api=serve_apps:no_api: module 'serve_apps'" in line
    assert "has no attribute 'no_api'" in line


@pytest.mark.parametrize("flag", ["--on-startup", "--on-shutdown"])
def test_missing_hook_names_the_flag(flag: str) -> None:
    """Before, the error named only the module, suggesting the app's own names."""
    result = run_serve("serve_apps:wsgi_app", flag, "serve_apps:no_such_hook")
    line = _one_line_error(result)
    assert result.returncode == 1
    assert f"error: {flag} serve_apps:no_such_hook: module 'serve_apps'" in line


def test_hook_that_is_not_callable_is_a_usage_error() -> None:
    result = run_serve(
        "serve_apps:wsgi_app", "--on-startup", "serve_apps:not_an_app", "--port", str(free_port())
    )
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--on-startup serve_apps:not_an_app is a dict, not a function" in line


def test_mount_prefix_given_twice_is_a_usage_error() -> None:
    # "/api" and "/api/" are the same prefix once normalised.
    result = run_serve(
        "serve_apps:wsgi_app",
        "--mount",
        "/api=serve_apps:asgi_app",
        "--mount",
        "/api/=serve_apps:asgi_app",
        "--port",
        str(free_port()),
    )
    line = _one_line_error(result)
    assert result.returncode == 2
    assert "--mount: prefix '/api' is given twice" in line


@pytest.mark.live
@pytest.mark.parametrize(
    ("server", "workers"),
    [
        pytest.param("uvicorn", "1", id="uvicorn"),
        pytest.param("hypercorn", "1", id="hypercorn"),
        pytest.param("granian", "1", id="granian"),
        pytest.param("daphne", "1", id="daphne"),
        pytest.param("uvicorn", "2", id="uvicorn-workers"),
        pytest.param("hypercorn", "2", id="hypercorn-workers"),
    ],
)
def test_failing_startup_hook_exits_3_naming_the_hook(server: str, workers: str) -> None:
    result = run_serve(
        "serve_apps:wsgi_app",
        "--server",
        server,
        "--workers",
        workers,
        "--on-startup",
        "serve_apps:failing_hook",
        "--port",
        str(free_port()),
    )
    last = result.stderr.strip().splitlines()[-1]
    assert (result.returncode, last) == (
        3,
        "asgishift serve: error: the app's lifespan startup failed: startup hook "
        "serve_apps:failing_hook failed: RuntimeError: database unreachable",
    ), result.stderr
    if workers == "1":
        # The hook's own traceback is logged; the server's is not.
        assert result.stderr.count("Traceback") == 1, result.stderr
