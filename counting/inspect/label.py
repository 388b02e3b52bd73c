"""The mechanism label: fixed rules over the diagnostics, tried in order; the first that
holds names the mechanism.

1. `neither` unless the model counts: held-out accuracy on the probed sequences
   (probe_accuracy) >= COUNTS (a model that does not count has no counting mechanism; an
   untrained model's near-uniform attention and linearly readable histogram would
   otherwise pass for the histogram mechanism).
2. `count_attend`: the counting head keeps at most OTHER_MAX of the uniform share on the
   non-matching tokens (other_lift), puts >= BOS_MIN of its mass on BOS (the reference
   whose share carries 1/(c + K)), and its mass on matches follows c / (c + K) more
   closely than the uniform c / T.
3. `histogram`: attention near uniform over the matches (match_lift within UNIFORM_LIFT of
   1) and the token histogram linearly readable before the MLP (probe_hist_r2 >= HIST_R2).
4. `neither` otherwise.

Calibrated on the hand-built constructions of `counting.theory` (tests/test_inspect.py):
histogram (QC, histogram task, MFE) and CountAttend sit far inside their rules (accuracy 1;
CountAttend's other_lift about 0.01 and K = 1; the histogram's lifts 1 and probe R^2 1),
and untrained models fail rule 1.

`causal_label`: the mechanism the interventions (counting.inspect.interventions) support,
or `unconfirmed`: a test supports its mechanism when its success rate is >= CAUSAL_MIN and
beats its null control by >= CAUSAL_MARGIN; when both do, the higher rate names it.
Calibrated on the same constructions (tests/test_inspect_causal.py): the matching test
succeeds on every pair, the other test and both controls on none or nearly none, and
untrained models are unconfirmed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

MECHANISMS = ("histogram", "count_attend", "neither")
CAUSAL_MECHANISMS = ("histogram", "count_attend", "unconfirmed")

COUNTS = 0.5  # held-out accuracy a model needs to be given a mechanism
OTHER_MAX = 0.5  # CountAttend: mass on the non-matching tokens, relative to uniform
BOS_MIN = 0.05  # CountAttend: mass on BOS
UNIFORM_LIFT = 2.0  # histogram: match_lift in [1/2, 2]
HIST_R2 = 0.8  # histogram: held-out R^2 of the histogram probe
CAUSAL_MIN = 0.5  # an intervention's success rate that supports its mechanism
CAUSAL_MARGIN = 0.25  # ... and its lead over the null control


def _ok(x: float) -> bool:
    return x is not None and math.isfinite(x)


def not_counting(r: dict) -> bool:
    """Rule 1: the model does not count (probe_accuracy below COUNTS, or missing)."""
    return not r["probe_accuracy"] >= COUNTS


def count_attend(r: dict) -> bool:
    """Rule 2: CountAttend's attention (other_lift <= OTHER_MAX, att_bos >= BOS_MIN, and the match mass closer
    to c / (c + K) than to the uniform c / T)."""
    bos, other = r["att_bos"], r["other_lift"]
    return (_ok(bos) and _ok(other) and other <= OTHER_MAX and bos >= BOS_MIN and _ok(r["rmse_count_attend"])
            and r["rmse_count_attend"] < r["rmse_uniform"])


def histogram(r: dict) -> bool:
    """Rule 3: near-uniform attention over the matches (match_lift within UNIFORM_LIFT of 1) and a linearly
    readable histogram (probe_hist_r2 >= HIST_R2)."""
    lift = r["match_lift"]
    return (_ok(lift) and lift > 0 and abs(math.log(lift)) <= math.log(UNIFORM_LIFT)
            and _ok(r["probe_hist_r2"]) and r["probe_hist_r2"] >= HIST_R2)


# (label, rule), tried in order
RULES: tuple[tuple[str, Callable[[dict], bool]], ...] = (
    ("neither", not_counting),
    ("count_attend", count_attend),
    ("histogram", histogram),
)


def label(row: dict) -> str:
    """The mechanism of a row of diagnostics: the name of the first rule of RULES that holds, else neither."""
    for name, rule in RULES:
        if rule(row):
            return name
    return "neither"


def supported(row: dict, name: str) -> bool:
    """Whether the row's intervention test `name` supports its mechanism: its rate >= CAUSAL_MIN and at least
    CAUSAL_MARGIN above its null control."""
    rate, control = row.get(f"causal_{name}"), row.get(f"causal_{name}_control")
    return _ok(rate) and _ok(control) and rate >= CAUSAL_MIN and rate - control >= CAUSAL_MARGIN


def causal_label(row: dict) -> str:
    """The mechanism the interventions support (the higher rate when both do), or unconfirmed."""
    found = [(row[f"causal_{name}"], name) for name in ("count_attend", "histogram") if supported(row, name)]
    return max(found)[1] if found else "unconfirmed"
