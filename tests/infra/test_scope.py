"""`Principal.scope_filter`, the SQL twin of `Principal.in_scope`, on both backends."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from identity.models import Region
from infra.auth import SYSTEM, Principal
from tests import factories as f

pytestmark = pytest.mark.sqlite


def _regions(tree: f.Tree) -> list[Region]:
    return [getattr(tree, field.name) for field in dataclasses.fields(tree)]


def _seen(session, actor: Principal, tree: f.Tree) -> set[str]:
    ours = [r.id for r in _regions(tree)]
    return set(session.scalars(select(Region.code).where(Region.id.in_(ours), actor.scope_filter(Region.path))))


def test_a_township_sees_its_own_regions_the_county_all_and_no_scope_path_nothing(any_session):
    session = any_session
    tree = f.region_tree(session)
    county = f.staff(session, "auditor", tree.county)
    town_a = f.staff(session, "auditor", tree.town_a)
    scopeless = dataclasses.replace(town_a, scope_path=None)
    assert _seen(session, county, tree) == {r.code for r in _regions(tree)}
    assert _seen(session, town_a, tree) == {tree.town_a.code, tree.village_a.code, tree.grid_a.code}
    assert _seen(session, scopeless, tree) == set()
    assert _seen(session, SYSTEM, tree) == set()
    for actor in (county, town_a, scopeless, SYSTEM):  # the list agrees with the detail check
        assert _seen(session, actor, tree) == {r.code for r in _regions(tree) if actor.in_scope(r.path)}


@pytest.mark.parametrize("pattern", ["%", "_", "/%", "/_"])
def test_a_scope_path_is_matched_literally_never_as_a_pattern(any_session, pattern):
    session = any_session
    tree = f.region_tree(session)
    odd = dataclasses.replace(f.staff(session, "auditor", tree.county), scope_path=pattern)
    assert _seen(session, odd, tree) == set()
