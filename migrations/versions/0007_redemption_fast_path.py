"""Redemption: the counter's redeem as one PL/pgSQL function on PostgreSQL.

Why: a redemption was four statements (API key, claim, posting, record) plus BEGIN and COMMIT on
a machine whose two cores the web workers share with PostgreSQL; each round trip costs client
and server CPU, and the posting and the record cost the client as much Python again (building
the posting request, an ORM insert). `redemption_redeem` takes the same steps, in the same order
and with the same guards, in one call:

1. the outlet's idempotency key (`replay`: the caller answers with the original);
2. the scenario, only if honoured at this outlet (`no_scenario`: nothing claimed);
3. the code, marked used only if live and unused (`code_invalid`: unknown, expired, used, or lost a
   race; the row lock makes a concurrent claimer wait, then see it used);
4. then, only when nothing needs Python (the scenario active and in its dates, no grade required,
   both accounts open, a reason the ledger would not trim): each period limit by a conditional
   upsert that refuses past the limit, the quota by a guarded UPDATE (`limit_day`, `limit_month`,
   `limit_year`, `quota_exhausted`: the caller raises, and the request's rollback undoes the claim
   and the counters), the ledger posting by `ledger_post_one` (migration 0004: locks in the
   ledger's order, overdraft guard, chain hashes; a short balance raises SQLSTATE JY001), and the
   redemption row with its copy of the terms (`done`).

Otherwise it stops after the claim (`claimed`) and the caller finishes in Python exactly as before
(refusals with reasons, grades, opening accounts). The posting's fingerprint and request digest are
the ledger's own, computed in Python with placeholders for what only the database knows (the posting
id, the reason, the legs) and filled in here; tests check them against the ledger's functions and
verify the chains.

Also: the codes' table leaves room on its pages, so that claiming a code is a HOT update.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 12:30:00
"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Placeholders as canonical JSON writes them (redemption.services.redeem_sql fills the templates).
REDEEM = r"""
CREATE OR REPLACE FUNCTION redemption_redeem(
    p_outlet_id bigint, p_actor_label text, p_scenario_id bigint, p_code_digest text, p_idem_key text,
    p_request_digest text, p_now timestamptz, p_today date, p_periods text[], p_idem_scope text,
    p_posting_key text, p_fp_template text, p_digest_template text, p_max_reason int,
    OUT o_outcome text, OUT o_prior_id bigint, OUT o_scenario scenarios, OUT o_participant_id bigint,
    OUT o_account_id bigint, OUT o_partner_account_id bigint, OUT o_redemption_id bigint,
    OUT o_posting_id bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    sc scenarios;
    lim int;
    reason text;
    n_participant int;
    n_partner int;
    accts bigint[];
    shards smallint[];
    amounts bigint[];
    legs text;
    inserted int;
BEGIN
    SELECT r.id INTO o_prior_id FROM redemptions r WHERE r.outlet_id = p_outlet_id AND r.idem_key = p_idem_key;
    IF FOUND THEN
        o_outcome := 'replay';
        RETURN;
    END IF;
    SELECT s.* INTO sc FROM scenarios s
      JOIN scenario_outlets so ON so.scenario_id = s.id AND so.outlet_id = p_outlet_id
     WHERE s.id = p_scenario_id;
    IF NOT FOUND THEN
        o_outcome := 'no_scenario';
        RETURN;
    END IF;
    o_scenario := sc;
    UPDATE one_time_codes SET used_at = p_now, used_by_outlet = p_outlet_id
     WHERE code_digest = p_code_digest AND used_at IS NULL AND expires_at > p_now
    RETURNING participant_id INTO o_participant_id;
    IF NOT FOUND THEN
        o_outcome := 'code_invalid';
        RETURN;
    END IF;
    SELECT a.id, a.shard_count INTO o_account_id, n_participant FROM accounts a WHERE a.participant_id = o_participant_id;
    SELECT a.id, a.shard_count INTO o_partner_account_id, n_partner FROM accounts a WHERE a.code = 'partner:' || sc.partner_id;
    o_outcome := 'claimed';
    reason := sc.name_zh || '（' || sc.code || '）';
    -- What needs Python (reasons in words, a grade, an account to open, a reason Python's strip()
    -- would change or the ledger would refuse) stops here; the caller carries on from the claim.
    IF sc.status <> 'active' OR p_today < sc.valid_from OR (sc.valid_until IS NOT NULL AND p_today > sc.valid_until)
       OR sc.required_grade IS NOT NULL
       OR (sc.kind = 'spend' AND (o_account_id IS NULL OR o_partner_account_id IS NULL))
       OR sc.name_zh ~ '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u001c-\u001f]'
       OR length(reason) > p_max_reason THEN
        RETURN;
    END IF;
    FOR i IN 1 .. 3 LOOP
        lim := CASE i WHEN 1 THEN sc.limit_day WHEN 2 THEN sc.limit_month ELSE sc.limit_year END;
        CONTINUE WHEN lim IS NULL;
        INSERT INTO usage_counters AS u (participant_id, scenario_id, period, used)
        VALUES (o_participant_id, sc.id, p_periods[i], 1)
        ON CONFLICT (participant_id, scenario_id, period) DO UPDATE SET used = u.used + 1 WHERE u.used < lim;
        IF NOT FOUND THEN
            o_outcome := (ARRAY['limit_day', 'limit_month', 'limit_year'])[i];
            RETURN;
        END IF;
    END LOOP;
    IF sc.total_quota IS NOT NULL THEN
        UPDATE scenarios SET quota_used = quota_used + 1 WHERE id = sc.id AND quota_used < total_quota;
        IF NOT FOUND THEN
            o_outcome := 'quota_exhausted';
            RETURN;
        END IF;
    END IF;
    IF sc.kind = 'spend' THEN
        o_posting_id := nextval('postings_id_seq');
        -- The ledger's locking order: legs on sharded (system) accounts first, by account, then the
        -- others by (account, shard); -n: any free one of the account's n shards.
        SELECT array_agg(v.a ORDER BY v.n <= 1, v.a, v.s), array_agg(v.s ORDER BY v.n <= 1, v.a, v.s),
               array_agg(v.amount ORDER BY v.n <= 1, v.a, v.s),
               '[' || string_agg('[' || v.a || ',' || v.amount || ']', ',' ORDER BY v.a, v.amount) || ']'
          INTO accts, shards, amounts, legs
          FROM (SELECT t.a, t.n, t.amount, (CASE WHEN t.n > 1 THEN -t.n ELSE 0 END)::smallint AS s
                  FROM (VALUES (o_account_id, n_participant, -sc.points_cost::bigint),
                               (o_partner_account_id, n_partner, sc.points_cost::bigint)) AS t(a, n, amount)) v;
        SELECT l.inserted INTO inserted FROM ledger_post_one(
            o_posting_id, 'redemption', reason, 'outlet', p_outlet_id, p_actor_label, NULL, NULL, '{}'::jsonb,
            p_now, p_now, p_idem_scope, p_posting_key,
            encode(sha256(convert_to(replace(replace(p_digest_template, E'"\\u0000legs\\u0000"', legs),
                                             E'"\\u0000reason\\u0000"', to_json(reason)::text), 'UTF8')), 'hex'),
            NULL,
            replace(replace(p_fp_template, E'"\\u0000id\\u0000"', o_posting_id::text),
                    E'"\\u0000reason\\u0000"', to_json(reason)::text),
            accts, shards, amounts) l;
        IF inserted = 0 THEN
            -- The same outlet key, in flight in another transaction that committed first: the caller
            -- compares the two requests (a retry, or the key reused for other content: 422) and
            -- raises either way, so this request's claim, counters and quota roll back.
            o_outcome := 'posting_taken';
            RETURN;
        END IF;
    END IF;
    INSERT INTO redemptions (scenario_id, partner_id, outlet_id, participant_id, kind, points, yuan_value_fen,
                             refunded_points, refunded_fen, posting_id, terms, idem_key, request_digest, created_at)
    VALUES (sc.id, sc.partner_id, p_outlet_id, o_participant_id, sc.kind,
            CASE WHEN sc.kind = 'spend' THEN sc.points_cost ELSE 0 END, sc.yuan_value_fen, 0, 0, o_posting_id,
            jsonb_build_object('code', sc.code, 'name_zh', sc.name_zh, 'name_en', sc.name_en, 'kind', sc.kind,
                               'points_cost', sc.points_cost, 'required_grade', sc.required_grade,
                               'yuan_value_fen', sc.yuan_value_fen, 'limit_day', sc.limit_day,
                               'limit_month', sc.limit_month, 'limit_year', sc.limit_year,
                               'terms_zh', sc.terms_zh, 'terms_en', sc.terms_en),
            p_idem_key, p_request_digest, p_now)
    RETURNING id INTO o_redemption_id;
    o_outcome := 'done';
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(REDEEM)
        # A code is written once and updated once (claimed): with room left on its page the update
        # is HOT, so it writes no new entry in each of the table's four indexes (nor their WAL).
        op.execute("ALTER TABLE one_time_codes SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE one_time_codes RESET (fillfactor)")
        op.execute("DROP FUNCTION IF EXISTS redemption_redeem(bigint, text, bigint, text, text, text, timestamptz, "
                   "date, text[], text, text, text, text, int)")
