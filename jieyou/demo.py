"""Demo data: a county with townships, villages and grids, ~200 participants, staff of every
role, two partners with outlets and keys, and a few thousand postings, so that every page and
endpoint shows something real. Deterministic (seeded) so screenshots and docs stay true."""
from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select

from identity import services as identity
from identity.models import Outlet, Participant
from identity.services import participant_principal
from infra.auth import Principal
from infra.clock import local_date, local_midnight
from infra.config import Settings
from infra.db import db
from infra.security import hash_password
from ledger.models import Posting
from ledger.services import accounts, corrections, integrity
from redemption.services import catalogue, codes, counter
from redemption.services.config import counter_config
from scoring.models import Contribution
from scoring.services import awards, notices, submissions, workflow

DEMO_STAFF_PASSWORD = "jieyou-demo-2026"
DEMO_PARTICIPANT_PASSWORD = "demo-2026"

TOWNSHIPS = [("城关镇", "Chengguan"), ("河西乡", "Hexi"), ("青山镇", "Qingshan"), ("柳林乡", "Liulin")]
VILLAGE_NAMES = ["东关村", "南街社区", "西岭村", "北坪村", "杨庄村", "李家湾村", "石桥村", "新华社区", "枣园村",
                 "前进村", "红旗社区", "王庄村"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = ["秀英", "桂英", "秀兰", "玉兰", "桂兰", "秀珍", "凤英", "玉珍", "丽娟", "海燕", "春梅", "红梅", "淑华",
         "晓燕", "丽华", "美玲", "雪梅", "建华", "慧敏", "静", "敏", "丽", "芳", "娟", "霞", "燕", "玲", "萍"]


COLOUR_WEIGHTS = (["blue"] * 8) + (["yellow"] * 7) + (["orange"] * 4) + ["red"]
INDICATOR_WEIGHTS = (["INF-1"] * 6 + ["INF-2"] + ["INF-3"] * 2 + ["INF-4"] * 3 + ["MED-1"] * 3 + ["MED-2"] * 3
                     + ["MED-3"] + ["MED-4"] * 4 + ["PRO-1"] + ["PRO-2"] * 3 + ["PRO-3"] * 2 + ["PRO-4"] * 2)
DESCRIPTIONS = {
    "INF-1": ["发现两户因宅基地边界争执，及时上报", "上报邻里因排水沟堵塞引发的口角", "上报一户家庭因赡养问题争吵"],
    "INF-2": ["提前预警一起家庭矛盾，经介入未升级", "预警土地流转纠纷，村调委会及时化解"],
    "INF-3": ["上报独居老人冬季取暖安全隐患", "发现一名妇女有遭受家暴风险，及时报告", "上报一名青年情绪异常，疑有心理危机"],
    "INF-4": ["回访已调解的婆媳矛盾家庭，关系和睦", "回访宅基地纠纷双方，协议履行良好"],
    "MED-1": ["调解一对夫妻因外出务工引发的婚姻矛盾", "调解子女赡养老人费用分担纠纷"],
    "MED-2": ["调解邻里因院墙滴水引发的纠纷", "调解两户因通行道路产生的争执"],
    "MED-3": ["联合律师、心理咨询师化解一起家暴引发的离婚纠纷", "联合银发调解队化解多户山林权属纠纷"],
    "MED-4": ["参加广场议事会", "参加“云议事”视频会"],
    "PRO-1": ["组织“法律进村”反家暴宣传活动", "组织民法典婚姻家庭编宣讲"],
    "PRO-2": ["参加妇女权益保障法宣传", "参加防范电信诈骗宣传"],
    "PRO-3": ["入户宣讲反家暴法和人身安全保护令"],
    "PRO-4": ["帮扶留守妇女参加编织技能培训", "关爱探访独居老人，帮助打扫卫生"],
}
ITEMS = {"INF-1": ["C1-01", "C1-03", "C1-04", "C2-01", "C2-02", "C2-03", "C4-01", "C5-02"],
         "INF-2": ["C1-01", "C2-01", "C4-01", "C3-01"], "INF-3": ["C1-02", "C6-01", "C6-03"]}
CASE = {"look": "到现场察看矛盾情况", "listen": "分别听取双方诉求", "ask": "询问邻里和亲属了解原委",
        "help": "帮助双方梳理可行方案", "report": "向村妇联主席报告进展", "analyse": "分析矛盾根源在于沟通不畅",
        "explain": "讲解相关法律和政策", "record": "签订调解协议并归档"}


def demo_days(now: dt.datetime, months: int = 11) -> tuple[dt.date, list[dt.date]]:
    """The county's today at `now` and the last days of the `months` months before its month,
    oldest first. Local, not UTC: from 00:00 to 08:00 in Shanghai UTC's day (and, on the 1st,
    month) is the one before, and work dated "today" would fall in the wrong month."""
    today = local_date(now)
    ends = [today.replace(day=1) - dt.timedelta(days=1)]
    while len(ends) < months:
        ends.append(ends[-1].replace(day=1) - dt.timedelta(days=1))
    return today, ends[::-1]


def month_evening(day: dt.date) -> dt.datetime:
    """18:00 in the county on `day`: a month's work is verified on its own last evening, locally
    (18:00 UTC would be 02:00 on the next month's first day in Shanghai)."""
    return (local_midnight(day) + dt.timedelta(hours=18)).astimezone(dt.timezone.utc)


def _scoring_history(session, rng, people, staff, now):  # type: ignore[no-untyped-def]
    """A year of contributions through the real workflow: reported by the women themselves,
    verified by the county approver, publicly noticed, awarded by the award job; the current
    month leaves work in every state for the staff queue."""
    verifier = staff["approver"]
    by_village: dict[str, list] = {}
    for person in people:
        by_village.setdefault(person.region_path.rsplit("/", 2)[0], []).append(person)
    today, month_ends = demo_days(now)
    # Some women are far more active than others: that is what makes grades differ.
    activity = {p.id: rng.choice(([6, 3, 1, 0, 0, 0, 0],) * 3 + ([2, 4, 3, 1, 0, 0, 0],) * 4
                                 + ([0, 1, 2, 3, 2, 1, 1],) * 2 + ([0, 0, 1, 2, 3, 3, 3],))
                for p in people}

    def make(person, work_date, n):  # type: ignore[no-untyped-def]
        code = rng.choice(INDICATOR_WEIGHTS)
        members = [(person.id, 1)]
        if code == "MED-3":
            mates = [p for p in by_village[person.region_path.rsplit("/", 2)[0]] if p.id != person.id]
            members += [(p.id, 1) for p in rng.sample(mates, min(2, len(mates)))]
        sub = submissions.Submission(
            indicator_code=code, work_date=work_date, description=rng.choice(DESCRIPTIONS[code]), members=members,
            conflict_item=rng.choice(ITEMS[code]) if code in ITEMS else None,
            warning_colour=rng.choice(COLOUR_WEIGHTS) if code in ("INF-1", "INF-2") else None,
            case_record=dict(CASE) if code.startswith("MED") and code != "MED-4" else {},
            quantity=rng.randint(2, 12) if code in ("PRO-3", "PRO-4") else 1,
            incident_ref=f"WG-{work_date:%Y%m}-{person.id:04d}-{n}" if code == "INF-1" else None)
        # Reported on the day it was done: a year back is far outside today's submission window.
        return submissions.submit(session, participant_principal(person), sub, today=work_date)

    for month_end in month_ends:
        batch = [make(person, month_end.replace(day=rng.randint(1, month_end.day)), n).id
                 for person in people for n in range(rng.choices(range(7), weights=activity[person.id])[0])]
        verified_at = month_evening(month_end)
        print(f"  {month_end:%Y-%m}: {len(batch)} contributions reported, verified, noticed and awarded", flush=True)
        workflow.verify_many(session, verifier, batch, now=verified_at)
        while awards.award_due(session, now=verified_at + dt.timedelta(days=7), limit=2000):
            pass
        session.flush()
        session.expunge_all()  # keep the unit of work small: a month at a time

    # This month: a queue to verify, notices running (one with an objection), a rejection.
    recent = [make(person, today - dt.timedelta(days=rng.randint(0, 6)), 9) for person in people[:60]]
    on_notice = [c.id for c in recent[:25]]
    workflow.verify_many(session, verifier, on_notice, now=now - dt.timedelta(days=1))
    first = session.get(Contribution, on_notice[0])
    neighbours = [p for p in by_village[first.region_path.rsplit("/", 2)[0]]
                  if p.id not in {m.participant_id for m in first.members}]
    notices.lodge(session, participant_principal(neighbours[0]), first.id, "据我了解，该纠纷双方仍在争执，并未化解")
    workflow.reject(session, verifier, recent[30].id, "缺少现场照片等佐证，请补充后重新提交")
    awarded = session.scalars(select(Contribution).where(Contribution.state == "awarded",
                                                         Contribution.posting_id.is_not(None))
                              .order_by(Contribution.id).limit(2)).all()
    for c in awarded:
        workflow.revoke(session, staff["approver2"] if c.region_path.startswith(staff["approver2"].scope_path)
                        else verifier, c.id, "复核发现案卷不完整")
    return dict(session.execute(select(Contribution.state, func.count()).group_by(Contribution.state)).all())


def _redemption_history(session, rng, people):  # type: ignore[no-untyped-def]
    """Redemptions made the real way: a participant's one-time code, typed at an outlet."""
    cfg = counter_config()
    outlets = session.scalars(select(Outlet).order_by(Outlet.id)).all()
    made = {"redemptions": 0, "refunds": 0, "holds": 0}
    for n, person in enumerate(rng.sample(people, 140)):
        who = participant_principal(person)
        outlet = rng.choice(outlets[:8])
        desk = Principal(kind="outlet", id=outlet.id, label=f"outlet:{outlet.id}", partner_id=outlet.partner_id)
        digits, _code = codes.issue(session, who, secret_key=cfg.secret_key, ttl=dt.timedelta(minutes=5))
        usable = [v.scenario for v in counter.lookup(session, desk, digits, cfg).verdicts if v.eligible]
        if not usable:
            continue
        scenario = rng.choice(usable)
        if n % 25 == 7 and scenario.kind == "spend":
            counter.hold(session, desk, digits=digits, scenario_id=scenario.id, points=None,
                         idem_key=f"demo-hold-{n:04d}", cfg=cfg)
            made["holds"] += 1
            continue
        redemption, _ = counter.redeem(session, desk, digits=digits, scenario_id=scenario.id,
                                       idem_key=f"demo-redeem-{n:04d}", cfg=cfg)
        made["redemptions"] += 1
        if n % 20 == 3 and redemption.kind == "spend":
            counter.refund(session, desk, redemption.id, points=None, reason="收银员误操作，全额退回",
                           idem_key=f"demo-refund-{n:04d}", cfg=cfg)
            made["refunds"] += 1
    return made


def load_demo(settings: Settings, *, participants: int = 200) -> str:
    with db.unit_of_work() as session:
        if session.scalar(select(func.count()).select_from(Participant)):
            return "demo data already present; nothing loaded"
    rng = random.Random(2024)
    with db.unit_of_work() as session:
        county = identity.create_region(session, level="county", code="JY", name="解忧县", name_en="Jieyou County")
        grids, townships = [], []
        for t_index, (t_name, t_en) in enumerate(TOWNSHIPS, start=1):
            town = identity.create_region(session, level="township", code=f"JY{t_index:02d}", name=t_name,
                                          name_en=t_en, parent=county)
            townships.append(town)
            for v_index in range(3):
                v_name = VILLAGE_NAMES[(t_index - 1) * 3 + v_index]
                village = identity.create_region(session, level="village", code=f"{town.code}{v_index + 1:02d}",
                                                 name=v_name, parent=town)
                for g_index in range(2):
                    grids.append(identity.create_region(session, level="grid", code=f"{village.code}{g_index + 1:02d}",
                                                        name=f"{v_name}第{g_index + 1}网格", parent=village))
        staff_specs = [("admin", "管理员", "admin", county), ("auditor", "审计员", "auditor", county),
                       ("approver", "县妇联审批人", "approver", county), ("verifier", "城关镇核验员", "verifier", townships[0]),
                       ("clerk", "城关镇录入员", "clerk", townships[0]), ("approver2", "城关镇审批人", "approver", townships[0]),
                       ("clerk2", "河西乡录入员", "clerk", townships[1])]
        staff = {}
        for username, display, role, scope in staff_specs:
            user = identity.create_staff(session, username=username, display_name=display, role=role, scope=scope,
                                         password=DEMO_STAFF_PASSWORD)
            staff[username] = identity.staff_principal(user)
        participant_hash = hash_password(DEMO_PARTICIPANT_PASSWORD)
        people = []
        for i in range(participants):
            grid = grids[i % len(grids)]
            person = identity.create_participant(session, name=rng.choice(SURNAMES) + rng.choice(GIVEN),
                                                 phone=f"139{i:08d}", region=grid,
                                                 role=rng.choice(["grid_leader"] * 3 + ["part_time_mediator",
                                                                                        "family_representative"]))
            person.password_hash = participant_hash
            people.append(person)
        accounts.system_account(session, accounts.ISSUANCE, settings.system_account_shards)
        accounts.system_account(session, accounts.ADJUSTMENT, settings.system_account_shards)
        catalogue.seed(session, settings.system_account_shards)
        keys = []
        admin = staff["admin"]
        for outlet in session.scalars(select(Outlet).order_by(Outlet.id).limit(4)):
            secret, _key = identity.issue_api_key(session, admin, outlet.id, "demo",
                                                  idempotency_key=f"demo-key-outlet-{outlet.id}")
            keys.append((outlet.name, secret))
        for person in people:  # every participant has an account from the start
            accounts.participant_account(session, person.id)
        session.flush()

        now = dt.datetime.now(dt.timezone.utc)
        counts = _scoring_history(session, rng, people, staff, now)

        redeemed = _redemption_history(session, rng, people)

        # Corrections with four eyes: a redemption reversed on request, adjustments small and large.
        clerk, approver2 = staff["clerk"], staff["approver2"]
        city_people = [p for p in people if p.region_path.startswith(townships[0].path)]
        manual = corrections.request_adjustment(
            session, clerk, participant_id=city_people[2].id, amount=-8, reason="重复录入的议事会积分，予以扣回",
            threshold=settings.adjustment_approval_threshold, adjustment_shards=settings.system_account_shards)
        if manual.posting_id is not None:
            request = corrections.request_reversal(session, clerk, posting_id=manual.posting_id,
                                                   reason="经核实并非重复，撤销扣回")
            corrections.decide(session, approver2, request.id, approve=True, note="同意冲正",
                               adjustment_shards=settings.system_account_shards)
        pending = corrections.request_adjustment(
            session, clerk, participant_id=city_people[0].id, amount=50, reason="补录2024年第四季度线下调解积分",
            threshold=settings.adjustment_approval_threshold, adjustment_shards=settings.system_account_shards)
        corrections.request_adjustment(
            session, clerk, participant_id=city_people[1].id, amount=5, reason="补录漏记的议事会参与积分",
            threshold=settings.adjustment_approval_threshold, adjustment_shards=settings.system_account_shards)
        identity.audit(session, Principal(kind="system", id=0, label="demo-loader"), "demo.load",
                       details={"participants": participants})
        verify = integrity.verify_chains(session)
        integrity.record_check(session, verify)
        integrity.record_check(session, integrity.reconcile(session))
        integrity.record_digest(session, local_date(now), verify)  # the label the nightly job gives today
        total_postings = session.scalar(select(func.count()).select_from(Posting))

    lines = [
        f"demo county loaded: {len(grids)} grids, {participants} participants, {total_postings} postings",
        "contributions: " + ", ".join(f"{state} {n}" for state, n in sorted(counts.items())),
        "at the counter: " + ", ".join(f"{k} {v}" for k, v in redeemed.items()),
        f"staff (password {DEMO_STAFF_PASSWORD}): " + ", ".join(u for u, *_ in staff_specs),
        f"participants (password {DEMO_PARTICIPANT_PASSWORD}): phones 13900000000 ... 139{participants - 1:08d}",
        f"an adjustment of 50 points awaits an approver: request {pending.request.id if pending.request else '-'}",
        "outlet API keys (shown once):",
        *[f"  {name}: {secret}" for name, secret in keys],
    ]
    return "\n".join(lines)
