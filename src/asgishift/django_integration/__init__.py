"""Django integration: add ``"asgishift.django_integration"`` to ``INSTALLED_APPS``.

This package is a Django app (label ``asgishift``). Importing it imports
nothing from Django; its submodules do. ``import asgishift`` never imports
this package.
"""

from __future__ import annotations
