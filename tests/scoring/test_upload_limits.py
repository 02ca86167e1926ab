"""Uploads over their limits: the client always gets a JSON 413 naming the field and the limit in
words, in its language, whether the file passes its own limit by a byte or the whole request is
over what the app reads at all."""
from __future__ import annotations

import io

import pytest

from tests import factories as f

MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n"
WORDS = {"zh": ("file", "10 MB", "超过"), "en": ("file", "10 MB", "larger than")}


def _png(size: int) -> bytes:
    return PNG + b"\x00" * (size - len(PNG))


def _evidence(client, session):
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a, name="张秀梅")
    c = f.contribution(session, f.staff(session, "clerk", tree.town_a), person, "MED-1")
    me = f.bearer(session, "participant", person.id)

    def send(size: int, language: str = "zh"):
        return client.post(f"/api/v1/contributions/{c.id}/evidence", headers={**me, "Accept-Language": language},
                           data={"file": (io.BytesIO(_png(size)), "现场照片.png")}, content_type="multipart/form-data")
    return send


def _assert_names_file_and_limit(response, language: str, limit: str = "10 MB") -> None:
    assert response.status_code == 413, response.data[:200]
    assert response.is_json, response.content_type
    error = response.json["error"]
    assert error["code"] == "payload_too_large"
    assert list(error["details"]) == ["file"]
    field, _limit, words = WORDS[language]
    assert field in error["message"] and limit in error["message"] and words in error["message"], error
    assert limit in error["details"]["file"][0]
    if language == "zh":
        assert "不能超过" in error["details"]["file"][0]


def test_a_file_at_the_evidence_limit_is_taken(client, session):
    """10 MB is what evidence may be: the request around it (multipart headers) is not refused."""
    assert _evidence(client, session)(10 * MB).status_code == 201


@pytest.mark.parametrize("language", ["zh", "en"])
def test_evidence_one_byte_over_its_limit_is_a_413_naming_the_file_and_the_limit(client, session, language):
    _assert_names_file_and_limit(_evidence(client, session)(10 * MB + 1, language), language)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_request_over_the_apps_limit_is_a_json_413_naming_the_file_and_its_limit(client, session, language):
    """Over what the app reads at all (the file's limit and room for the form): the body is not read,
    and the answer is still the JSON error naming the field and the file's limit."""
    _assert_names_file_and_limit(_evidence(client, session)(16 * MB, language), language)


def test_an_import_over_its_limit_names_the_file_and_its_own_limit(client, session):
    tree = f.region_tree(session)
    headers = {**f.bearer(session, "staff", f.staff(session, "clerk", tree.town_a).id), "Accept-Language": "en"}
    sent = client.post("/api/v1/admin/imports", headers=headers, data={"file": (io.BytesIO(b"a" * (5 * MB + 1)),
                                                                                "grid.csv")},
                       content_type="multipart/form-data")
    _assert_names_file_and_limit(sent, "en", limit="5 MB")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_a_json_body_over_the_apps_limit_says_the_limit(client, language):
    too_big = "x" * (16 * MB)
    refused = client.post("/api/v1/auth/staff/login", data=too_big, content_type="application/json",
                          headers={"Accept-Language": language})
    assert refused.status_code == 413 and refused.is_json
    assert refused.json["error"]["code"] == "payload_too_large"
    assert "11 MB" in refused.json["error"]["message"]
    assert ("超过" if language == "zh" else "larger than") in refused.json["error"]["message"]
