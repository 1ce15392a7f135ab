"""Shared names for the notesapp tests (a unique module name, safe to import from tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from live import REPO_ROOT, LiveServer

SAMPLE_DIR = REPO_ROOT / "sample_projects" / "flask_app"
#: Size of the generated /files/large download: not a multiple of any chunk size.
DOWNLOAD_SIZE = 3 * 1024 * 1024 + 12345


@dataclass
class NotesServer:
    """A running notesapp: its URL, its private instance folder and the process."""

    url: str
    instance: Path
    live: LiveServer

    def client(self) -> httpx.Client:
        """Return a new client with its own cookie jar (a new browser session)."""
        return httpx.Client(base_url=self.url, timeout=30)
