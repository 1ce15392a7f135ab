"""Models of the ORM rule fixtures (no findings here)."""

from django.db import models


class PublishedQuerySet(models.QuerySet):
    def live_count(self):
        # A custom QuerySet method of the project whose body runs a query.
        return self.filter(live=True).count()  # error: ASH201:16


class BookManager(models.Manager):
    def recent_titles(self):
        return list(self.order_by("-id")[:10])  # error: ASH202:16


class Author(models.Model):
    name = models.TextField()


class Book(models.Model):
    title = models.TextField()
    live = models.BooleanField()
    author = models.ForeignKey(Author, on_delete=models.CASCADE)
    editor = models.ForeignKey(Author, null=True, on_delete=models.SET_NULL, related_name="+")
    objects = BookManager()
    published = PublishedQuerySet.as_manager()


def get_object_or_404(pk):
    return pk
