"""ASH105 blocking-file-io: pathlib paths built with ``/``, binary files, glob, temp files."""

import glob
import shutil
import tempfile
from pathlib import Path

BASE = Path(__file__).resolve().parent
REPORTS = BASE / "reports"


class Exporter:
    def __init__(self, root: Path):
        self.root = root
        self.archive = BASE / "archive"

    def export(self, name, data):
        target = self.root / name
        target.write_bytes(data)  # error: ASH105:9
        (self.archive / name).write_text("x")  # error: ASH105:9


def load(name: str):
    return (REPORTS / name).read_text()  # error: ASH105:12


async def report(name):
    return load(name)


async def export(exporter: Exporter, name, data):
    exporter.export(name, data)


async def dump(path, payload):
    with open(path, "wb") as fh:  # error: ASH105:10
        fh.write(payload)  # error: ASH105:9


async def copy(src_file, dst_path):
    with open(dst_path, "wb") as out:  # error: ASH105:10
        shutil.copyfileobj(src_file, out)  # error: ASH105:9


async def scratch():
    workdir = tempfile.mkdtemp()  # error: ASH105:15
    handle = tempfile.NamedTemporaryFile()  # error: ASH105:14
    return workdir, handle


async def templates(pattern):
    return glob.glob(pattern)  # error: ASH105:12


async def each(paths: list[Path]):
    for path in paths:
        path.read_text()  # error: ASH105:9


async def lookup(files: dict[str, Path], key):
    return files[key].read_bytes()  # error: ASH105:12
