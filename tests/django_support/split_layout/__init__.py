"""A project laid out with a settings package (``split_layout.settings.production``, as
cookiecutter-django's ``config.settings.production``) and ``split_layout/asgi.py``
beside it."""
