"""The same page three ways (20 rows, one query, one template)."""

from asgiref.sync import sync_to_async
from django.shortcuts import render
from django.views.generic import ListView

from asgishift.django_integration.views import AsyncListView
from djviews.models import Row


class OursList(AsyncListView):
    """asgishift: query, context and template in one thread hop."""

    queryset = Row.objects.all()[:20]
    template_name = "djviews/row_list.html"


async def hand_list(request):
    """Django 6 style: an async function view with a-methods and sync_to_async(render)."""
    rows = [row async for row in Row.objects.all()[:20]]
    return await sync_to_async(render)(request, "djviews/row_list.html", {"object_list": rows})


class SyncList(ListView):
    """Django's sync ListView (served by gunicorn gthread)."""

    queryset = Row.objects.all()[:20]
    template_name = "djviews/row_list.html"
