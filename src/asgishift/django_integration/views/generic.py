"""Async twins of Django's list, detail and editing generic views.

Each class is ``AsyncViewMixin`` in front of the Django class of the same name,
so it has Django's attributes, hooks, template names and context exactly
(``model``, ``queryset``, ``paginate_by``, ``get_queryset``,
``get_context_data``, ``get_object``, ``form_valid``, ``success_url``,
``app/model_list.html``, ...): converting a view is renaming its base class.
A request's handler runs in one thread hop with the ORM work and the rendering
(see :mod:`asgishift.django_integration.views.base`). ``isinstance(view,
ListView)`` stays true.

See https://docs.djangoproject.com/en/stable/ref/class-based-views/generic-display/
and https://docs.djangoproject.com/en/stable/ref/class-based-views/generic-editing/.
"""

from __future__ import annotations

from django.views.generic import (
    CreateView,
    DeleteView,
    DetailView,
    FormView,
    ListView,
    UpdateView,
)

from asgishift.django_integration.views.base import AsyncViewMixin


class AsyncListView(AsyncViewMixin, ListView):
    """Django's ``ListView``, async: query, pagination and template in one hop."""


class AsyncDetailView(AsyncViewMixin, DetailView):
    """Django's ``DetailView``, async: ``get_object`` and template in one hop."""


class AsyncFormView(AsyncViewMixin, FormView):
    """Django's ``FormView``, async: binding, validation, ``form_valid`` in one hop."""


class AsyncCreateView(AsyncViewMixin, CreateView):
    """Django's ``CreateView``, async: validation and ``form.save()`` in one hop."""


class AsyncUpdateView(AsyncViewMixin, UpdateView):
    """Django's ``UpdateView``, async: ``get_object``, validation and save in one hop."""


class AsyncDeleteView(AsyncViewMixin, DeleteView):
    """Django's ``DeleteView``, async: ``get_object``, the form and the delete in one hop."""
