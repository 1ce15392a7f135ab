"""The extension imports without its optional test-client dependency (httpx)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_the_extension_works_without_httpx_and_its_test_client_says_what_to_install() -> None:
    # sys.modules["httpx"] = None makes every "import httpx" fail, as in a venv without it.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["httpx"] = None
        from flask import Flask
        from asgishift.flask_integration import ASGI
        app = Flask("no_httpx")
        ext = ASGI(app)
        assert callable(ext.asgi_app)
        try:
            ext.test_client()
        except ImportError as exc:
            print("refused:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "refused: asgishift's async Flask test client needs httpx: pip install httpx" in (
        done.stdout
    )
