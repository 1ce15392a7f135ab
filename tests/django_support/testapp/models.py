"""Small models for ORM tests: authors with books (a foreign key), and items."""

from __future__ import annotations

from django.db import models


class Author(models.Model):
    """A book author."""

    name = models.CharField(max_length=100)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    """A book; ``author`` is a lazy relation."""

    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    pages = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.title


class Item(models.Model):
    """A named counter."""

    name = models.CharField(max_length=100, unique=True)
    count = models.IntegerField(default=0)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.name
