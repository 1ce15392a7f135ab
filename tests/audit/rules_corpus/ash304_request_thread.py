"""ASH304 request-global-in-thread."""

import threading

from flask import copy_current_request_context, request


def audit_log():
    print(request.path)  # error: ASH304:11


def view():
    threading.Thread(target=audit_log).start()


def safe_view():
    @copy_current_request_context
    def log():
        print(request.path)  # ok: the request context is copied

    threading.Thread(target=log).start()
