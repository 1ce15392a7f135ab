"""Django integration: add ``"asgishift.django_integration"`` to ``INSTALLED_APPS``.

This package is a Django app (label ``asgishift``) with the ``runasgi``
management command, system checks, lifespan hooks and signals, and a bounded
ASGI handler (:func:`get_asgi_application`). Importing the package itself
imports nothing from Django; its submodules do. ``import asgishift`` never
imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asgishift.django_integration._executors import DEFAULT_MAX_THREADS

if TYPE_CHECKING:
    from asgishift.django_integration.handler import BoundedASGIHandler


def get_asgi_application(*, max_threads: int = DEFAULT_MAX_THREADS) -> BoundedASGIHandler:
    """Set up Django and return asgishift's bounded ASGI handler.

    Same signature as ``django.core.asgi.get_asgi_application()`` plus
    ``max_threads``; use it in ``asgi.py``::

        from asgishift.django_integration import get_asgi_application
        application = get_asgi_application(max_threads=16)

    :param max_threads: threads running sync code per process (≥ 1); also the
        most database connections per alias.
    :raise ValueError: for ``max_threads`` below 1.

    See :mod:`asgishift.django_integration.handler`.
    """
    from asgishift.django_integration.handler import get_asgi_application as build

    return build(max_threads=max_threads)


__all__ = ["DEFAULT_MAX_THREADS", "get_asgi_application"]
