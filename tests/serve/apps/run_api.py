"""Serve ``serve_apps.wsgi_app`` through the Python API: ``run_api.py SERVER PORT``."""

from __future__ import annotations

import logging
import sys

from serve_apps import wsgi_app

from asgishift.serve import ServeConfig, run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    run(ServeConfig(app=wsgi_app, server=sys.argv[1], port=int(sys.argv[2]), root_path="/py"))
