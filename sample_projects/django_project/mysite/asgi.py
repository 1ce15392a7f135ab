"""ASGI config of the sample project: asgishift's bounded handler instead of Django's.

Production, several processes, e.g.::

    asgishift serve mysite.asgi:application --workers 4
    gunicorn mysite.asgi:application -k uvicorn_worker.UvicornWorker -w 4
    granian --interface asgi --workers 4 mysite.asgi:application
"""

import os

from asgishift.django_integration import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_asgi_application(max_threads=int(os.environ.get("SAMPLE_MAX_THREADS", "16")))
