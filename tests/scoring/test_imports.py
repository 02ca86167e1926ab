"""Bulk import: every bad row reported with its line and reason; never half-imported."""
from __future__ import annotations

import datetime as dt
import io

from openpyxl import Workbook
from sqlalchemy import func, select

from infra.clock import local_date
from scoring.models import Contribution
from tests import factories as f

HEADER = "indicator_code,work_date,participant_phones,description,conflict_item,warning_colour,quantity\n"
# Work dates inside the submission window (CONTRIBUTION_MAX_AGE_DAYS), in the rows' order.
D2, D3, D4, D5 = ((local_date() - dt.timedelta(days=n)).isoformat() for n in (8, 7, 6, 5))


def _upload(client, headers, name, content):
    return client.post("/api/v1/admin/imports", headers=headers,
                       data={"file": (io.BytesIO(content), name)}, content_type="multipart/form-data")


def _setup(session):
    tree = f.region_tree(session)
    a = f.participant(session, tree.grid_a)
    b = f.participant(session, tree.grid_a)
    clerk = f.staff(session, "clerk", tree.town_a)
    return tree, a, b, clerk, f.bearer(session, "staff", clerk.id)


def test_a_good_csv_is_imported_whole(client, session):
    _tree, a, b, _clerk, headers = _setup(session)
    body = (HEADER + f"INF-1,{D2},{a.phone},发现宅基地纠纷苗头,C2-01,黄色,1\n"
            f"PRO-3,{D3},{a.phone};{b.phone},入户宣讲反家暴法,,,6\n").encode("utf-8-sig")
    job = _upload(client, headers, "grid-export.csv", body)
    assert job.status_code == 202
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "done" and status["imported_rows"] == 2 and status["errors"] == [], status["errors"]
    assert session.scalar(select(func.count()).select_from(Contribution).where(
        Contribution.import_id == job.json["id"])) == 2


def test_every_bad_row_is_reported_and_nothing_is_imported(client, session):
    _tree, a, _b, _clerk, headers = _setup(session)
    body = (HEADER + f"INF-1,{D2},{a.phone},正常的一行,C2-01,yellow,1\n"
            f"INF-1,2026/13/45,{a.phone},日期错误,C2-01,yellow,1\n"
            f"INF-1,{D2},13000000000,无此手机号,C2-01,yellow,1\n"
            f"XXX-9,{D2},{a.phone},无此指标,,,1\n"
            f"INF-1,{D2},{a.phone},缺少颜色,C2-01,,1\n"
            f"PRO-3,{D2},{a.phone},,,,x\n").encode()
    job = _upload(client, headers, "bad.csv", body)
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "failed" and status["imported_rows"] == 0
    lines = sorted({(e["line"], e["field"]) for e in status["errors"]})
    assert lines == [(3, "work_date"), (4, "participant_phones"), (5, "indicator_code"), (6, "warning_colour"),
                     (7, "description")]
    assert session.scalar(select(func.count()).select_from(Contribution).where(
        Contribution.import_id == job.json["id"])) == 0


def test_a_control_character_in_a_cell_is_reported_with_its_line_and_column(client, session):
    _tree, a, _b, _clerk, headers = _setup(session)
    body = (HEADER + f"INF-1,{D2},{a.phone},正常的一行,C2-01,yellow,1\n"
            f"PRO-3,{D2},{a.phone},宣讲\x00记录,,,2\n").encode()
    job = _upload(client, headers, "nul.csv", body)
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "failed" and status["imported_rows"] == 0
    assert [(e["line"], e["field"], e["reason"]) for e in status["errors"]] == [(3, "description", "不能包含控制字符。")]
    english = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers={**headers, "Accept-Language": "en"}).json
    assert [e["reason"] for e in english["errors"]] == ["Must not contain control characters."]


def test_a_bad_rows_reasons_are_read_in_chinese_and_in_english(client, session):
    """Stored as the import wrote them (English), shown in the reader's language."""
    _tree, a, _b, _clerk, headers = _setup(session)
    tomorrow = (local_date() + dt.timedelta(days=1)).isoformat()
    body = (HEADER + f"PRO-3,{tomorrow},{a.phone},入户宣讲,,,1\n"
            f"PRO-3,{D2},13000000000,无此手机号,,,1\n"
            f"PRO-3,{D2},{a.phone},入户宣讲,,,x\n").encode()
    job = _upload(client, headers, "reasons.csv", body)
    url = f"/api/v1/admin/imports/{job.json['id']}"
    chinese = client.get(url, headers=headers).json
    assert [(e["line"], e["field"], e["reason"]) for e in chinese["errors"]] == [
        (2, "work_date", "工作日期不能晚于今天。"),
        (3, "participant_phones", "所填手机号不是您辖区内的参与者。"),
        (4, "quantity", "须为 1 到 1000 之间的整数。")]
    english = client.get(url, headers={**headers, "Accept-Language": "en"}).json
    assert [e["reason"] for e in english["errors"]] == [
        "The work date cannot be in the future.", "A phone number here is not a participant in your area.",
        "A whole number from 1 to 1000."]


def test_an_xlsx_with_chinese_headers_is_read(client, session):
    _tree, a, _b, _clerk, headers = _setup(session)
    book = Workbook()
    sheet = book.active
    sheet.append(["指标代码", "工作日期", "参与者手机号", "工作描述", "数量"])
    sheet.append(["PRO-4", D5, a.phone, "就业培训志愿服务", 3])
    buffer = io.BytesIO()
    book.save(buffer)
    job = _upload(client, headers, "导出.xlsx", buffer.getvalue())
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "done" and status["imported_rows"] == 1


def test_wrong_file_types_are_refused_naming_the_field(client, session):
    _tree, _a, _b, _clerk, headers = _setup(session)
    response = _upload(client, headers, "list.txt", b"hello")
    assert response.status_code == 422 and "file" in response.json["error"]["details"]
    fake = _upload(client, headers, "fake.xlsx", b"not a zip")
    assert fake.status_code == 422
    missing = client.post("/api/v1/admin/imports", headers=headers, data={}, content_type="multipart/form-data")
    assert missing.status_code == 422 and "file" in missing.json["error"]["details"]


def test_odd_values_are_reported_not_crashed_on(client, session):
    _tree, a, _b, _clerk, headers = _setup(session)
    body = (HEADER.replace("\n", ",incident_ref\n") +
            f"PRO-3,{D2},{a.phone},入户宣讲,,,²,\n"
            f"PRO-3,{D2},{a.phone},入户宣讲,,,99999999999,\n"
            f"INF-1,{D2},{a.phone},线索,C2-01,yellow,1,{'X' * 300}\n").encode()
    job = _upload(client, headers, "odd.csv", body)
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "failed"
    assert sorted((e["line"], e["field"]) for e in status["errors"]) == [(2, "quantity"), (3, "quantity"),
                                                                           (4, "incident_ref")]


def test_the_api_and_the_import_key_one_incident_alike(client, session):
    """An incident number typed into the API with a trailing space and one imported in lower case
    are the same incident: stored as one key, the second flagged as a duplicate of the first."""
    _tree, a, b, _clerk, headers = _setup(session)
    typed = client.post("/api/v1/admin/contributions", headers=headers, json={
        "indicator_code": "INF-1", "work_date": D2, "description": "发现宅基地纠纷苗头",
        "members": [{"participant_id": a.id}], "conflict_item": "C2-01", "warning_colour": "yellow",
        "incident_ref": "WG-2026-0001 "})
    assert typed.status_code == 201 and typed.json["incident_key"] == "WG-2026-0001"
    body = (HEADER.replace("\n", ",incident_ref\n") +
            f"INF-1,{D2},{b.phone},同一纠纷的线索,C2-01,yellow,1,wg-2026-0001\n").encode()
    job = _upload(client, headers, "grid-export.csv", body)
    assert client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json["status"] == "done"
    imported = session.scalar(select(Contribution).where(Contribution.import_id == job.json["id"]))
    assert imported.incident_key == "WG-2026-0001" and imported.duplicate_of == [typed.json["id"]]


def test_the_same_file_uploaded_again_is_a_409_naming_the_earlier_import(client, session):
    """A clerk who uploads last week's export again by mistake gets a clear refusal, not every
    contribution twice; a file whose import failed (nothing of it imported) may be sent again."""
    _tree, a, _b, _clerk, headers = _setup(session)
    body = (HEADER + f"PRO-3,{D3},{a.phone},入户宣讲反家暴法,,,6\n").encode("utf-8-sig")
    first = _upload(client, headers, "grid-export.csv", body)
    assert first.status_code == 202
    again = _upload(client, headers, "grid-export (1).csv", body)
    assert again.status_code == 409 and again.json["error"]["code"] == "duplicate_import"
    assert again.json["error"]["details"]["import_id"] == [str(first.json["id"])]
    assert "grid-export.csv" in again.json["error"]["message"] and str(first.json["id"]) in again.json["error"]["message"]
    english = _upload(client, {**headers, "Accept-Language": "en"}, "copy.csv", body)
    assert english.json["error"]["message"].startswith("This file was already uploaded as import")
    assert session.scalar(select(func.count()).select_from(Contribution).where(
        Contribution.description == "入户宣讲反家暴法", Contribution.import_id.is_not(None))) == 1

    failing = (HEADER + f"PRO-3,{D3},13000000000,无此手机号,,,1\n").encode()
    failed = _upload(client, headers, "bad.csv", failing)
    assert client.get(f"/api/v1/admin/imports/{failed.json['id']}", headers=headers).json["status"] == "failed"
    assert _upload(client, headers, "bad.csv", failing).status_code == 202


def _zip(entries: dict[str, bytes | int]) -> bytes:
    """A zip whose int entries are that many spaces, written in chunks (a bomb costs no memory)."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, body in entries.items():
            with archive.open(name, "w", force_zip64=True) as member:
                if isinstance(body, int):
                    for _ in range(body // (1 << 20)):
                        member.write(b" " * (1 << 20))
                else:
                    member.write(body)
    return buffer.getvalue()


def test_an_xlsx_zip_bomb_is_refused_at_upload(client, session):
    """A few hundred kilobytes that inflate past the limit would exhaust the worker's memory."""
    _tree, _a, _b, _clerk, headers = _setup(session)
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>",
                 "xl/sharedStrings.xml": 160 << 20})
    assert len(bomb) < 1 << 20
    response = _upload(client, headers, "grid-export.xlsx", bomb)
    assert response.status_code == 422 and "file" in response.json["error"]["details"], response.json


def test_a_zip_that_is_not_a_workbook_is_refused_at_upload(client, session):
    _tree, _a, _b, _clerk, headers = _setup(session)
    docx = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<document/>"})
    response = _upload(client, headers, "report.xlsx", docx)
    assert response.status_code == 422 and "file" in response.json["error"]["details"], response.json


def test_a_file_that_is_not_csv_text_is_refused_at_upload(client, session):
    """A photo renamed .csv is refused with a reason, not queued to fail later."""
    _tree, _a, _b, _clerk, headers = _setup(session)
    png = _upload(client, headers, "photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert png.status_code == 422 and "CSV" in png.json["error"]["details"]["file"][0], png.json


def test_a_csv_saved_by_a_chinese_excel_is_read_as_gbk(client, session):
    """Excel on a Chinese Windows saves "CSV" in GBK: imported as written, names and all."""
    _tree, a, _b, _clerk, headers = _setup(session)
    body = (HEADER + f"PRO-3,{D3},{a.phone},入户宣讲反家暴法（村委会）,,,6\n").encode("gbk")
    job = _upload(client, headers, "gbk.csv", body)
    assert job.status_code == 202, job.json
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "done" and status["imported_rows"] == 1, status
    assert session.scalar(select(Contribution.description).where(Contribution.import_id == job.json["id"])) == \
        "入户宣讲反家暴法（村委会）"


def test_reading_stops_after_the_row_limit(tmp_path, monkeypatch):
    """Rows past the limit are never held in memory: the file is refused on the first one over."""
    from scoring.services import imports

    monkeypatch.setattr(imports, "MAX_ROWS", 3)
    path = tmp_path / "many.csv"
    path.write_text(HEADER + f"PRO-3,{D3},13900000001,宣讲,,,1\n" * 50, encoding="utf-8")
    assert len(imports.load_rows(path)) == 4


def test_phone_lists_typed_on_a_chinese_keyboard_are_read(client, session):
    """Full-width colons, semicolons and digits, and 、 between people, as a grid worker types them."""
    from scoring.models import ContributionMember

    _tree, a, b, _clerk, headers = _setup(session)
    wide_b = b.phone.translate({ord(d): ord(d) + 0xFEE0 for d in "0123456789"})  # 全角数字
    body = (HEADER + f"PRO-3,{D3},{a.phone}：2；{b.phone}：1,入户宣讲反家暴法,,,6\n"
            f"PRO-3,{D4},{a.phone}、{wide_b},广场宣讲,,,3\n").encode("utf-8-sig")
    job = _upload(client, headers, "grid-export.csv", body)
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=headers).json
    assert status["status"] == "done" and status["errors"] == [], status["errors"]
    works = session.scalars(select(Contribution).where(Contribution.import_id == job.json["id"])
                            .order_by(Contribution.work_date)).all()
    shares = [sorted(session.execute(select(ContributionMember.participant_id, ContributionMember.share)
                                     .where(ContributionMember.contribution_id == w.id)).all()) for w in works]
    assert shares == [sorted([(a.id, 2), (b.id, 1)]), sorted([(a.id, 1), (b.id, 1)])]


def test_an_imported_row_names_people_of_several_villages_all_in_the_importers_scope(client, session):
    """As for work recorded by hand: a county import may name people of two townships in one row
    (one joint case, one contribution in the first one's grid; only county staff verify it), while
    a township's import naming someone of another township is refused on `members`, nothing imported.
    It was: every row naming two villages refused, whoever imported it."""
    tree, a, b, _clerk, town_a = _setup(session)
    far = f.participant(session, tree.grid_b)
    county = f.bearer(session, "staff", f.staff(session, "clerk", tree.county).id)
    def rows(day: str) -> bytes:
        return (HEADER + f"PRO-3,{day},{a.phone};{b.phone},入户宣讲反家暴法,,,6\n"
                f"PRO-3,{day},{a.phone};{far.phone},两镇联合宣讲,,,6\n").encode("utf-8-sig")

    refused = _upload(client, town_a, "two-towns.csv", rows(D3))
    status = client.get(f"/api/v1/admin/imports/{refused.json['id']}", headers=town_a).json
    assert status["status"] == "failed" and status["imported_rows"] == 0
    assert [(e["line"], e["field"]) for e in status["errors"]] == [(3, "members")]
    job = _upload(client, county, "two-towns-county.csv", rows(D2))
    status = client.get(f"/api/v1/admin/imports/{job.json['id']}", headers=county).json
    assert status["status"] == "done" and status["imported_rows"] == 2, status["errors"]
    joint = session.scalar(select(Contribution).where(Contribution.import_id == job.json["id"],
                                                      Contribution.description == "两镇联合宣讲"))
    assert joint.region_path == a.region_path
    assert sorted(m.participant_id for m in joint.members) == sorted([a.id, far.id])
