"""Demo data: a county with townships, villages and grids, ~200 participants, staff of every
role, two partners with outlets and keys, and a few thousand postings, so that every page and
endpoint shows something real. Deterministic (seeded) so screenshots and docs stay true."""
from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import func, select

from identity import services as identity
from identity.models import Participant
from infra.auth import SYSTEM, Principal
from infra.config import Settings
from infra.db import db
from infra.security import hash_password
from ledger.services import accounts, corrections, integrity
from ledger.services.posting import Leg, PostingRequest, post_many

DEMO_STAFF_PASSWORD = "jieyou-demo-2026"
DEMO_PARTICIPANT_PASSWORD = "demo-2026"

TOWNSHIPS = [("城关镇", "Chengguan"), ("河西乡", "Hexi"), ("青山镇", "Qingshan"), ("柳林乡", "Liulin")]
VILLAGE_NAMES = ["东关村", "南街社区", "西岭村", "北坪村", "杨庄村", "李家湾村", "石桥村", "新华社区", "枣园村",
                 "前进村", "红旗社区", "王庄村"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = ["秀英", "桂英", "秀兰", "玉兰", "桂兰", "秀珍", "凤英", "玉珍", "丽娟", "海燕", "春梅", "红梅", "淑华",
         "晓燕", "丽华", "美玲", "雪梅", "建华", "慧敏", "静", "敏", "丽", "芳", "娟", "霞", "燕", "玲", "萍"]
AWARD_REASONS = [
    ("INF-1", "信息上报：矛盾隐患线索经核实（黄色预警）", 4),
    ("INF-1", "信息上报：矛盾隐患线索经核实（蓝色预警）", 2),
    ("INF-2", "预警信息经确认防止了矛盾升级", 10),
    ("INF-3", "上报独居老人安全隐患", 5),
    ("INF-4", "对已化解案件进行回访", 1),
    ("MED-1", "成功调解婚姻家庭纠纷（含八步工作法案卷）", 5),
    ("MED-2", "成功调解邻里宅基地纠纷（含案卷）", 3),
    ("MED-3", "联合专家库律师、心理咨询师化解复杂纠纷（共同调解分得）", 5),
    ("MED-4", "参加广场议事会", 1),
    ("MED-4", "参加云议事视频会", 1),
    ("PRO-1", "组织“法律进村”宣传活动", 4),
    ("PRO-2", "参加反家暴政策宣传活动", 1),
    ("PRO-3", "入户政策宣讲（按户计）", 3),
    ("PRO-4", "志愿服务：帮扶妇女就业培训（按小时计）", 2),
]
SPENDS = [("惠民超市购物抵扣", 10), ("惠民超市积分换购洗衣液", 15), ("惠民超市积分换购大米 5kg", 30)]


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
        issuance = accounts.system_account(session, accounts.ISSUANCE, settings.system_account_shards)
        accounts.system_account(session, accounts.ADJUSTMENT, settings.system_account_shards)
        partner_specs = [("HUIMIN", "惠民连锁超市", "Huimin Supermarkets", townships[0],
                          [("惠民超市城关店", townships[0]), ("惠民超市河西店", townships[1])]),
                         ("ZWFW", "县政务服务中心", "County Public Service Centre", county,
                          [("政务服务中心一楼综合窗口", county), ("青山镇便民服务站", townships[2])])]
        keys = []
        admin = staff["admin"]
        partner_accounts = []
        for code, name, name_en, region, outlets in partner_specs:
            partner = identity.create_partner(session, code=code, name=name, name_en=name_en, region=region)
            partner_accounts.append(accounts.partner_account(session, partner.id, settings.system_account_shards))
            for outlet_name, outlet_region in outlets:
                outlet = identity.create_outlet(session, partner, name=outlet_name, region=outlet_region)
                secret, _key = identity.issue_api_key(session, admin, outlet.id, "demo")
                keys.append((outlet_name, secret))
        person_accounts = [accounts.participant_account(session, p.id) for p in people]
        session.flush()

        now = dt.datetime.now(dt.timezone.utc)
        awards = []
        for account, person in zip(person_accounts, people):
            for n in range(rng.randint(8, 22)):
                code, reason, points = rng.choice(AWARD_REASONS)
                awards.append(PostingRequest(
                    kind="award", reason=f"{reason}（{code}）", idempotency_key=f"demo-award-{person.id}-{n}",
                    legs=[Leg(account.id, points), Leg(issuance.id, -points)], source_type="demo",
                    source_id=f"{person.id}-{n}", meta={"indicator": code},
                    effective_at=now - dt.timedelta(days=rng.randint(1, 360), minutes=rng.randint(0, 1440))))
        awards.sort(key=lambda r: r.effective_at or now)
        award_results = post_many(session, staff["approver"], awards, idem_scope="demo")

        balances = {a.id: accounts.balance(session, a.id) for a in person_accounts}
        spends = []
        for n, account in enumerate(person_accounts):
            for m in range(rng.randint(0, 3)):
                reason, cost = rng.choice(SPENDS)
                if balances[account.id] >= cost:
                    balances[account.id] -= cost
                    spends.append(PostingRequest(
                        kind="redemption", reason=reason, idempotency_key=f"demo-spend-{account.id}-{m}",
                        legs=[Leg(account.id, -cost), Leg(partner_accounts[0].id, cost)], source_type="demo",
                        effective_at=now - dt.timedelta(days=rng.randint(0, 30))))
        post_many(session, SYSTEM, spends, idem_scope="demo")

        # Corrections through the four-eyes flow: a few reversals and a large adjustment.
        clerk, approver2 = staff["clerk"], staff["approver2"]
        city_people = [p for p in people if p.region_path.startswith(townships[0].path)]
        reversed_count = 0
        for result, req in zip(award_results, awards):
            if reversed_count == 3:
                break
            owner = next(p for a, p in zip(person_accounts, people) if a.id == req.legs[0].account_id)
            if owner in city_people and balances[req.legs[0].account_id] >= req.legs[0].amount:
                request = corrections.request_reversal(session, clerk, posting_id=result.posting_id,
                                                       reason="复核发现案卷不完整，撤销该笔奖励")
                corrections.decide(session, approver2, request.id, approve=True, note="同意冲正",
                                   adjustment_shards=settings.system_account_shards)
                balances[req.legs[0].account_id] -= req.legs[0].amount
                reversed_count += 1
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
        integrity.record_digest(session, now.date())
        total_postings = len(awards) + len(spends) + reversed_count + 1

    lines = [
        f"demo county loaded: {len(grids)} grids, {participants} participants, {total_postings} postings",
        f"staff (password {DEMO_STAFF_PASSWORD}): " + ", ".join(u for u, *_ in staff_specs),
        f"participants (password {DEMO_PARTICIPANT_PASSWORD}): phones 13900000000 ... 139{participants - 1:08d}",
        f"an adjustment of 50 points awaits an approver: request {pending.request.id if pending.request else '-'}",
        "outlet API keys (shown once):",
        *[f"  {name}: {secret}" for name, secret in keys],
    ]
    return "\n".join(lines)
