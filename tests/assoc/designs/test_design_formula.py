"""Formula parsing and design building."""

import numpy as np
import pandas as pd
import pytest

from exprlmm.assoc.designs.formula import build_design, parse_formula
from exprlmm.errors import UserInputError


@pytest.fixture
def sheet():
    return pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "trt": ["a", "b", "c", "a", "b", "c"],
            "site": ["s1", "s1", "s1", "s2", "s2", "s2"],
            "animal": ["m1", "m2", "m1", "m1", "m2", "m2"],
        }
    )


def test_parse_random_intercepts():
    spec = parse_formula("y ~ x + (1|a) + (1 | b)")
    assert spec.fixed == "x"
    assert [t.name for t in spec.random] == ["a", "b"]
    nested = parse_formula("~ x + (1|site/animal)")
    assert [t.name for t in nested.random] == ["site", "site:animal"]
    assert parse_formula("~ (1|g)").fixed == "1"


def test_random_slope_rejected():
    with pytest.raises(UserInputError, match="only random intercepts"):
        parse_formula("~ x + (x|g)")


def test_build_design_terms_and_indicators(sheet):
    design = build_design("~ x + trt + (1|site/animal)", sheet)
    assert design.columns == ("Intercept", "x", "trt[T.b]", "trt[T.c]")
    assert design.terms["trt"] == (2, 3)
    assert design.tested_terms_default == ("x", "trt")
    z = design.random["site:animal"]
    assert z.shape == (6, 4) and np.all(z.sum(axis=1) == 1)
    np.testing.assert_array_equal(
        design.kernels[0], design.random["site"] @ design.random["site"].T
    )


def test_scale_and_interaction(sheet):
    design = build_design("~ scale(x) * trt", sheet)
    col = design.x[:, design.columns.index("scale(x)")]
    np.testing.assert_allclose(col, (sheet.x - sheet.x.mean()) / sheet.x.std(ddof=1))
    assert "scale(x):trt" in design.terms


def test_unknown_variable(sheet):
    with pytest.raises(UserInputError, match="variable\\(s\\) weight not in the sample sheet"):
        build_design("~ weight + x", sheet)
    with pytest.raises(UserInputError, match="grouping factor 'batch' is not a column"):
        build_design("~ x + (1|batch)", sheet)


def test_one_level_grouping_factor(sheet):
    with pytest.raises(UserInputError, match="has one level"):
        build_design("~ x + (1|lab)", sheet.assign(lab="L1"))


def test_dotted_column_names():
    sheet = pd.DataFrame({"urea.score": [1, 2, 3, 1, 2, 3], "w.kg": [1.0, 2, 3, 5, 4, 6]})
    design = build_design("~ C(urea.score) * w.kg", sheet)
    assert "C(urea.score)" in design.terms and "w.kg" in design.terms
    assert "C(urea.score):w.kg" in design.terms
    assert design.columns[1] == "C(urea.score)[T.2]"
