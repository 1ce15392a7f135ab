"""Serve ``serve_apps.wsgi_app`` through the Python API: ``run_api.py SERVER PORT [OPTION]``.

The one option, ``--count-garbage``: the cyclic collector is off while the server runs,
and ``garbage left after run(): N`` is printed once :func:`run` returns: the
objects only a collection at interpreter exit would free.
"""

from __future__ import annotations

import gc
import logging
import sys

from serve_apps import wsgi_app

from asgishift.serve import ServeConfig, run

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    count_garbage = "--count-garbage" in sys.argv[3:]
    if count_garbage:
        gc.collect()
        gc.disable()
    run(ServeConfig(app=wsgi_app, server=sys.argv[1], port=int(sys.argv[2]), root_path="/py"))
    if count_garbage:
        print(f"garbage left after run(): {gc.collect()}", flush=True)
