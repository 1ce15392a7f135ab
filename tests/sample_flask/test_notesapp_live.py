"""The sample Flask app, unchanged WSGI code, on four ASGI servers through WSGIToASGI."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator

import httpx
import pytest
from notes_helpers import DOWNLOAD_SIZE, SAMPLE_DIR, NotesServer

from live import live_server

MiB = 1024 * 1024


def _create(client: httpx.Client, title: str, body: str = "") -> dict[str, object]:
    response = client.post("/api/notes", json={"title": title, "body": body})
    assert response.status_code == 201, response.text
    note: dict[str, object] = response.json()
    return note


def test_pages_render_with_the_base_template(client: httpx.Client) -> None:
    note = _create(client, "Rendered <title>", "some body")
    index = client.get("/")
    page = client.get(f"/notes/{note['id']}")
    login = client.get("/login")
    about = client.get("/about")
    for response in (index, page, login, about):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert '<a class="brand" href="/">notesapp</a>' in response.text
    # Jinja autoescaping ran: the title is escaped, not injected.
    assert "Rendered &lt;title&gt;" in index.text
    assert "<h1>Rendered &lt;title&gt;</h1>" in page.text
    assert '<input name="name" autofocus>' in login.text
    assert "<th>SCRIPT_NAME</th>" in about.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_api_crud_round_trip(client: httpx.Client) -> None:
    created = client.post("/api/notes", json={"title": "Buy milk", "body": "2 litres"})
    assert created.status_code == 201
    note = created.json()
    location = created.headers["location"]
    assert location == f"/api/notes/{note['id']}"
    assert client.get(location).json() == note

    patched = client.patch(location, json={"body": "3 litres"}).json()
    assert (patched["title"], patched["body"]) == ("Buy milk", "3 litres")
    replaced = client.put(location, json={"title": "Buy oat milk"}).json()
    assert (replaced["title"], replaced["body"]) == ("Buy oat milk", "")

    listed = client.get("/api/notes", params={"q": "oat milk"}).json()["notes"]
    assert [item["id"] for item in listed] == [note["id"]]

    assert client.delete(location).status_code == 204
    gone = client.get(location)
    assert gone.status_code == 404
    assert gone.json()["detail"] == f"note {note['id']} does not exist"


def test_invalid_note_is_a_json_400(client: httpx.Client) -> None:
    response = client.post("/api/notes", json={"title": "x", "colour": "red"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Bad Request",
        "status": 400,
        "detail": "unknown fields: colour",
    }


def test_session_cookie_persists_between_requests(notes: NotesServer) -> None:
    with notes.client() as browser:
        browser.get("/")
        browser.get("/about")
        assert browser.get("/api/session").json() == {"user": None, "visits": 2}
        signed_in = browser.post("/login", data={"name": "ann"})
        assert signed_in.status_code == 302
        assert signed_in.headers["location"] == "/"
        assert browser.get("/api/session").json() == {"user": "ann", "visits": 3}
        assert "Signed in as <strong>ann</strong>" in browser.get("/").text
        assert browser.cookies.get("notesapp_last_visit")
        assert browser.cookies.get("session")
    with notes.client() as stranger:
        assert stranger.get("/api/session").json() == {"user": None, "visits": 0}


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize(
    "chunked",
    [pytest.param(False, id="content-length"), pytest.param(True, id="chunked")],
)
def test_upload_is_streamed_to_disk(notes: NotesServer, chunked: bool) -> None:
    data = os.urandom(4 * MiB + 777)
    expected = hashlib.sha256(data).hexdigest()
    name = f"upload-{'chunked' if chunked else 'sized'}.bin"
    content = _chunks(data, 256 * 1024) if chunked else data
    with notes.client() as client:
        response = client.post("/files/upload", params={"name": name}, content=content)
        assert response.status_code == 201, response.text
        assert response.json() == {"name": name, "bytes": len(data), "sha256": expected}
        on_disk = (notes.instance / "uploads" / name).read_bytes()
        assert hashlib.sha256(on_disk).hexdigest() == expected
        back = client.get(f"/files/uploads/{name}")
    assert back.content == data


def test_large_download_with_send_file(client: httpx.Client, notes: NotesServer) -> None:
    digest = hashlib.sha256()
    received = 0
    with client.stream("GET", "/files/large") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(DOWNLOAD_SIZE)
        assert response.headers["content-disposition"] == "attachment; filename=large.bin"
        for chunk in response.iter_bytes():
            digest.update(chunk)
            received += len(chunk)
    generated = (notes.instance / f"large-{DOWNLOAD_SIZE}.bin").read_bytes()
    assert received == DOWNLOAD_SIZE
    assert digest.hexdigest() == hashlib.sha256(generated).hexdigest()

    partial = client.get("/files/large", headers={"Range": "bytes=1000-1999"})
    assert partial.status_code == 206
    assert partial.content == generated[1000:2000]


def _parse_events(lines: Iterator[str]) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in lines:
        if not line:
            if current:
                events.append(current)
            current = {}
            continue
        field, _, value = line.partition(": ")
        current[field] = value
    return events


def test_server_sent_events_arrive(client: httpx.Client) -> None:
    with client.stream("GET", "/events", params={"count": 5, "interval": 0}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "content-length" not in response.headers
        events = _parse_events(response.iter_lines())
    assert events[0] == {"retry": "5000"}
    ticks = [event for event in events if event.get("event") == "tick"]
    assert [event["id"] for event in ticks] == ["1", "2", "3", "4", "5"]
    assert [json.loads(event["data"])["n"] for event in ticks] == [1, 2, 3, 4, 5]
    assert events[-1] == {"event": "done", "data": "{}"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "content_type"),
    [
        pytest.param("GET", "/nowhere", {}, 404, "text/html; charset=utf-8", id="404-html"),
        pytest.param("GET", "/api/nowhere", {}, 404, "application/json", id="404-api-json"),
        pytest.param(
            "GET",
            "/nowhere",
            {"Accept": "application/json"},
            404,
            "application/json",
            id="404-accept-json",
        ),
        pytest.param("GET", "/notes/999999", {}, 404, "text/html; charset=utf-8", id="404-page"),
        pytest.param("DELETE", "/api/session", {}, 405, "application/json", id="405-json"),
        pytest.param("GET", "/api/boom", {}, 500, "application/json", id="500-json"),
    ],
)
def test_error_handlers(
    client: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
    content_type: str,
) -> None:
    response = client.request(method, path, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    if content_type == "application/json":
        assert response.json()["status"] == status
    else:
        assert f'<h1 class="error">{status} · ' in response.text


@pytest.mark.live
def test_sessions_and_data_are_shared_by_worker_processes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    instance = tmp_path_factory.mktemp("notesapp-workers")
    argv = [sys.executable, "-m", "asgishift", "serve", "--workers", "2", "--port", "{port}"]
    argv += ["--app-dir", str(SAMPLE_DIR), "--factory", "notesapp:create_app"]
    env = {"NOTESAPP_INSTANCE_PATH": str(instance)}
    with live_server("uvicorn", "", command=argv, env=env, app_dir=SAMPLE_DIR) as srv:
        with httpx.Client(base_url=srv.url) as browser:
            assert browser.post("/login", data={"name": "bo"}).status_code == 302
            note = _create(browser, "shared")
            cookies = dict(browser.cookies)
        pids: set[str] = set()
        # A new connection per request, so the kernel spreads them over both
        # workers; poll until both have answered.
        for _ in range(400):
            with httpx.Client(base_url=srv.url, cookies=cookies) as fresh:
                about = fresh.get("/about").text
                assert "Signed in as <strong>bo</strong>" in about
                assert fresh.get(f"/api/notes/{note['id']}").json()["author"] == "bo"
            match = re.search(r"<th>process id</th><td><code>(\d+)</code>", about)
            assert match is not None
            pids.add(match.group(1))
            if len(pids) == 2:
                break
    assert len(pids) == 2
