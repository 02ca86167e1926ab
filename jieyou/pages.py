"""The landing page at /: what this service is, live figures, and where to go next."""
from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from identity.models import Outlet, Participant, Partner
from infra.db import db
from ledger.models import Entry, Posting
from ledger.services import integrity

blp = Blueprint("pages", __name__, template_folder="templates")


@blp.get("/")
def index() -> str:
    session = db.session
    figures = {
        "participants": session.scalar(select(func.count()).select_from(Participant)),
        "partners": session.scalar(select(func.count()).select_from(Partner)),
        "outlets": session.scalar(select(func.count()).select_from(Outlet)),
        "postings": session.scalar(select(func.count()).select_from(Posting)),
        "entries": session.scalar(select(func.count()).select_from(Entry)),
        "awarded": session.scalar(select(func.coalesce(func.sum(Entry.amount), 0))
                                  .join(Posting, Posting.id == Entry.posting_id)
                                  .where(Posting.kind == "award", Entry.amount > 0)),
    }
    return render_template("index.html", figures=figures, checks=integrity.latest_checks(session))
