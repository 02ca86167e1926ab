"""Bulk import of contributions from the grid system's CSV or XLSX export. Every row is checked;
if any row is bad, the job fails listing every bad row with its line and reason, and nothing is
imported. A file is never half-imported, never imported twice by two deliveries of its task, and
the same file is not taken again while an earlier upload of it is queued, running or done."""
from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import itertools
import logging
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from identity.models import Participant
from identity.services import audit
from infra.auth import Principal
from infra.db import utcnow
from infra.driver import on_postgresql
from infra.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed, too_large
from infra.security import CONTROL_CHARACTER_ERROR, CONTROL_CHARACTERS
from scoring.models import GAVE_UP, GAVE_UP_REASON, ImportJob
from scoring.services.submissions import EIGHT_STEPS, MAX_AGE_DAYS, SUBMITTER_ROLES, Submission, submit

log = logging.getLogger(__name__)

MAX_ROWS = 20000
MAX_BYTES = 5 * 1024 * 1024
# A workbook inflates about tenfold; a zip bomb by thousands. What the parts of an XLSX say they
# inflate to is the most zipfile ever decompresses, so it is checked before openpyxl opens one.
MAX_UNZIPPED = 100 * 1024 * 1024
HEADERS = {
    "indicator_code": ("indicator_code", "指标代码"), "work_date": ("work_date", "工作日期"),
    "participant_phones": ("participant_phones", "参与者手机号"), "description": ("description", "工作描述"),
    "conflict_item": ("conflict_item", "隐患条目"), "warning_colour": ("warning_colour", "预警颜色"),
    "quantity": ("quantity", "数量"), "incident_ref": ("incident_ref", "事件编号"),
    **{f"case_{step}": (f"case_{step}", f"案卷_{zh}") for step, zh in zip(
        EIGHT_STEPS, ("看", "听", "问", "帮", "报", "想", "讲", "记"))},
}
REQUIRED = ("indicator_code", "work_date", "participant_phones", "description")
LIMITS = {"indicator_code": 16, "description": 2000, "conflict_item": 10, "warning_colour": 8, "incident_ref": 100,
          **{f"case_{step}": 2000 for step in EIGHT_STEPS}}
# Advisory lock spaces (pg_advisory_xact_lock(space, key)): one import job; one file's content.
JOB_LOCK, FILE_LOCK = 0x4A59_0001, 0x4A59_0002
COLOUR_WORDS = {"红": "red", "红色": "red", "橙": "orange", "橙色": "orange", "黄": "yellow", "黄色": "yellow",
                "蓝": "blue", "蓝色": "blue"}


def create_job(session: Session, actor: Principal, filename: str, content: bytes, storage: Path) -> ImportJob:
    if not actor.has_role(*SUBMITTER_ROLES):
        raise Forbidden("Your role does not import contributions.", code="role_required")
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise ValidationFailed("Upload a CSV or XLSX file.", details={"file": ["Only .csv or .xlsx."]})
    if len(content) > MAX_BYTES:
        raise too_large("file", MAX_BYTES)
    if not content:
        raise ValidationFailed("The file is empty.", details={"file": ["Send a file with content."]})
    problem = check_xlsx(io.BytesIO(content)) if suffix == ".xlsx" else check_csv(content)
    if problem:
        raise ValidationFailed("This is not a file we can import.", details={"file": [problem]})
    digest = hashlib.sha256(content).hexdigest()
    _refuse_same_file(session, digest)
    storage.mkdir(parents=True, exist_ok=True)
    (storage / f"{digest}{suffix}").write_bytes(content)
    job = ImportJob(filename=Path(filename).name[:200], stored_name=f"{digest}{suffix}", created_by=actor.id,
                    scope_path=actor.scope_path or "/")
    session.add(job)
    session.flush()
    audit(session, actor, "contribution.import", object_type="import_job", object_id=job.id,
          region_path=actor.scope_path, details={"filename": job.filename, "sha256": digest})
    return job


def check_xlsx(source: io.BytesIO | Path) -> str | None:
    """Why this is no XLSX we will open (None if fine): by its content, not its name, and refusing
    a zip bomb before openpyxl inflates it."""
    try:
        with zipfile.ZipFile(source) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return "Not an XLSX workbook."
    if not {"[Content_Types].xml", "xl/workbook.xml"} <= {part.filename for part in parts}:
        return "Not an XLSX workbook."
    if sum(part.file_size for part in parts) > MAX_UNZIPPED:
        return f"The workbook unpacks to more than {MAX_UNZIPPED} bytes."
    return None


# What Excel writes as "CSV" on a Chinese Windows (the code page 936 / GBK, of which GB18030 is the
# superset) and as "CSV UTF-8": both are taken, UTF-8 first (GB18030 would misread its bytes).
CSV_ENCODINGS = ("utf-8-sig", "gb18030")
NOT_CSV_TEXT = "Not a text CSV: save it as CSV (UTF-8 or the Chinese default, GBK)."


def decode_csv(content: bytes) -> str | None:
    """The CSV's text, or None if it is neither UTF-8 nor GB18030 text (a binary file renamed .csv;
    a stray control character in a cell is reported later, with its line)."""
    for encoding in CSV_ENCODINGS:
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def check_csv(content: bytes) -> str | None:
    """Why this is no CSV text (None if fine), found at upload rather than later in the queue."""
    if decode_csv(content) is None:
        return NOT_CSV_TEXT
    return None  # a control character in a cell is reported later with its line


def _refuse_same_file(session: Session, digest: str) -> None:
    """The same export uploaded again (a double click, or last week's file) would submit every row
    twice: a 409 naming the earlier import, unless that one failed (then nothing of it was
    imported). Uploads of one content take turns on a lock held until their commit, so two at once
    cannot both pass."""
    if on_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(FILE_LOCK, func.hashtext(digest))))
    earlier = session.scalars(select(ImportJob).where(ImportJob.stored_name.startswith(digest),
                                                      ImportJob.status != "failed")
                              .order_by(ImportJob.id).limit(1)).first()
    if earlier is not None:
        when = earlier.created_at.strftime("%Y-%m-%d %H:%M") + " UTC"
        raise Conflict("This file was already uploaded as import %(job)s (%(filename)s, %(when)s).",
                       code="duplicate_import", job=earlier.id, filename=earlier.filename, when=when,
                       details={"file": [f"Same content as import {earlier.id} ({earlier.filename}, {when}, "
                                         f"{earlier.status})."], "import_id": [str(earlier.id)]})


def claim(session: Session, job_id: int) -> ImportJob | None:
    """The job if this run is the one to import it, else None (unknown, or already done or failed).

    Celery may deliver the task twice (acks_late, reject_on_worker_lost), even at once. On
    PostgreSQL the run takes the job's advisory lock for its whole transaction: a second delivery
    waits for the first to commit and then finds the job finished; if the first worker died, its
    transaction and lock went with it and the second imports. An advisory lock, not the row's:
    progress is written to the job row by another transaction while the import runs (SQLite takes
    its write lock with the transaction, which serialises runs alike)."""
    if on_postgresql(session):
        session.execute(select(func.pg_advisory_xact_lock(JOB_LOCK, func.hashtext(str(job_id)))))
    job = session.get(ImportJob, job_id, populate_existing=True)  # read after the lock
    if job is None or job.status in ("done", "failed"):
        return None
    return job


def abandon(session: Session, job_id: int, exc: BaseException) -> None:
    """Mark failed a job whose run broke off for a reason no row explains (a bug, the database lost
    mid-run), its work rolled back. Celery acks a failed task and never runs it again, so the job
    would stay queued or importing for ever, its file refused as a duplicate of it; failed, staff
    see why and may upload the file again. Not while another delivery holds the job's claim: that
    one is importing it, and its outcome stands."""
    if on_postgresql(session) and not session.scalar(
            select(func.pg_try_advisory_xact_lock(JOB_LOCK, func.hashtext(str(job_id))))):
        return
    reason = f"The import stopped on an unexpected error ({type(exc).__name__}); nothing was imported."
    session.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.status.not_in(("done", "failed")))
                    .values(status="failed", errors=[{"line": 0, "field": "file", "reason": reason}],
                            imported_rows=0, finished_at=utcnow()))


def start_attempt(session: Session, job_id: int, max_attempts: int) -> bool:
    """Count one more run of the job, in a unit of work of its own committed before the run
    imports: a run that kills its worker (a file that exhausts its memory) rolls back everything
    but this, and the broker redelivers its task (reject_on_worker_lost) or the sweep sends it
    again. Once `max_attempts` runs have started without finishing, the job is marked failed
    (`give_up`) and False says not to run it. A delivery arriving while another run holds the
    job's claim (PostgreSQL) is not counted: it will wait at `claim` and find the job finished."""
    if on_postgresql(session) and not session.scalar(
            select(func.pg_try_advisory_xact_lock(JOB_LOCK, func.hashtext(str(job_id))))):
        return True
    job = session.get(ImportJob, job_id, populate_existing=True, with_for_update=True)
    if job is None or job.status in ("done", "failed"):
        return True  # `claim` skips it
    if give_up(session, job, max_attempts):
        return False
    job.attempts += 1
    session.flush()
    return True


def give_up(session: Session, job: ImportJob, max_attempts: int) -> bool:
    """Mark failed, saying why, a job already started `max_attempts` times without finishing
    (True); False leaves it be. Nothing of it was imported (each run imports in one savepoint),
    so staff may upload the file again once they have looked at it. The caller holds the job's
    claim or knows that no run does (`start_attempt`, `stale_jobs`)."""
    if job.attempts < max(max_attempts, 1) or job.status in ("done", "failed"):
        return False
    job.status, job.imported_rows, job.finished_at = "failed", 0, utcnow()
    job.errors = [{"line": 0, "field": "file", "code": GAVE_UP, "attempts": job.attempts,
                   "reason": GAVE_UP_REASON % {"attempts": job.attempts}}]
    session.flush()
    log.warning("import %s was started %s times without finishing: marked failed", job.id, job.attempts)
    return True


def stale_jobs(session: Session, uploaded_before: dt.datetime, limit: int = 100) -> list[int]:
    """Jobs uploaded before `uploaded_before` and still not finished that no run is importing now
    (on PostgreSQL: their claim is free, and this transaction holds it until its commit): their
    task was lost (the broker refused it at the upload, or the process running it in-process
    stopped). Running them again is safe, `claim` lets one run import a job."""
    ids = session.scalars(select(ImportJob.id).where(ImportJob.status.in_(("queued", "validating", "importing")),
                                                     ImportJob.created_at < uploaded_before)
                          .order_by(ImportJob.id).limit(limit)).all()
    if not on_postgresql(session):
        return list(ids)
    return [job_id for job_id in ids if session.scalar(
        select(func.pg_try_advisory_xact_lock(JOB_LOCK, func.hashtext(str(job_id)))))]


def get_job(session: Session, actor: Principal, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None or not (job.created_by == actor.id or actor.in_scope(job.scope_path)):
        raise NotFound("Import not found.")
    return job


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number as the user sees it, row by canonical column name)."""
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        problem = check_xlsx(path)  # files stored before the upload checked it
        if problem:
            raise ValidationFailed("This is not a file we can import.", details={"file": [problem]})
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            yield from _rows(list(r) for r in book.active.iter_rows(values_only=True))
        finally:
            book.close()  # read-only workbooks keep their file open until closed
        return
    text = decode_csv(path.read_bytes())
    if text is None:  # files stored before the upload checked them
        raise ValidationFailed("This is not a file we can import.", details={"file": [NOT_CSV_TEXT]})
    yield from _rows(iter(csv.reader(io.StringIO(text))))


def load_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The rows to import, reading at most one past MAX_ROWS: a longer file is refused for its
    length and the rest is never held in memory."""
    with contextlib.closing(read_rows(path)) as rows:  # closes the workbook now, not at collection
        return list(itertools.islice(rows, MAX_ROWS + 1))


def _rows(raw_rows: Iterator[list[Any]]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number as the user sees it, row by canonical column name) after the header row."""
    header = next(raw_rows, None)
    if header is None:
        return
    names = {}
    for index, title in enumerate(header):
        title = str(title or "").strip()
        for canonical, aliases in HEADERS.items():
            if title in aliases:
                names[index] = canonical
    missing = [c for c in REQUIRED if c not in names.values()]
    if missing:
        raise ValidationFailed("The file lacks required columns.", code="bad_header",
                               details={"file": [f"Missing columns: {', '.join(missing)}"]})
    for line, row in enumerate(raw_rows, start=2):
        values = {names[i]: ("" if v is None else (v.isoformat()[:10] if isinstance(v, dt.date) else str(v)).strip())
                  for i, v in enumerate(row) if i in names}
        if any(values.values()):
            yield line, values


def _submission(session: Session, values: dict[str, str]) -> Submission:
    def bad(field_name: str, message: str) -> ValidationFailed:
        return ValidationFailed("The row is invalid.", details={field_name: [message]})

    for name, value in values.items():
        if CONTROL_CHARACTERS.search(value):
            raise bad(name, CONTROL_CHARACTER_ERROR)

    try:
        work_date = dt.date.fromisoformat(values["work_date"].replace("/", "-"))
    except ValueError:
        raise bad("work_date", "Use YYYY-MM-DD.") from None
    members = []
    # Typed on Chinese keyboards too: full-width digits, colons and semicolons (NFKC makes them
    # ASCII), and 、 or a comma between people as well as the documented semicolon.
    phones = unicodedata.normalize("NFKC", values["participant_phones"])
    for part in filter(None, (p.strip() for p in re.split(r"[;,、]", phones))):
        phone, _, share = part.partition(":")
        person = session.scalar(select(Participant.id).where(Participant.phone == phone.strip()[:20]))
        if person is None:
            raise bad("participant_phones", "A phone number here is not a participant in your area.")
        if share and not (share.strip().isascii() and share.strip().isdecimal() and 1 <= int(share) <= 100):
            raise bad("participant_phones", "Shares are whole numbers, as 13900000001:2.")
        members.append((person, int(share) if share else 1))
    quantity = values.get("quantity") or "1"
    if not (quantity.isascii() and quantity.isdecimal()) or not 1 <= int(quantity) <= 1000:
        raise bad("quantity", "A whole number from 1 to 1000.")
    for name, limit in LIMITS.items():
        if len(values.get(name) or "") > limit:
            raise bad(name, f"At most {limit} characters.")
    colour = values.get("warning_colour") or None
    return Submission(
        indicator_code=values["indicator_code"].upper(), work_date=work_date, description=values["description"],
        members=members, conflict_item=values.get("conflict_item") or None,
        warning_colour=COLOUR_WORDS.get(colour, colour) if colour else None,
        case_record={s: values.get(f"case_{s}", "") for s in EIGHT_STEPS if values.get(f"case_{s}")},
        quantity=int(quantity), incident_ref=values.get("incident_ref") or None)


def run_import(session: Session, job: ImportJob, actor: Principal, storage: Path,
               progress: Callable[[int, int], None] | None = None, *,
               max_age_days: int = MAX_AGE_DAYS) -> ImportJob:
    """Validate and import every row inside one savepoint; any bad row rolls all of them back.
    `progress(done, total)` reports as it goes (the caller writes it in its own transaction, so the
    job row is written here only at the end: an earlier write would hold its row lock and leave the
    progress waiting on this very run). The caller has `claim`ed the job. Rows are held to the
    same submission window as work reported one at a time (`max_age_days`)."""
    errors: list[dict[str, Any]] = []
    imported = 0
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        rows = load_rows(storage / job.stored_name)
    except DomainError as exc:
        errors.append({"line": 1, "field": "file", "reason": "; ".join(sum(exc.details.values(), []))})
    except Exception as exc:  # unreadable file: say so, import nothing
        errors.append({"line": 0, "field": "file", "reason": f"Cannot read the file: {type(exc).__name__}"})
    if len(rows) > MAX_ROWS:
        errors.append({"line": 0, "field": "file", "reason": f"At most {MAX_ROWS} rows per file."})
    # Every row's submission time is this moment, before any rule is read: the rules in force are
    # read once per work date for the whole file (`rules.in_force` keeps them for the transaction),
    # so a version published while the import runs was not checked against its later rows, and
    # verification checks again only the work of a version published after it was submitted.
    session.info.pop("rules_in_force", None)
    started = utcnow()
    savepoint = session.begin_nested()
    if not errors:
        for n, (line, values) in enumerate(rows, start=1):
            try:
                missing = [c for c in REQUIRED if not values.get(c)]
                if missing:
                    raise ValidationFailed("Required fields are missing.", details={c: ["Required."] for c in missing})
                with session.begin_nested():
                    submit(session, actor, _submission(session, values), import_id=job.id, submitted_at=started,
                           max_age_days=max_age_days)
                imported += 1
            except DomainError as exc:
                for field_name, messages in (exc.details or {"row": [exc.message]}).items():
                    if isinstance(messages, list):
                        errors.append({"line": line, "field": field_name, "reason": "; ".join(map(str, messages))})
            except (SQLAlchemyError, ValueError) as exc:  # a value the checks missed: report it, never crash
                errors.append({"line": line, "field": "row", "reason": f"Invalid value ({type(exc).__name__})."})
            if progress and (n % 200 == 0 or n == len(rows)):
                progress(n, len(rows))
    if errors:
        savepoint.rollback()
        job.status, job.errors, job.imported_rows = "failed", errors, 0
    else:
        savepoint.commit()
        job.status, job.imported_rows = "done", imported
    job.total_rows, job.processed_rows, job.finished_at = len(rows), len(rows), utcnow()
    session.flush()
    return job
