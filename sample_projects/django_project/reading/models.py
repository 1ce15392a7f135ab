from django.db import models
from django.urls import reverse
from shelf.models import Book


class Note(models.Model):
    """A reading note on a book."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="notes")
    text = models.TextField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created", "-id")

    def __str__(self) -> str:
        return self.text[:40]

    def get_absolute_url(self) -> str:
        return reverse("reading:detail", args=[self.pk])


class ReportRun(models.Model):
    """When a report was built, and its totals (written in the report's transaction)."""

    created = models.DateTimeField(auto_now_add=True)
    books = models.IntegerField()
    notes = models.IntegerField()
