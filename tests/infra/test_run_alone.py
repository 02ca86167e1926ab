"""`infra.driver.run_alone`: a statement that is a unit of work by itself commits on its own when
no transaction has begun, and its connection goes back to the pool as the pool hands them out."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from infra.db import make_engine
from infra.driver import run_alone


@pytest.mark.concurrency
def test_alone_it_commits_itself_and_a_refused_statement_leaves_the_pool_as_it_was(pg_url):
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)  # one connection: the same one each time
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE run_alone_probe (n int CHECK (n > 0))")
        with Session(engine) as session:
            (row,) = run_alone(session, "INSERT INTO run_alone_probe VALUES (%(n)s) RETURNING n", {"n": 1})
            assert row.n == 1 and not session.in_transaction()
            with pytest.raises(DBAPIError):  # refused: nothing of it stays
                run_alone(session, "INSERT INTO run_alone_probe VALUES (%(n)s) RETURNING n", {"n": -1})
        pooled = engine.raw_connection()
        try:
            assert pooled.driver_connection.autocommit is False  # as the pool hands connections out
        finally:
            pooled.close()
        with engine.connect() as conn:  # committed without anyone calling commit
            assert conn.execute(text("SELECT array_agg(n) FROM run_alone_probe")).scalar_one() == [1]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS run_alone_probe")
        engine.dispose()


def test_inside_a_transaction_it_is_part_of_it(session):
    """In a transaction (a request that has read already, a test) it runs in a savepoint: a refusal
    leaves the transaction usable, and what succeeded is the transaction's to commit or undo."""
    session.execute(text("CREATE TEMP TABLE run_alone_inside (n int CHECK (n > 0))"))
    run_alone(session, "INSERT INTO run_alone_inside VALUES (%(n)s) RETURNING n", {"n": 2})
    with pytest.raises(DBAPIError):
        run_alone(session, "INSERT INTO run_alone_inside VALUES (%(n)s) RETURNING n", {"n": -2})
    assert session.execute(text("SELECT array_agg(n) FROM run_alone_inside")).scalar_one() == [2]
