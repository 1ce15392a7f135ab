"""ASH207 sync-only-django-query: the sites framework reads the Site from the database."""

from asgiref.sync import sync_to_async
from django.contrib.sites.models import Site
from django.contrib.sites.shortcuts import get_current_site


async def home(request):
    site = Site.objects.get_current()  # error: ASH207:12
    return site.domain


async def share_link(request, path):
    return f"https://{get_current_site(request).domain}{path}"  # error: ASH207:23


def absolute(request, path):
    return f"https://{get_current_site(request).domain}{path}"  # error: ASH207:23


async def via_helper(request, path):
    return absolute(request, path)


async def wrapped(request):
    site = await sync_to_async(get_current_site)(request)  # ok: runs in a thread
    current = await sync_to_async(Site.objects.get_current)()  # ok: runs in a thread
    return site, current


def sync_view(request):
    return get_current_site(request).name  # ok: never reached from async code
