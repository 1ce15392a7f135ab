"""URL configuration of the sample project."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("reading/", include("reading.urls")),
    path("", include("shelf.urls")),
]
