"""A one-app Django project for ``benchmarks/django_views_bench.py``.

One model (``Row``), one page listing 20 rows with a template, written three
ways: asgishift's ``AsyncListView`` (``/ours/``), a Django-6-style async
function view with ``a``-methods and ``sync_to_async(render)`` (``/hand/``), and
Django's sync ``ListView`` (``/sync/``). Settings come from the environment
(see :mod:`djviews.settings`).
"""
