"""Redemption: the counter's redeem is one statement that is a whole unit of work.

Why: after migration 0007 a redemption still cost four round trips (BEGIN, the API key, the call,
COMMIT), and each round trip costs the web worker about as much CPU as the database's work for
a small statement. `redemption_redeem` now also checks the outlet's API key (when the caller has
not) and never leaves a partial write behind: every path either finishes the redemption, returns
having written nothing, or raises (and the statement's writes are undone with it). So the caller
may run it on a connection in autocommit, as its own transaction: one round trip in all.

Outcomes (`o_outcome`), none of which writes anything unless it is `done`:
- `unauthorized`: the key given to check is revoked, or its outlet or partner is suspended;
- `replay`: this outlet already used the idempotency key (`o_prior_id`);
- `no_scenario`: the scenario is not honoured at this outlet;
- `code_invalid`: unknown, expired or used code (or a concurrent claimer won it);
- `python`: something needs Python (reasons in words, a grade, an account to open, a reason the
  ledger would trim): the caller does the whole redemption in its own transaction, as before;
- `done`: claimed, limits and quota taken, posted (`ledger_post_one`), recorded.
Refusals after the claim raise, so that the claim and counters roll back with the statement:
SQLSTATE JY010 with the refusal (`limit_day`, `limit_month`, `limit_year`, `quota_exhausted`) as
message and the limit as detail; JY011 when the posting's idempotency key was taken by another
request that committed first; JY001 (from `ledger_post_one`) when the points do not suffice.

The fast path is four statements inside the function instead of eight: the scenario read checks
the key and the idempotency key too, the claim reads both accounts, the legs are ordered in
PL/pgSQL, and the key's hourly `last_used_at` touch rides on the redemption's INSERT.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 14:20:00
"""
from alembic import op

from migrations.earlier import revision_module

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_SIGNATURE = ("redemption_redeem(bigint, text, bigint, text, text, text, timestamptz, date, text[], text, text, "
                 "text, text, int)")

REDEEM = r"""
CREATE FUNCTION redemption_redeem(
    p_outlet_id bigint, p_partner_id bigint, p_key_id bigint, p_actor_label text, p_scenario_id bigint,
    p_code_digest text, p_idem_key text, p_request_digest text, p_now timestamptz, p_today date,
    p_periods text[], p_idem_scope text, p_posting_key text, p_fp_template text, p_digest_template text,
    p_max_reason int,
    OUT o_outcome text, OUT o_prior_id bigint, OUT o_scenario scenarios, OUT o_participant_id bigint,
    OUT o_redemption_id bigint, OUT o_posting_id bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    sc scenarios;
    lim int;
    reason text;
    acct bigint;
    n_acct int;
    pacct bigint;
    n_pacct int;
    partner_first boolean;
    legs text;
    inserted int;
BEGIN
    -- The scenario at this outlet, read only when the key is good and the idempotency key unused;
    -- otherwise the reads below say which of the three it was.
    SELECT s.* INTO sc FROM scenarios s
      JOIN scenario_outlets so ON so.scenario_id = s.id AND so.outlet_id = p_outlet_id
     WHERE s.id = p_scenario_id
       AND NOT EXISTS (SELECT 1 FROM redemptions r WHERE r.outlet_id = p_outlet_id AND r.idem_key = p_idem_key)
       AND (p_key_id IS NULL OR EXISTS (
            SELECT 1 FROM api_keys k JOIN outlets o ON o.id = k.outlet_id JOIN partners p ON p.id = o.partner_id
             WHERE k.id = p_key_id AND k.revoked_at IS NULL AND o.id = p_outlet_id AND o.partner_id = p_partner_id
               AND o.active AND p.active));
    IF NOT FOUND THEN
        IF p_key_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM api_keys k JOIN outlets o ON o.id = k.outlet_id JOIN partners p ON p.id = o.partner_id
             WHERE k.id = p_key_id AND k.revoked_at IS NULL AND o.id = p_outlet_id AND o.partner_id = p_partner_id
               AND o.active AND p.active) THEN
            o_outcome := 'unauthorized';
            RETURN;
        END IF;
        SELECT r.id INTO o_prior_id FROM redemptions r WHERE r.outlet_id = p_outlet_id AND r.idem_key = p_idem_key;
        o_outcome := CASE WHEN o_prior_id IS NOT NULL THEN 'replay' ELSE 'no_scenario' END;
        RETURN;
    END IF;
    o_scenario := sc;
    reason := sc.name_zh || '（' || sc.code || '）';
    -- What needs Python (reasons in words, a grade, a reason Python's strip() would change or the
    -- ledger would refuse) is handed back before anything is written.
    IF sc.status <> 'active' OR p_today < sc.valid_from OR (sc.valid_until IS NOT NULL AND p_today > sc.valid_until)
       OR sc.required_grade IS NOT NULL
       OR sc.name_zh ~ '^[\s\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u001c-\u001f]'
       OR length(reason) > p_max_reason THEN
        o_outcome := 'python';
        RETURN;
    END IF;
    -- The claim, with both accounts (a missing one is opened in Python: nothing is claimed then).
    UPDATE one_time_codes c SET used_at = p_now, used_by_outlet = p_outlet_id
      FROM accounts a LEFT JOIN accounts pa ON pa.code = 'partner:' || sc.partner_id
     WHERE c.code_digest = p_code_digest AND c.used_at IS NULL AND c.expires_at > p_now
       AND a.participant_id = c.participant_id AND (sc.kind <> 'spend' OR pa.id IS NOT NULL)
    RETURNING c.participant_id, a.id, a.shard_count, pa.id, pa.shard_count
      INTO o_participant_id, acct, n_acct, pacct, n_pacct;
    IF NOT FOUND THEN
        o_outcome := CASE WHEN EXISTS (SELECT 1 FROM one_time_codes c WHERE c.code_digest = p_code_digest
                                          AND c.used_at IS NULL AND c.expires_at > p_now)
                          THEN 'python' ELSE 'code_invalid' END;
        RETURN;
    END IF;
    FOR i IN 1 .. 3 LOOP
        lim := CASE i WHEN 1 THEN sc.limit_day WHEN 2 THEN sc.limit_month ELSE sc.limit_year END;
        CONTINUE WHEN lim IS NULL;
        INSERT INTO usage_counters AS u (participant_id, scenario_id, period, used)
        VALUES (o_participant_id, sc.id, p_periods[i], 1)
        ON CONFLICT (participant_id, scenario_id, period) DO UPDATE SET used = u.used + 1 WHERE u.used < lim;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'JY010', MESSAGE = (ARRAY['limit_day', 'limit_month', 'limit_year'])[i],
                                  DETAIL = lim::text;
        END IF;
    END LOOP;
    IF sc.total_quota IS NOT NULL THEN
        UPDATE scenarios SET quota_used = quota_used + 1 WHERE id = sc.id AND quota_used < total_quota;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'JY010', MESSAGE = 'quota_exhausted', DETAIL = sc.total_quota::text;
        END IF;
    END IF;
    IF sc.kind = 'spend' THEN
        o_posting_id := nextval('postings_id_seq');
        -- The ledger's locking order: legs on sharded (system) accounts first, by account, then the
        -- others by (account, shard); -n: any free one of the account's n shards.
        partner_first := (n_pacct > 1 AND n_acct <= 1) OR ((n_pacct > 1) = (n_acct > 1) AND pacct < acct);
        legs := CASE WHEN pacct < acct
                     THEN '[[' || pacct || ',' || sc.points_cost || '],[' || acct || ',' || -sc.points_cost || ']]'
                     ELSE '[[' || acct || ',' || -sc.points_cost || '],[' || pacct || ',' || sc.points_cost || ']]' END;
        SELECT l.inserted INTO inserted FROM ledger_post_one(
            o_posting_id, 'redemption', reason, 'outlet', p_outlet_id, p_actor_label, NULL, NULL, '{}'::jsonb,
            p_now, p_now, p_idem_scope, p_posting_key,
            encode(sha256(convert_to(replace(replace(p_digest_template, E'"\\u0000legs\\u0000"', legs),
                                             E'"\\u0000reason\\u0000"', to_json(reason)::text), 'UTF8')), 'hex'),
            NULL,
            replace(replace(p_fp_template, E'"\\u0000id\\u0000"', o_posting_id::text),
                    E'"\\u0000reason\\u0000"', to_json(reason)::text),
            CASE WHEN partner_first THEN ARRAY[pacct, acct] ELSE ARRAY[acct, pacct] END,
            CASE WHEN partner_first THEN ARRAY[(CASE WHEN n_pacct > 1 THEN -n_pacct ELSE 0 END)::smallint,
                                               (CASE WHEN n_acct > 1 THEN -n_acct ELSE 0 END)::smallint]
                 ELSE ARRAY[(CASE WHEN n_acct > 1 THEN -n_acct ELSE 0 END)::smallint,
                            (CASE WHEN n_pacct > 1 THEN -n_pacct ELSE 0 END)::smallint] END,
            CASE WHEN partner_first THEN ARRAY[sc.points_cost::bigint, -sc.points_cost::bigint]
                 ELSE ARRAY[-sc.points_cost::bigint, sc.points_cost::bigint] END) l;
        IF inserted = 0 THEN
            -- The same outlet key, in flight in another transaction that committed first.
            RAISE EXCEPTION USING ERRCODE = 'JY011', MESSAGE = 'posting_taken';
        END IF;
    END IF;
    WITH touched AS (  -- the key's last use, hourly, so that reads stay cheap
        UPDATE api_keys SET last_used_at = p_now
         WHERE id = p_key_id AND (last_used_at IS NULL OR last_used_at < p_now - interval '1 hour')
    )
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


def _redeem_0007() -> str:
    return revision_module("0007_redemption_fast_path.py").REDEEM


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
        op.execute(REDEEM)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION redemption_redeem(bigint, bigint, bigint, text, bigint, text, text, text, "
                   "timestamptz, date, text[], text, text, text, text, int)")
        op.execute(_redeem_0007())
