"""Evidence under concurrency, on PostgreSQL with real threads and committed data: uploads to one
contribution take turns on its row, so its file limit holds and decided work takes no more."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from identity.services import participant_principal
from infra.errors import Conflict
from scoring.models import EvidenceFile
from scoring.services import awards, evidence, workflow
from tests import factories as f
from tests.concurrency import while_holding

pytestmark = pytest.mark.concurrency

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _award_what_is_left(committed_factory: sessionmaker[Session]) -> Iterator[None]:
    """Committed data stays in the run's database: award the work verified here, so that later
    tests' award runs find only their own (as tests/scoring/test_notice_races.py does)."""
    yield
    with committed_factory() as s:
        while awards.award_due(s, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=60), shards=f.SHARDS):
            s.commit()
        s.commit()


def _submitted(factory: sessionmaker[Session], files: int, storage: Path):  # noqa: ANN202
    with factory() as setup:
        tree = f.region_tree(setup)
        person = f.participant(setup, tree.grid_a)
        work = f.contribution(setup, f.staff(setup, "clerk", tree.town_a), person, "MED-1")
        me = participant_principal(person)
        for i in range(files):
            evidence.attach(setup, me, work.id, f"照片{i}.png", PNG + bytes([i]), storage)
        verifier = f.staff(setup, "verifier", tree.town_a)
        setup.commit()
        return work.id, me, verifier


def _count(factory: sessionmaker[Session], work_id: int) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(EvidenceFile).where(EvidenceFile.contribution_id == work_id))


def test_two_uploads_at_once_never_pass_the_file_limit(committed_factory, tmp_path):
    work_id, me, _verifier = _submitted(committed_factory, evidence.MAX_FILES - 1, tmp_path)
    _mine, second = while_holding(
        committed_factory,
        lambda s: evidence.attach(s, me, work_id, "第十张.png", PNG + b"ten", tmp_path),
        lambda s: evidence.attach(s, me, work_id, "第十一张.png", PNG + b"eleven", tmp_path))
    assert isinstance(second, Conflict) and second.code == "too_many_files"
    assert _count(committed_factory, work_id) == evidence.MAX_FILES


def test_an_upload_racing_the_verification_is_refused_once_the_work_is_decided(committed_factory, tmp_path):
    work_id, me, verifier = _submitted(committed_factory, 1, tmp_path)
    _mine, second = while_holding(
        committed_factory,
        lambda s: workflow.verify_many(s, verifier, [work_id]),
        lambda s: evidence.attach(s, me, work_id, "迟到的照片.png", PNG + b"late", tmp_path))
    assert isinstance(second, Conflict) and second.code == "wrong_state"
    assert _count(committed_factory, work_id) == 1
