"""Database errors reach the log without the personal data of the statement (its parameters, the
driver's DETAIL); a race the database catches on a UNIQUE constraint answers as the service
answers the same request a moment later."""
from __future__ import annotations

import logging
import uuid

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from identity import services as identity
from identity.models import Participant
from infra.db import db, make_engine
from infra.errors import constraint_name, log_failure
from tests import factories as f
from tests.concurrency import while_holding
from tests.conftest import _pg_url


def _phone() -> str:
    return f"137{uuid.uuid4().int % 10**8:08d}"


@pytest.mark.concurrency
def test_a_lost_connection_is_a_503_whose_log_holds_neither_the_phone_nor_the_statement(app, engine, pg_url,
                                                                                       caplog):
    """The reviewer's case: a database restarted under a participant's sign-in logged the whole
    statement with `[parameters: {'phone_1': '15000000001'}]`."""
    own = make_engine(pg_url, pool_size=1, max_overflow=0)
    db.configure(own)
    try:
        client = app.test_client()
        assert client.post("/api/v1/auth/participant/login",
                           json={"phone": "15000000001", "password": "not-hers-1"}).status_code == 401
        with own.connect() as conn:  # the pool's one connection, back a moment ago: not pinged
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with psycopg.connect(_pg_url("postgres").replace("+psycopg", ""), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with caplog.at_level(logging.INFO):
            refused = client.post("/api/v1/auth/participant/login",
                                  json={"phone": "15000000001", "password": "not-hers-1"})
    finally:
        db.session.remove()
        db.configure(engine)
        own.dispose()
    assert refused.status_code == 503 and refused.json["error"]["code"] == "unavailable"
    logged = caplog.text
    assert "database busy on /api/v1/auth/participant/login: OperationalError" in logged
    assert "15000000001" not in logged and "parameters" not in logged and "SELECT" not in logged


@pytest.mark.concurrency
def test_two_enrolments_of_one_phone_at_once_answer_as_one_after_the_other(app, committed_factory, caplog):
    """Both find the number free; the second to write met the UNIQUE constraint: a bare `conflict`
    with no field named, and the log kept `DETAIL: Key (phone)=(…) already exists.`"""
    with committed_factory() as s:
        tree = f.region_tree(s)
        clerk = f.staff(s, "clerk", tree.county)
        headers = {**f.bearer(s, "staff", clerk.id), "Accept-Language": "zh"}
        s.commit()
    phone, client = _phone(), app.test_client()
    body = {"name": "梅秀张", "phone": phone, "region_id": tree.grid_a.id, "password": "pass-word-1"}

    def enrol_first(s):  # noqa: ANN001, ANN202
        return identity.create_participant(s, name="张秀梅", phone=phone, region=s.merge(tree.grid_a))

    with caplog.at_level(logging.INFO):
        _first, raced = while_holding(committed_factory, enrol_first,
                                      lambda _s: client.post("/api/v1/admin/participants", headers=headers, json=body))
    later = client.post("/api/v1/admin/participants", headers=headers, json=body)
    assert later.status_code == 409 and later.json["error"]["code"] == "phone_taken"
    assert raced.status_code == 409 and raced.json == later.json
    assert raced.json["error"]["details"] == {"phone": ["已登记。"]}
    assert "integrity error on /api/v1/admin/participants: IntegrityError" in caplog.text
    assert "constraint uq_participants_phone" in caplog.text
    assert phone not in caplog.text and "梅秀张" not in caplog.text and "DETAIL" not in caplog.text


@pytest.mark.sqlite
def test_a_unique_violation_names_its_constraint_on_either_database(any_session):
    """SQLite names the columns, not the constraint; the naming convention gives the same name."""
    tree = f.region_tree(any_session)
    person = f.participant(any_session, tree.grid_a)
    with pytest.raises(IntegrityError) as err:
        with any_session.begin_nested():
            any_session.add(Participant(name="某", phone=person.phone, region_id=tree.grid_a.id,
                                        region_path=tree.grid_a.path))
            any_session.flush()
    assert constraint_name(err.value) == "uq_participants_phone"
    assert person.phone not in str(err.value).split("[SQL:")[1]  # the parameters are hidden


def test_an_unexpected_error_from_a_database_error_is_logged_without_its_values(session, caplog):
    """`log.exception` (a request's 500, a failed scheduled job or after-commit callback) wrote the
    driver's text of every error in the chain: the DETAIL with the value."""
    tree = f.region_tree(session)
    person = f.participant(session, tree.grid_a)
    with caplog.at_level(logging.INFO):
        try:
            try:
                with session.begin_nested():
                    session.add(Participant(name="某", phone=person.phone, region_id=tree.grid_a.id,
                                            region_path=tree.grid_a.path))
                    session.flush()
            except IntegrityError as exc:
                raise RuntimeError("enrolment failed") from exc
        except RuntimeError:
            log_failure(logging.getLogger("tests.jobs"), "scheduled job %s failed", "nightly")
    logged = caplog.text
    assert "scheduled job nightly failed\nTraceback (most recent call last):" in logged
    assert person.phone not in logged and "DETAIL" not in logged and "duplicate key" not in logged
    assert "sqlalchemy.exc.IntegrityError: IntegrityError (psycopg.UniqueViolation), SQLSTATE 23505, " \
           "constraint uq_participants_phone" in logged
    assert "direct cause" in logged and "RuntimeError: enrolment failed" in logged
    assert "test_an_unexpected_error_from_a_database_error_is_logged_without_its_values" in logged  # the frames
