"""Evidence files: type checked by content (not by name), size limited, stored by content hash
outside the web root, and served only to those who may see the contribution."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from identity.services import audit
from infra.auth import Principal
from infra.errors import Conflict, Forbidden, NotFound, ValidationFailed, too_large
from scoring.models import Contribution, EvidenceFile
from scoring.services.submissions import get_visible

MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 10
SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg", ".jpg"), (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
              (b"%PDF-", "application/pdf", ".pdf"))


def sniff(content: bytes) -> tuple[str, str] | None:
    for magic, content_type, ext in SIGNATURES:
        if content.startswith(magic):
            return content_type, ext
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp", ".webp"
    return None


def attach(session: Session, actor: Principal, contribution_id: int, filename: str, content: bytes,
           storage: Path) -> EvidenceFile:
    contribution = get_visible(session, actor, contribution_id)
    if actor.is_staff and not actor.has_role("clerk", "verifier", "approver"):
        raise Forbidden("Your role does not add evidence.", code="role_required")
    # One upload at a time per contribution, and none once a verifier has moved it on: under the
    # row's lock the state and the count read here hold until this upload commits (two uploads
    # at once made an eleventh file; one racing a verification added evidence to decided work).
    state = session.scalar(select(Contribution.state).where(Contribution.id == contribution.id).with_for_update())
    if state != "submitted":
        raise Conflict("Evidence can be added until the contribution is verified.", code="wrong_state")
    files = session.scalar(select(func.count()).select_from(EvidenceFile)
                           .where(EvidenceFile.contribution_id == contribution.id))
    if files >= MAX_FILES:
        raise Conflict("Too many files for one contribution.", code="too_many_files",
                       details={"file": [f"At most {MAX_FILES} files."]})
    if len(content) > MAX_BYTES:
        raise too_large("file", MAX_BYTES)
    if not content:
        raise ValidationFailed("The file is empty.", details={"file": ["Send a file with content."]})
    kind = sniff(content)
    if kind is None:
        raise ValidationFailed("Only JPEG, PNG, WebP images or PDF documents.", details={"file": ["Unsupported type."]})
    digest = hashlib.sha256(content).hexdigest()
    _store(storage, digest, content)
    safe_name = "".join(ch for ch in Path(filename or "evidence").name if ch.isprintable() and ch not in '"\\/')[:120]
    record = EvidenceFile(contribution_id=contribution.id, filename=safe_name or "evidence", content_type=kind[0],
                          size=len(content), sha256=digest, uploaded_by_kind=actor.kind, uploaded_by_id=actor.id)
    session.add(record)
    session.flush()
    if actor.is_staff:
        audit(session, actor, "evidence.upload", object_type="evidence", object_id=record.id,
              region_path=contribution.region_path, details={"contribution_id": contribution.id, "size": len(content)})
    return record


def _store(storage: Path, digest: str, content: bytes) -> None:
    """Files are named by their content's hash, so the same photo sent twice is stored once. A
    file is written under a temporary name and renamed into place, so a write cut short (a full
    disk, a killed worker) never leaves a partial file under the hash that a later upload of the
    same content would take for complete; a partial file left by older code is replaced."""
    folder = storage / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest
    if path.is_file() and path.stat().st_size == len(content):
        return
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def open_file(session: Session, actor: Principal, contribution_id: int, evidence_id: int,
              storage: Path) -> tuple[EvidenceFile, Path]:
    contribution = get_visible(session, actor, contribution_id)
    record = next((e for e in contribution.evidence if e.id == evidence_id), None)
    if record is None:
        raise NotFound("Evidence not found.")
    path = storage / record.sha256[:2] / record.sha256
    if not path.is_file():
        raise NotFound("Evidence not found.", code="evidence_missing")
    if actor.is_staff:
        audit(session, actor, "evidence.view", object_type="evidence", object_id=record.id,
              region_path=contribution.region_path)
    return record, path
