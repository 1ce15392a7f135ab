from django.db import models


class Book(models.Model):
    """A book on the shelf."""

    title = models.CharField(max_length=200)
    added = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-added", "-id")

    def __str__(self) -> str:
        return self.title
