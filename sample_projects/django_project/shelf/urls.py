from django.urls import path

from shelf import views

urlpatterns = [
    path("", views.index, name="index"),
    path("count/", views.count, name="count"),
    path("async-count/", views.async_count, name="async-count"),
    path("ticks/", views.ticks, name="ticks"),
]
