"""The ORM helpers and async views import in a project without ``django.contrib.auth``.

docs/django.md asks for one app in ``INSTALLED_APPS``; a project that has neither
``django.contrib.auth`` nor ``django.contrib.contenttypes`` (an API service) must be able to
import ``asgishift.django_integration.db`` and ``.views``. Django settings are per process,
so each case runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

_SETUP = """
import django
from django.conf import settings
settings.configure(INSTALLED_APPS=["asgishift.django_integration"])
django.setup()
"""


@pytest.mark.parametrize(
    "statement",
    [
        "import asgishift.django_integration.db",
        "from asgishift.django_integration.views import AsyncListView, AsyncView",
        "from asgishift.django_integration import pagination, lifespan",
    ],
)
def test_imports_without_the_auth_app(statement: str) -> None:
    code = textwrap.dedent(_SETUP) + statement + "\nprint('imported')\n"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"


def test_auth_mixins_still_load_with_the_auth_app() -> None:
    code = textwrap.dedent(_SETUP).replace(
        '["asgishift.django_integration"]',
        '["django.contrib.auth", "django.contrib.contenttypes", "asgishift.django_integration"]',
    )
    code += textwrap.dedent(
        """
        from asgishift.django_integration import views
        from django.contrib.auth.mixins import LoginRequiredMixin
        assert issubclass(views.AsyncLoginRequiredMixin, LoginRequiredMixin)
        assert "AsyncPermissionRequiredMixin" in views.__all__
        print(views.AsyncPermissionRequiredMixin.__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "AsyncPermissionRequiredMixin"
