"""ASH106 blocking-filesystem-query: os.path and pathlib queries, attribute and constant paths."""

import os.path
from pathlib import Path

MEDIA = Path("/srv/media")


class Storage:
    def __init__(self, location: Path):
        self.location = location

    def has(self, name):
        return (self.location / name).exists()  # error: ASH106:16


async def avatar_exists(name):
    return os.path.exists(name)  # error: ASH106:12


async def media_size(name):
    return (MEDIA / name).stat().st_size  # error: ASH106:12


async def stored(storage: Storage, name):
    return storage.has(name)


async def pure(name):
    return os.path.join("a", name)  # ok: touches no disk


def plugin_dirs(plugins_dir=None):
    if plugins_dir:
        return os.path.isdir(plugins_dir)  # error: ASH106:16
    return False


async def plugins_view(request):
    plugin_dirs()  # ok: plugins_dir left out, its branch is not reached from here
    return plugin_dirs(plugins_dir="plugins")
