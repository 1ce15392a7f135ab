"""The benchmark's table: rows with a title, a number and a date."""

from django.db import models


class Row(models.Model):
    """One listed row."""

    title = models.CharField(max_length=100)
    number = models.IntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
