"""ASGI entry points: ``djviews.asgi:ours`` (asgishift's bounded handler) and
``djviews.asgi:stock`` (Django's ``get_asgi_application()``), chosen by the
server's command line; only the one named is built."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djviews.settings")


def __getattr__(name):
    if name == "ours":
        from asgishift.django_integration import get_asgi_application

        return get_asgi_application(max_threads=int(os.environ.get("BENCH_THREADS", "8")))
    if name == "stock":
        from django.core.asgi import get_asgi_application

        return get_asgi_application()
    raise AttributeError(name)
