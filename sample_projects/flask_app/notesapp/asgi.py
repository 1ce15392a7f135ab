"""The ASGI application with the extension: ``uvicorn notesapp.asgi:application``.

``asgishift serve --factory notesapp:create_app`` serves the same app; this
module is for running it on a server's own command line.
"""

from __future__ import annotations

from notesapp import create_app

application = create_app().extensions["asgishift"].asgi_app
