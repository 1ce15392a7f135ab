"""The failure policy of ``WSGIToASGI`` as a table (pure, no server)."""

from __future__ import annotations

import logging

import pytest

from asgishift.bridge._app_failure import app_failure
from asgishift.bridge._errors import ClientDisconnected, RequestBodyTooLarge

WHERE = "POST /shop/cart"


@pytest.mark.parametrize(
    ("exc", "sent", "too_large", "status", "passed_on", "level", "traceback", "words"),
    [
        # the client left: nothing to answer, nothing for the server
        (ClientDisconnected("gone"), False, False, None, False, logging.DEBUG, False,
         "client disconnected during POST /shop/cart: gone"),
        (ClientDisconnected("gone"), True, True, None, False, logging.DEBUG, False,
         "client disconnected"),
        # the body went past max_body_size: 413, even if the app raised something else
        (RequestBodyTooLarge("big"), False, True, 413, False, logging.INFO, False,
         "413 Content Too Large: POST /shop/cart"),
        (KeyError("x"), False, True, 413, False, logging.INFO, False, "413 Content Too Large"),
        # ... but once the response started there is no 413 to send
        (KeyError("x"), True, True, None, True, logging.ERROR, False,
         "failed after the response started (POST /shop/cart): KeyError('x'); the response"),
        # an ordinary exception: 500 and passed on to the server, traceback left to it
        (ValueError("bad"), False, False, 500, True, logging.ERROR, False,
         "the WSGI app failed (POST /shop/cart): ValueError('bad'); answered 500"),
        (ValueError("bad"), True, False, None, True, logging.ERROR, False, "cut short"),
        # not an Exception: never the server's; logged here with its traceback
        (SystemExit(3), False, False, 500, False, logging.ERROR, True,
         "the WSGI app failed (POST /shop/cart)"),
        (KeyboardInterrupt(), True, False, None, False, logging.ERROR, True,
         "the WSGI app failed (POST /shop/cart)"),
    ],
)  # fmt: skip
def test_app_failure_table(
    exc: BaseException,
    sent: bool,
    too_large: bool,
    status: int | None,
    passed_on: bool,
    level: int,
    traceback: bool,
    words: str,
) -> None:
    failure = app_failure(exc, WHERE, sent=sent, too_large=too_large)
    assert failure.status == status
    assert failure.reraise is (exc if passed_on else None)
    assert failure.level == level
    assert failure.traceback is traceback
    assert words in failure.message
