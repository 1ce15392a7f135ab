"""Async auth helpers for async views on every supported Django version.

Django 5.0 taught ``login_required``, ``user_passes_test`` and
``permission_required`` to wrap async views and added ``aget_user``; Django 4.2
has none of that. These versions behave the same on 4.2, 5.x and 6.x: for an
async view the user is loaded and the test run in one thread hop (through
:func:`asgishift.django_integration._hops.run`), and the redirect to the login
page is the one Django builds; a sync view gets Django's own decorator.

See https://docs.djangoproject.com/en/stable/topics/auth/default/#the-login-required-decorator
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import decorators as django_decorators
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url

from asgishift.django_integration._hops import run

View = Callable[..., Any]


def load_user(request: Any) -> Any:
    """Return ``request.user`` evaluated on this (worker) thread.

    The lazy ``request.user`` of ``AuthenticationMiddleware`` is forced here,
    so async code can read its attributes afterwards without a query. Without
    the middleware the user is read from the session with ``auth.get_user``.
    """
    user = getattr(request, "user", None)
    if user is None:
        return auth.get_user(request)
    _ = user.is_authenticated  # evaluates the lazy object on this thread
    return user


async def aget_user(request: Any) -> Any:
    """Return the request's user, loaded in one thread hop (Django 5.0's ``aget_user``).

    :param request: an ``HttpRequest`` with a session.
    :return: a user instance or ``AnonymousUser``; ``request.user`` (when set by
        ``AuthenticationMiddleware``) is evaluated too.
    """
    return await run(load_user, (request,), {})


def _login_redirect(request: Any, login_url: str | None, redirect_field_name: str | None) -> Any:
    path = request.build_absolute_uri()
    resolved = resolve_url(login_url or settings.LOGIN_URL)
    login_parts = urlsplit(resolved)
    current_parts = urlsplit(path)
    same_scheme = not login_parts.scheme or login_parts.scheme == current_parts.scheme
    same_host = not login_parts.netloc or login_parts.netloc == current_parts.netloc
    if same_scheme and same_host:
        path = request.get_full_path()
    # Imported here: django.contrib.auth.views imports the auth and contenttypes models,
    # which a project without those apps cannot load (the helpers of db.py and views.py
    # do not need them).
    from django.contrib.auth.views import redirect_to_login

    return redirect_to_login(path, resolved, redirect_field_name)


def user_passes_test(
    test_func: Callable[[Any], Any],
    login_url: str | None = None,
    redirect_field_name: str | None = REDIRECT_FIELD_NAME,
) -> Callable[[View], View]:
    """Django's ``user_passes_test`` that also wraps async views (as Django 5.0+ does).

    :param test_func: ``test_func(user) -> bool``, sync or async; a sync one runs
        on the worker thread with the user load, so it may query the database.
    :param login_url: where to send users who fail the test (default
        ``settings.LOGIN_URL``).
    :param redirect_field_name: query parameter carrying the original URL.
    :return: a decorator; async views stay async.
    """

    def decorator(view_func: View) -> View:
        if not iscoroutinefunction(view_func):
            wrapped: View = django_decorators.user_passes_test(
                test_func, login_url, redirect_field_name
            )(view_func)
            return wrapped

        @functools.wraps(view_func)
        async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if iscoroutinefunction(test_func):
                passed = await test_func(await aget_user(request))
            else:
                passed = await run(lambda: test_func(load_user(request)), (), {})
            if passed:
                return await view_func(request, *args, **kwargs)
            return _login_redirect(request, login_url, redirect_field_name)

        return async_wrapper

    return decorator


def login_required(
    function: View | None = None,
    redirect_field_name: str | None = REDIRECT_FIELD_NAME,
    login_url: str | None = None,
) -> Any:
    """Django's ``login_required`` that also wraps async views (as Django 5.0+ does).

    Use bare (``@login_required``) or with arguments.

    :param function: the view when used bare.
    :param redirect_field_name: query parameter carrying the original URL.
    :param login_url: the login page (default ``settings.LOGIN_URL``).
    """
    decorator = user_passes_test(
        lambda user: user.is_authenticated,
        login_url=login_url,
        redirect_field_name=redirect_field_name,
    )
    if function is not None:
        return decorator(function)
    return decorator


def permission_required(
    perm: str | Iterable[str], login_url: str | None = None, raise_exception: bool = False
) -> Callable[[View], View]:
    """Django's ``permission_required`` that also wraps async views (as Django 5.0+ does).

    :param perm: a permission name (``"app_label.codename"``) or several.
    :param login_url: the login page for users without the permission.
    :param raise_exception: raise ``PermissionDenied`` (a 403) instead of
        redirecting.
    :raise PermissionDenied: from the wrapped view when ``raise_exception`` is
        set and the user lacks a permission.
    """
    perms = (perm,) if isinstance(perm, str) else tuple(perm)

    def check_perms(user: Any) -> bool:
        if user.has_perms(perms):
            return True
        if raise_exception:
            raise PermissionDenied
        return False

    return user_passes_test(check_perms, login_url=login_url)
