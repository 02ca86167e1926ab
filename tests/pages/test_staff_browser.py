"""The staff console end to end: a real headless Chromium against the app served on a free port,
over the test database (`tests.pages.browserkit`: skipped without a browser, a failure under
CI=true). A verifier verifies one contribution and rejects another; an approver decides a
correction a clerk asked for; the database shows what each did."""
from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from identity import services as identity
from identity.models import StaffUser
from ledger.models import ApprovalRequest
from ledger.services import accounts, corrections
from scoring.models import Contribution
from scoring.services import evidence
from tests import factories
from tests.pages.browserkit import chromium, csp_refusals, serving, visible_text

pytestmark = pytest.mark.browser

PASSWORD = "long-enough-password"
# A 1×1 PNG: evidence the console shows as an image.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium("1280,1000") as driver:
        yield driver


@pytest.fixture
def served(app, session) -> Iterator[str]:
    with serving(app) as url:
        yield url


def _staff(session, role: str, scope) -> tuple[str, Any]:
    username = factories.unique(f"{role}-")
    user = identity.create_staff(session, username=username, display_name=f"{role}测试员", role=role, scope=scope,
                                 password=PASSWORD)
    return username, identity.staff_principal(user)


@pytest.fixture
def desk(app, session):
    """A township with a clerk, a verifier and an approver; two contributions of one participant
    (the second flagged as a possible duplicate of the first), a photo attached to the first, and
    an adjustment of 50 points the clerk asked for (over the threshold: it waits for an approver)."""
    tree = factories.region_tree(session)
    clerk_name, clerk = _staff(session, "clerk", tree.town_a)
    verifier_name, verifier = _staff(session, "verifier", tree.town_a)
    approver_name, approver = _staff(session, "approver", tree.town_a)
    person = factories.participant(session, tree.grid_a, name="王秀兰")
    first = factories.contribution(session, clerk, person, description="发现邻里宅基地纠纷苗头并及时上报")
    second = factories.contribution(session, clerk, person, description="同一宅基地纠纷再次上报，疑似重复")
    evidence.attach(session, clerk, first.id, "现场照片.png", PNG,
                    Path(app.config["SETTINGS"].instance_dir) / "evidence")
    outcome = corrections.request_adjustment(session, clerk, participant_id=person.id, amount=50,
                                             reason="补记三月调解积分", threshold=20,
                                             adjustment_shards=factories.SHARDS)
    account = factories.account_of(session, person)
    award = factories.award(session, account.id, 6, reason="信息上报：矛盾隐患线索经核实")
    reversal = corrections.request_reversal(session, clerk, posting_id=award.posting_id, reason="同一线索重复奖励")
    session.flush()
    return {"clerk": clerk, "verifier": verifier_name, "verifier_id": verifier.id, "approver": approver_name,
            "approver_id": approver.id, "person": person, "first": first.id, "second": second.id,
            "request": outcome.request.id, "reversal": reversal.id, "award": award.posting_id,
            "account_code": account.code, "scope_name": tree.town_a.name, "tree": tree}


def test_a_verifier_decides_two_contributions_and_an_approver_a_clerks_correction(browser, served, desk, session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 8, poll_frequency=0.1)

    def shows(element_id: str, pattern: str) -> str:
        wait.until(lambda d: re.search(pattern, visible_text(d, element_id)),
                   message=f"#{element_id} never showed {pattern!r}")
        return visible_text(driver, element_id)

    def sign_in(username: str) -> None:
        driver.find_element(By.ID, "username").clear()
        driver.find_element(By.ID, "username").send_keys(username)
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()

    def click(selector: str) -> None:
        driver.find_element(By.CSS_SELECTOR, selector).click()

    def refetch(model: type, id_: int) -> Any:
        session.expire_all()
        return session.get(model, id_)

    driver.get(served + "/staff")  # the browser asks for Chinese
    assert "工作人员控制台" in driver.find_element(By.TAG_NAME, "h1").text
    sign_in(desk["verifier"])
    assert shows("who-role", "审核员") == "审核员"
    assert visible_text(driver, "who-label") == "verifier测试员"  # the display name, not the sign-in name
    assert visible_text(driver, "who-scope") == desk["scope_name"]
    assert driver.find_element(By.CSS_SELECTOR, "#tabs [data-section='queue']").is_displayed()
    assert not driver.find_element(By.CSS_SELECTOR, "#tabs [data-section='audit']").is_displayed()

    # The queue, a row for each; open the first: the member by name, the photo fetched as a blob.
    first, second = desk["first"], desk["second"]
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#queue-rows [data-open='{second}']"))
    click(f"#queue-rows [data-open='{first}']")
    assert shows("detail-title", f"贡献 {first} 号").startswith(f"贡献 {first} 号 · INF-1")
    assert shows("detail-members", "王秀兰").startswith(f"王秀兰 (#{desk['person'].id}, ")
    wait.until(lambda d: d.execute_script(
        "var i = document.querySelector('#detail-evidence img');"
        "return !!i && i.complete && i.naturalWidth > 0 && i.src.indexOf('blob:') === 0;"),
        message="the photo never showed")
    assert "现场照片.png" in visible_text(driver, "detail-evidence")

    # A note of blanks: the API's message and its words on the field, beside the form.
    driver.find_element(By.ID, "verify-note").send_keys("   ")
    click("#verify-form button")
    error = shows("verify-error", "备注")
    assert "备注:" in error and "退回" not in error
    assert driver.find_element(By.ID, "verify-note").get_attribute("aria-invalid") == "true"
    driver.find_element(By.ID, "verify-note").clear()
    driver.find_element(By.ID, "verify-note").send_keys("现场核实无误")
    click("#verify-form button")
    assert re.match(rf"贡献 {first} 号已审核通过：拟奖励 \d+ 分，公示至 ", shows("detail-result", "审核通过"))
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#queue-rows [data-open='{first}']"))
    assert not driver.find_element(By.ID, "decide").is_displayed()  # decided: no second decision offered
    verified = refetch(Contribution, first)
    assert verified.state == "in_notice" and verified.verified_by == desk["verifier_id"]

    # The second, flagged as a possible duplicate: rejected with a reason (none given: said so first).
    click(f"#queue-rows [data-open='{second}']")
    assert shows("detail-duplicate", "重复") == f"可能与 #{first} 重复"
    click("#reject-form button")
    assert shows("reject-error", "理由") == "请填写退回理由。"
    driver.find_element(By.ID, "reject-reason").send_keys("与前一条为同一事件")
    click("#reject-form button")
    assert shows("detail-result", "退回") == f"贡献 {second} 号已退回。"
    rejected = refetch(Contribution, second)
    assert rejected.state == "rejected" and rejected.decision_reason == "与前一条为同一事件"
    shows("queue-empty", "没有待审核")

    # The approver: the clerk's correction, approved with a note.
    click("#signout")
    assert shows("notice", "退出") == "已退出登录。"
    assert driver.execute_script("return sessionStorage.getItem('jieyou.staff.token')") is None
    sign_in(desk["approver"])
    assert shows("who-role", "审批员") == "审批员"
    # A township approver: the API refuses whole-ledger checks outside a county scope, so no such tab.
    assert not driver.find_element(By.CSS_SELECTOR, "#tabs [data-section='ledger']").is_displayed()
    click("#tabs [data-section='approvals']")
    item = f"#approvals-list [data-id='{desk['request']}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, item) and d.find_element(By.CSS_SELECTOR, item).is_displayed())
    text = driver.find_element(By.CSS_SELECTOR, item).text
    assert "人工调整 +50 分" in text and "补记三月调解积分" in text and "待审批" in text
    # Whose points and who asked, in words: the participant by name, the clerk by display name.
    assert f"王秀兰（账户 {desk['account_code']}） 人工调整 +50 分" in text
    assert re.search(r"clerk测试员 于 \S+ \S+ 提出", text)
    # A reversal says what it undoes: the original's kind, the points it gave whom, and why.
    reversal = driver.find_element(By.CSS_SELECTOR, f"#approvals-list [data-id='{desk['reversal']}']").text
    assert f"冲正记账凭证 {desk['award']} 号" in reversal and "同一线索重复奖励" in reversal
    assert re.search(rf"冲正的原记账：\S+ \S+ 积分奖励，王秀兰（账户 {re.escape(desk['account_code'])}） \+6 分；"
                     r"原事由：信息上报：矛盾隐患线索经核实", reversal), reversal
    driver.find_element(By.CSS_SELECTOR, f"{item} .note").send_keys("已核对调解记录")
    click(f"{item} .approve")
    wait.until(lambda d: "已批准" in d.find_element(By.CSS_SELECTOR, f"{item} .ok").text)
    assert driver.find_element(By.CSS_SELECTOR, f"{item} .ok").text == f"申请 {desk['request']} 号已批准。"
    decided = refetch(ApprovalRequest, desk["request"])
    assert decided.status == "approved" and decided.decided_by == desk["approver_id"]
    assert decided.decision_note == "已核对调解记录" and decided.result_posting_id is not None
    assert accounts.balance(session, factories.account_of(session, desk["person"]).id) == 6 + 50

    assert csp_refusals(driver) == []
    assert session.get(StaffUser, desk["approver_id"]).username == desk["approver"]


def test_evidence_shows_as_a_photo_or_downloads_and_never_opens_as_a_page(browser, served, desk, session, app):
    """A blob: URL is of the console's origin: only a photo keeps its type (an <img> runs nothing);
    a PDF, or anything the API might send as HTML or SVG, becomes an opaque download."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 8, poll_frequency=0.1)
    evidence.attach(session, desk["clerk"], desk["first"], "调解协议.pdf", b"%PDF-1.4\n<script>alert(1)</script>\n",
                    Path(app.config["SETTINGS"].instance_dir) / "evidence")
    session.flush()
    driver.get(served + "/staff")
    driver.find_element(By.ID, "username").send_keys(desk["verifier"])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    opener = f"#queue-rows [data-open='{desk['first']}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, opener))
    driver.execute_script(  # what each blob: URL was made of
        "window.blobTypes = []; var make = URL.createObjectURL.bind(URL);"
        "URL.createObjectURL = function (blob) { window.blobTypes.push(blob.type); return make(blob); };")
    driver.find_element(By.CSS_SELECTOR, opener).click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-evidence a[download]")
               and d.find_elements(By.CSS_SELECTOR, "#detail-evidence img"), message="the files never showed")
    link = driver.find_element(By.CSS_SELECTOR, "#detail-evidence a[download]")
    assert link.get_attribute("download") == "调解协议.pdf" and link.text == "打开 调解协议.pdf"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#detail-evidence img")) == 1  # the photo only
    assert sorted(driver.execute_script("return window.blobTypes")) == ["application/octet-stream", "image/png"]
    # Whatever else comes back (here the console's own HTML) is not kept as a page either.
    html = driver.execute_async_script(
        "var done = arguments[arguments.length - 1]; window.blobTypes = [];"
        "JieyouStaff.fetchBlob('/staff').then(function () { done(window.blobTypes); }, function (e) { done(String(e)); });")
    assert html == ["application/octet-stream"]
    assert csp_refusals(driver) == []


def test_joint_work_naming_people_outside_the_verifiers_area_is_shown_but_not_offered(browser, served, desk,
                                                                                      session):
    """Regression: a town-A verifier was offered verify, reject and the bulk box for joint work
    naming a town-B member, which the API refuses them (404). It is listed with a note saying who
    decides it; opening it shows the note and no decision forms; their own work is offered as ever."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from scoring.services.submissions import submit

    driver, wait = browser, WebDriverWait(browser, 8, poll_frequency=0.1)
    tree = desk["tree"]
    county_clerk = _staff(session, "clerk", tree.county)[1]
    far = factories.participant(session, tree.grid_b, name="李律师")  # of town B: out of the verifier's area
    joint = submit(session, county_clerk, factories.submission("INF-1", [(desk["person"].id, 1), (far.id, 1)]))
    session.flush()
    assert joint.region_path.startswith(desk["person"].region_path)

    driver.get(served + "/staff")
    driver.find_element(By.ID, "username").send_keys(desk["verifier"])
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    row = f"#queue-rows tr[data-id='{joint.id}']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    note = "其中有您辖区以外的人员，由辖区覆盖全部人员的工作人员审核。"
    assert note in driver.find_element(By.CSS_SELECTOR, row).text
    assert not driver.find_elements(By.CSS_SELECTOR, f"{row} input[type=checkbox]")  # not for bulk verify
    own = f"#queue-rows tr[data-id='{desk['first']}']"
    assert driver.find_elements(By.CSS_SELECTOR, f"{own} input[type=checkbox]")
    assert note not in driver.find_element(By.CSS_SELECTOR, own).text

    driver.find_element(By.CSS_SELECTOR, f"{row} [data-open='{joint.id}']").click()
    wait.until(lambda d: visible_text(d, "detail-reach") == note, message="the note never showed")
    assert not driver.find_element(By.ID, "decide").is_displayed()
    driver.find_element(By.CSS_SELECTOR, f"{own} [data-open='{desk['first']}']").click()
    wait.until(lambda d: d.find_element(By.ID, "decide").is_displayed(), message="own work not offered")
    assert visible_text(driver, "detail-reach") == ""
    assert csp_refusals(driver) == []
