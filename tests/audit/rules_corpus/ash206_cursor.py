"""ASH206 raw-cursor-in-async."""

from django.db import connection


async def stats():
    with connection.cursor() as cursor:  # error: ASH206:10
        cursor.execute("select 1")
