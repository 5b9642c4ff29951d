import numpy as np
import pandas as pd
import pytest

import decode_omics as dco


def _frames(seed=0):
    rng = np.random.default_rng(seed)
    t = pd.DataFrame(rng.dirichlet(np.ones(3), 20), columns=list("abc"), index=[f"s{i}" for i in range(20)])
    return t


def test_perfect_and_known_values():
    t = _frames()
    assert dco.metrics.ccc(t, t) == pytest.approx(1.0)
    assert dco.metrics.rmse(t, t) == 0
    shifted = t + 0.1
    assert dco.metrics.pearson(shifted, t) == pytest.approx(1.0)
    assert dco.metrics.rmse(shifted, t) == pytest.approx(0.1)
    # CCC = 2 cov / (var_x + var_y + (mx - my)^2)
    v = t.to_numpy().ravel().var()
    assert dco.metrics.ccc(shifted, t) == pytest.approx(2 * v / (2 * v + 0.01))


def test_alignment_by_labels_and_per_label():
    t = _frames()
    e = t[["c", "a", "b"]].iloc[::-1]
    assert dco.metrics.ccc(e, t) == pytest.approx(1.0)
    per = dco.metrics.ccc(e, t, per_label=True)
    assert list(per.index) == ["c", "a", "b"] and np.allclose(per, 1.0)
    table = dco.metrics.score(e, t)
    assert list(table.index) == ["pooled", "c", "a", "b"]
    assert list(table.columns) == ["ccc", "rmse", "pearson"]


def test_misaligned_inputs_are_errors():
    t = _frames()
    with pytest.raises(ValueError, match="different labels"):
        dco.metrics.ccc(t[["a", "b"]], t)
    with pytest.raises(ValueError, match="different samples"):
        dco.metrics.rmse(t.iloc[:5], t)
    with pytest.raises(TypeError, match="DataFrames"):
        dco.metrics.ccc(t.to_numpy(), t)
