"""Posts with a lazy author relation and many-to-many tags."""

from __future__ import annotations

from django.db import models
from django.urls import reverse

from django_support.testapp.models import Author


class Tag(models.Model):
    """A label on posts."""

    name = models.CharField(max_length=50)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name


class Post(models.Model):
    """A blog post; ``author`` and ``tags`` are lazy relations."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="posts")
    tags = models.ManyToManyField(Tag, blank=True, related_name="posts")

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        """The post's detail page (used by the create and update views' redirects)."""
        return reverse("sync-detail", args=[self.pk])
