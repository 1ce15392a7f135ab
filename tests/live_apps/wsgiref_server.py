"""Serve ``module:attribute`` with the standard library's wsgiref on 127.0.0.1:PORT.

Usage: ``python wsgiref_server.py module:app PORT``. A threading server, so
that keep-alive clients and concurrent tests do not serialise.
"""

from __future__ import annotations

import importlib
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main() -> None:
    module_name, _, attr = sys.argv[1].partition(":")
    app = getattr(importlib.import_module(module_name), attr or "app")
    with make_server("127.0.0.1", int(sys.argv[2]), app, server_class=ThreadingWSGIServer) as httpd:
        httpd.serve_forever()


if __name__ == "__main__":
    main()
