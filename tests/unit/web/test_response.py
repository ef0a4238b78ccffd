"""The answers: the error page, the download headers."""

from __future__ import annotations

from gunicorn_pyinstrument.web.response import content_disposition, error_response


def test_error_response_escapes_the_message() -> None:
    response = error_response(404, "no report named '<img src=x onerror=alert(1)>'")
    assert response.status == 404
    assert b"<img" not in response.body
    assert b"404 Not Found" in response.body


def test_content_disposition() -> None:
    assert content_disposition("a.html") == "attachment; filename=\"a.html\"; filename*=UTF-8''a.html"
    value = content_disposition('we"ird;\r\nname é.txt')
    assert "\r" not in value and "\n" not in value
    assert 'filename="we_ird___name__.txt"' in value
