from django.contrib import admin

from shelf.models import Book


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    """Books in the admin."""

    list_display = ("title", "added")
