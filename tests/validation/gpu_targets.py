"""The issue-5 target checks shared by the H100 and H200 accuracy tests (not a test module)."""
from __future__ import annotations

import pytest

from memsim.validation.compare import TARGETS, target_figure


def params(families, misses: dict) -> list:
    """One pytest param per (family, target); the misses are strict xfails with their reason."""
    out = []
    for fam in families:
        for target in TARGETS:
            reason = misses.get((fam, target))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(fam, target, marks=marks, id=f"{fam}-{target}"))
    return out


def check(results, family: str, target: str) -> None:
    """Assert one family meets one target (skipped where it has no such data)."""
    value, worst = target_figure(results, family, target)
    if value is None:
        pytest.skip(f"{family} has no {target} data (no Nsight counters)")
    assert value <= TARGETS[target], (f"{family} {target} {value:.1%} > {TARGETS[target]:.0%}"
                                      + (f" (worst {worst})" if worst else ""))
