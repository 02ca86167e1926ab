"""Code guessing: the failure budget holds for guesses in flight at once, and codes cannot be made
without end."""
from __future__ import annotations

import io

import pytest
from flask import Response

from infra.limits import RateLimited
from redemption.api import CODE_LIMITS
from tests import factories as f


@pytest.fixture
def guesses(app):
    """Opens counter requests whose view answers a given status; closes whatever stays open."""
    settings, opened = app.config["SETTINGS"], []
    settings.code_failure_limit = "1 per 10 minutes"
    view = CODE_LIMITS[0](lambda status: Response(status=status))

    def guess(n: int, status: int) -> Response:
        ctx = app.test_request_context("/api/v1/outlet/lookup", method="POST", json={"code": f"{n:08d}"})
        ctx.push()
        opened.append(ctx)
        return view(status)

    yield guess
    for ctx in reversed(opened):
        ctx.pop()
    settings.code_failure_limit = "10 per 10 minutes"


def test_guesses_in_flight_at_once_cannot_pass_the_failure_budget(app, session, guesses):
    """Checked before the view and counted only after it, two guesses sent together both passed
    a budget of one: an outlet could guess at the whole look-up rate by sending them in parallel."""
    first = guesses(1, 404)
    with pytest.raises(RateLimited):
        guesses(2, 404)  # while the first is still in flight
    app.process_response(first)


def test_answers_that_are_not_failures_do_not_spend_the_failure_budget(app, session, guesses):
    for n, status in enumerate((200, 409, 201, 422)):
        app.process_response(guesses(n, status))
    app.process_response(guesses(8, 404))
    with pytest.raises(RateLimited):
        guesses(9, 404)


def test_a_participant_cannot_make_codes_without_end(app, client, session):
    """Each code is a row, and every code ever made keeps its digits from new ones (the digest is
    unique): unlimited codes would fill the table and shrink the space a new code is drawn from."""
    tree = f.region_tree(session)
    me = f.bearer(session, "participant", f.participant(session, tree.grid_a).id)
    other = f.bearer(session, "participant", f.participant(session, tree.grid_a).id)
    before, app.config["SETTINGS"].code_issue_limit = app.config["SETTINGS"].code_issue_limit, "3 per 10 minutes"
    try:
        made = [client.post("/api/v1/me/codes", headers=me).status_code for _ in range(4)]
        theirs = client.post("/api/v1/me/codes", headers=other).status_code
    finally:
        app.config["SETTINGS"].code_issue_limit = before
    assert made == [201, 201, 201, 429] and theirs == 201


def test_the_qr_image_holds_the_code_and_nothing_else(app, client, session):
    """A counter's scanner types what the image holds into the code field, which takes the eight
    digits only: a prefix made every scanned code a 422."""
    import qrcode
    import qrcode.image.svg

    tree = f.region_tree(session)
    me = f.bearer(session, "participant", f.participant(session, tree.grid_a).id)
    issued = client.post("/api/v1/me/codes", headers=me).json
    expected = io.BytesIO()
    qrcode.make(issued["code"], image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2).save(expected)
    assert issued["qr_svg"] == expected.getvalue().decode()


def test_a_day_of_spaced_guesses_stops_at_the_daily_budget(app, session, guesses):
    """Guesses kept under the 10-minute budget still stop at the day's: with 1,000 codes live,
    1,440 guesses a day hit one with a chance of about 1.4 % per outlet, 50 with 0.05 %."""
    settings = app.config["SETTINGS"]
    settings.code_failure_limit, settings.code_failure_daily_limit = "1000 per 10 minutes", "3 per day"
    try:
        for n in range(3):
            app.process_response(guesses(n, 404))
        with pytest.raises(RateLimited):
            guesses(3, 404)
    finally:
        settings.code_failure_daily_limit = "50 per day"


def test_no_address_holds_a_live_code(app, client, session):
    """The QR image had an address of its own, /me/codes/<the eight digits>/qr.svg, which the phone
    page fetched for every code it showed: gunicorn's access log (and any proxy's) kept each live
    code. The image now comes with the code; the old address is gone, for any code, and no route
    under /me/codes takes anything in its path."""
    tree = f.region_tree(session)
    me = f.bearer(session, "participant", f.participant(session, tree.grid_a).id)
    issued = client.post("/api/v1/me/codes", headers=me).json
    assert issued["qr_svg"].startswith("<?xml") and "</svg>" in issued["qr_svg"]
    assert client.get(f"/api/v1/me/codes/{issued['code']}/qr.svg", headers=me).status_code == 404
    assert [rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/me/codes")] \
        == ["/api/v1/me/codes"]
