"""``/ours/``, ``/hand/``, ``/sync/`` and ``/`` (a readiness probe)."""

from django.http import HttpResponse
from django.urls import path

from djviews import views

urlpatterns = [
    path("", lambda request: HttpResponse("ok")),
    path("ours/", views.OursList.as_view()),
    path("hand/", views.hand_list),
    path("sync/", views.SyncList.as_view()),
]
