"""Shared Django test support: one settings module, a test app, PostgreSQL.

``tests/conftest.py`` loads :mod:`django_support.plugin`, which configures
Django with :mod:`django_support.settings` for every in-process Django test
of the suite (pytest-django), and provides the ``postgresql_server`` fixture.
"""
