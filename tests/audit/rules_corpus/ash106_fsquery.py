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


WATCHED: dict[Path, float] = {}


async def changed(stamps: dict[Path, float]):
    for path in stamps:
        path.stat()  # error: ASH106:9
    for path in stamps.keys():
        path.exists()  # error: ASH106:9
    for path, mtime in stamps.items():
        path.stat()  # error: ASH106:9
    for index, (path, mtime) in enumerate(stamps.items()):
        path.stat()  # error: ASH106:9
    for path, _ in WATCHED.items():
        path.is_file()  # error: ASH106:9


async def by_name(found: dict[str, Path], paths: list[Path], labels: list[str]):
    for path in found.values():
        path.exists()  # error: ASH106:9
    for number, path in enumerate(sorted(paths)):
        path.is_dir()  # error: ASH106:9
    for label, path in zip(labels, paths):
        path.exists()  # error: ASH106:9
    sizes = [path.stat().st_size for path in paths]  # error: ASH106:14
    return sizes, {name: p.exists() for name, p in found.items()}  # error: ASH106:26


async def shadowed(path: Path, rows: list[dict[str, str]], names: list[str]):
    # a comprehension's variable hides the function's `path` of the same name
    kept = [path.get("exists") for path in rows]  # ok: path is a dict here
    kept += [path.exists() for path in names]  # ok: path is a str here
    return kept, path.exists()  # error: ASH106:18


async def keys_are_not_paths(found: dict[str, Path]):
    for name in found:
        name.exists()  # ok: the keys are str
    for name, size in found.items():
        size.exists()  # error: ASH106:9
        name.exists()  # ok
