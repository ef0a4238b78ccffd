"""Endpoints (``catalog/endpoints.py``): the ids in a path are folded."""

from __future__ import annotations

import pytest

from gunicorn_pyinstrument.catalog.endpoints import fold_path


@pytest.mark.parametrize(
    ("path", "folded"),
    [
        ("/users/42/orders/7", "/users/{n}/orders/{n}"),
        ("/", "/"),
        ("", ""),
        ("/v2/items", "/v2/items"),  # a number inside a word is part of the name
        ("/items/123e4567-e89b-12d3-a456-426614174000", "/items/{uuid}"),
        ("/items/123E4567-E89B-12D3-A456-426614174000/x", "/items/{uuid}/x"),
        ("/blobs/0123456789abcdef0123", "/blobs/{hex}"),
        ("/blobs/deadbeefdeadbeef", "/blobs/deadbeefdeadbeef"),  # letters only: a word
        ("/blobs/0123456789abcde", "/blobs/0123456789abcde"),  # 15 digits of hex: too short
        ("/commits/3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", "/commits/{hex}"),
        ("/a/1/b/123e4567-e89b-12d3-a456-426614174000/c/abcdef0123456789/d", "/a/{n}/b/{uuid}/c/{hex}/d"),
        ("/users/42/", "/users/{n}/"),
        ("/users/-42", "/users/-42"),
        ("/page/1.5", "/page/1.5"),
    ],
)
def test_fold_path(path, folded):
    assert fold_path(path) == folded
