"""Design advice on the issue's mouse data and on edge cases."""

from pathlib import Path

import pandas as pd
import pytest

from exprlmm.assoc.designs.advice import design_advice, format_advice

REF = Path(__file__).resolve().parents[2] / "reference" / "designs"


@pytest.fixture(scope="module")
def mice():
    return pd.read_csv(REF / "mouse.tsv", sep="\t").drop(columns="Gene.X")


def _codes(findings):
    return [(f.level, f.code) for f in findings]


def test_users_model_is_explained(mice):
    findings = design_advice(mice, "~ (1|urea.score) + (1|weight.score)", n_genes=100)
    codes = _codes(findings)
    assert ("error", "no-tested-term") in codes
    assert codes.count(("warning", "few-levels")) == 2
    assert codes.count(("warning", "numeric-grouping")) == 2
    text = " ".join(format_advice(findings))
    # why it is wrong, and what the right model is
    assert "only the intercept" in text and "not tests of association" in text
    assert "'~ urea + weight + (1|group)'" in text
    assert "score of the measured urea" in text
    assert "named like a score of weight but does not follow it" in text
    assert findings[0].level == "error"


def test_recommended_model_flags_group_and_confounding(mice):
    findings = design_advice(mice, "~ weight + urea + (1|group)", n_genes=20000)
    codes = _codes(findings)
    assert ("warning", "few-levels") in codes
    confounded = [f.message for f in findings if f.code == "confounded"]
    assert any(
        m.startswith("urea is largely determined by group (R² of urea ~ group = 0.72")
        for m in confounded
    )
    assert not any(c[0] == "error" for c in codes)
    note = next(f.message for f in findings if f.code == "multiple-testing")
    assert "40000 tests at 7 residual df" in note


def test_score_as_fixed_effect_suggests_measured_value(mice):
    findings = design_advice(mice, "~ urea.score + weight")
    msg = [f.message for f in findings if f.code == "score-of-measured"]
    assert msg and "use urea itself" in msg[0]


def test_too_many_parameters(mice):
    findings = design_advice(mice, "~ weight + urea + C(animal)")
    assert ("error", "too-many-parameters") in _codes(findings)


def test_one_sample_per_level(mice):
    findings = design_advice(mice, "~ weight + (1|animal)")
    assert ("error", "one-per-level") in _codes(findings)


def test_clean_design_has_no_warnings():
    samples = pd.DataFrame(
        {
            "x": [0.1 * i for i in range(24)][::-1],
            "block": [f"b{i % 6}" for i in range(24)],
        }
    )
    assert [f for f in design_advice(samples, "~ x + (1|block)") if f.level != "note"] == []
