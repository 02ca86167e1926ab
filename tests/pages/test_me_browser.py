"""The phone page end to end: a real headless Chromium against the app served on a free port, over
the test database with a participant who has points and scenarios (`tests.pages.browserkit`: skipped
without a browser, a failure under CI=true)."""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest

from redemption.services import codes
from tests import factories
from tests.pages.browserkit import chromium, csp_refusals, serving, visible_text

pytestmark = pytest.mark.browser

CODE_TTL_SECONDS = 5  # short, so the page's countdown reaches "expired" within the test


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium("412,915") as driver:
        yield driver


@pytest.fixture
def served(app, session, monkeypatch) -> Iterator[str]:
    """The app with short-lived codes."""
    monkeypatch.setitem(app.config, "SETTINGS",
                        dataclasses.replace(app.config["SETTINGS"], code_ttl_seconds=CODE_TTL_SECONDS))
    with serving(app) as url:
        yield url


@pytest.fixture
def volunteer(session):
    """A participant with 60 points over 21 awards (a statement longer than one page), grade A,
    one scenario she can use and one that costs more than she has."""
    tag = factories.unique("")
    tree = factories.region_tree(session)
    person = factories.participant(session, tree.grid_a)
    account = factories.account_of(session, person)
    for i in range(20):
        factories.award(session, account.id, 2, reason=f"信息上报第 {i + 1} 条")
    factories.award(session, account.id, 20, reason="调解成功：邻里宅基地纠纷")
    partner, outlets, _ = factories.shop(session, tree.town_a)
    factories.scenario(session, partner, outlets, name_zh=f"大米{tag}", name_en=f"Rice {tag}", points_cost=10)
    factories.scenario(session, partner, outlets, name_zh=f"家电{tag}", name_en=f"Fridge {tag}", points_cost=1000)
    session.flush()
    return {"phone": person.phone, "id": person.id, "usable": f"大米{tag}", "too_dear": f"家电{tag}"}


def test_a_volunteer_signs_in_sees_her_points_shows_a_code_and_signs_out(browser, served, volunteer, app, session):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver, wait = browser, WebDriverWait(browser, 8, poll_frequency=0.1)

    def shows(element_id: str, pattern: str) -> str:
        wait.until(lambda d: re.search(pattern, visible_text(d, element_id)),
                   message=f"#{element_id} never showed {pattern!r}")
        return visible_text(driver, element_id)

    def qr_shown() -> bool:
        return driver.execute_script(
            "var i = document.getElementById('code-qr');"
            "return i.offsetParent !== null && i.complete && i.naturalWidth > 0 && i.src.indexOf('blob:') === 0;")

    driver.get(served + "/me")  # the browser asks for Chinese
    assert "我的积分" in driver.find_element(By.TAG_NAME, "h1").text
    shows("signin", "登录")

    # A wrong password: the API's words, in Chinese.
    driver.find_element(By.ID, "phone").send_keys(volunteer["phone"])
    driver.find_element(By.ID, "password").send_keys("not-her-password")
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    assert shows("signin-error", "错误") == "手机号或密码错误。"

    driver.find_element(By.ID, "password").clear()
    driver.find_element(By.ID, "password").send_keys("pass-word-1")
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    assert shows("balance", r"^\d+$") == "60"
    assert shows("grade", "级") == "A 级（合格）"
    assert visible_text(driver, "grade-points") == "近 12 个月获得积分：60"
    assert shows("grade-next", "90") == "再得 90 分，可升为 AA 级（良好）。"

    # The statement, newest first, a page at a time.
    assert shows("statement-list", "调解成功").startswith("积分奖励\n+20\n调解成功：邻里宅基地纠纷\n")
    shows("more", "加载更多")
    assert len(driver.find_elements(By.CSS_SELECTOR, "#statement-list > li")) == 20
    driver.find_element(By.ID, "more").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#statement-list > li")) == 21)
    assert "信息上报第 1 条" in visible_text(driver, "statement-list") and not visible_text(driver, "more")

    # Where she can use her points now, and why not elsewhere (in the API's words).
    usable = shows("usable-list", volunteer["usable"])
    assert volunteer["too_dear"] not in usable
    assert "可在：门店0、门店1" in usable  # where: the partner's open outlets
    refused = driver.find_element(By.ID, "unusable-list").get_attribute("textContent")
    assert f"{volunteer['too_dear']}1000 分积分不足 (需要 1000，现有 60)" in refused

    # Show my code: eight digits in two groups, the QR image, a countdown; then it expires.
    driver.find_element(By.ID, "show-code").click()
    digits = shows("code-digits", r"^\d{4} \d{4}$")
    wait.until(lambda d: qr_shown(), message="the QR image never showed")
    assert shows("code-timer", "还可使用 0:0[1-5]")
    found = codes.find(session, digits.replace(" ", ""), secret_key=app.config["SETTINGS"].secret_key)
    assert found.participant_id == volunteer["id"]  # a live code of hers, as the counter will find it
    # No address the page asked for holds the code (an access log keeps every one).
    asked = driver.execute_script("return performance.getEntriesByType('resource').map(function (e) {"
                                  " return e.name; })")
    assert any("/api/v1/me/codes" in url for url in asked)
    assert [url for url in asked if digits.replace(" ", "") in url] == []
    assert shows("code-expired", "过期") == "此码已过期，请换一个新码。"
    assert not visible_text(driver, "code-digits") and not qr_shown()
    driver.find_element(By.ID, "new-code").click()
    assert re.fullmatch(r"\d{4} \d{4}", shows("code-digits", r"^\d{4} \d{4}$"))
    wait.until(lambda d: qr_shown(), message="the new QR image never showed")
    assert not visible_text(driver, "code-expired")

    # Sign out: the API revokes the token, the page forgets it and what it showed.
    token = driver.execute_script("return sessionStorage.getItem('jieyou.participant.token')")
    assert token
    driver.find_element(By.ID, "signout").click()
    assert shows("notice", "退出") == "已退出登录。"
    assert driver.execute_script("return sessionStorage.getItem('jieyou.participant.token')") is None
    assert driver.find_element(By.ID, "balance").get_attribute("textContent") == ""
    refused_token = app.test_client().get("/api/v1/me/balance", headers={"Authorization": f"Bearer {token}"})
    assert refused_token.status_code == 401

    # A token the API no longer honours brings back the sign-in form, saying why.
    driver.execute_script("sessionStorage.setItem('jieyou.participant.token', 'expired-token')")
    driver.refresh()
    assert shows("signin-error", "登录") == "请先登录。"

    # English by the page's switch.
    driver.find_element(By.CSS_SELECTOR, "a.lang").click()
    wait.until(lambda d: "My points" in d.find_element(By.TAG_NAME, "h1").text)
    assert driver.current_url.endswith("/me?lang=en")
    assert driver.find_element(By.CSS_SELECTOR, "#signin-form button").text == "Sign in"
    driver.find_element(By.ID, "phone").send_keys(volunteer["phone"])
    driver.find_element(By.ID, "password").send_keys("not-her-password")
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    assert shows("signin-error", "password") == "Wrong phone number or password."  # the API, in English

    assert csp_refusals(driver) == []
