"""Masked names show a hint of who it is, never the whole name."""
from __future__ import annotations

import pytest

from infra.security import mask_name


@pytest.mark.parametrize(("name", "masked"), [
    ("张秀梅", "张*梅"), ("王芳", "王*"), ("欧阳娜娜", "欧**娜"), ("John Smith", "J*** S****"),
    ("敏", "*"), ("A B", "* *"), ("", ""), (None, ""),
])
def test_a_masked_name_never_shows_the_whole_name(name, masked):
    assert mask_name(name) == masked
