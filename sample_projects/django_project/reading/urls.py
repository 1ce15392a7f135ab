from django.urls import path

from reading import views

app_name = "reading"
urlpatterns = [
    path("", views.NoteList.as_view(), name="list"),
    path("<int:pk>/", views.NoteDetail.as_view(), name="detail"),
    path("new/", views.NoteCreate.as_view(), name="create"),
    path("quote/", views.quote, name="quote"),
    path("report/", views.report, name="report"),
]
