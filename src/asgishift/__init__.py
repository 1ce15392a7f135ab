"""asgishift: move WSGI Django and Flask projects to ASGI without a rewrite.

Import what you need from the concept modules: :mod:`asgishift.bridge` for the
WSGI↔ASGI adapters, :mod:`asgishift.audit` for the blocking-call audit. This
top-level module imports neither Django nor Flask.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
