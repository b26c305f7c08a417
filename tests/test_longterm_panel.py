"""Panel data model: constructors, DataFrame round trip, validation errors (spec longterm.md §2)."""

import numpy as np
import pandas as pd
import pytest

from jaxmed.longterm import Panel, panel_from_arrays, panel_from_dataframe, panel_to_dataframe


def _arrays(n=6, tp1=4, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, tp1, d)), np.array([0, 1] * (n // 2), float)


def test_from_arrays_zero_fills_masked_and_keeps_values():
    obs, bucket = _arrays()
    mask = np.ones(obs.shape[:2])
    mask[0, 3] = 0.0
    obs[0, 3] = np.nan                       # masked entries may hold anything
    p = panel_from_arrays(obs, bucket, mask)
    np.testing.assert_array_equal(p.obs[0, 3], [0.0, 0.0])
    np.testing.assert_array_equal(p.obs[1:], obs[1:])
    assert p.n_individuals == 6 and p.n_times == 4 and p.dim == 2


def test_dataframe_round_trip_with_ragged_panel_and_rewards():
    obs, bucket = _arrays()
    mask = np.ones(obs.shape[:2])
    mask[2, 0] = 0.0                          # late entry
    mask[3, 3] = 0.0                          # attrition
    rewards = obs[..., 0] * 2.0
    p = panel_from_arrays(obs, bucket, mask, rewards)
    df = panel_to_dataframe(p, metric_names=["a", "b"])
    assert len(df) == int(mask.sum())
    q = panel_from_dataframe(df.sample(frac=1.0, random_state=1), metrics=["a", "b"], reward="reward")
    np.testing.assert_array_equal(q.obs, p.obs)
    np.testing.assert_array_equal(q.mask, p.mask)
    np.testing.assert_array_equal(q.bucket, p.bucket)
    np.testing.assert_array_equal(q.rewards, p.rewards)


@pytest.mark.parametrize("mutate, match", [
    (lambda o, b, m: (o[:, :1], b, m[:, :1]), "obs: expected at least two time points"),
    (lambda o, b, m: (o, b[:-1], m), r"bucket: expected shape \(6,\)"),
    (lambda o, b, m: (o, np.where(np.arange(6) == 4, 2.0, b), m), "bucket: expected values in {0, 1}, got 2.0 at individual 4"),
    (lambda o, b, m: (o, np.zeros(6), m), "bucket: bucket 1 has no individuals"),
    (lambda o, b, m: (o, b, np.where(np.arange(4) == 1, 0.5, m)), "mask: expected values in {0, 1}, got 0.5 at individual 0, time 1"),
    (lambda o, b, m: (o, b, m[:, :3]), r"mask: expected shape \(6, 4\)"),
    (lambda o, b, m: (np.where((np.arange(4) == 2)[None, :, None] & (np.arange(6) == 5)[:, None, None], np.inf, o), b, m),
     "obs: non-finite value .* at individual 5, time 2, metric 0"),
    (lambda o, b, m: (np.concatenate([o, np.full(o.shape[:2] + (1,), 3.0)], -1), b, m), "obs: metric 2 is constant"),
    (lambda o, b, m: (o, b, np.where(b[:, None] == 1, np.array([1.0, 0.0, 1.0, 0.0]), m)),
     "mask: bucket 1 has 0 observed transition"),
])
def test_validation_errors(mutate, match):
    obs, bucket = _arrays()
    o, b, m = mutate(obs, bucket, np.ones(obs.shape[:2]))
    with pytest.raises(ValueError, match=match):
        panel_from_arrays(o, b, m)


def test_validation_errors_rewards_and_shapes():
    obs, bucket = _arrays()
    with pytest.raises(ValueError, match=r"rewards: expected shape \(6, 4\)"):
        panel_from_arrays(obs, bucket, rewards=np.zeros((6, 3)))
    r = np.zeros((6, 4))
    r[1, 2] = np.nan
    with pytest.raises(ValueError, match="rewards: non-finite value .* individual 1, time 2"):
        panel_from_arrays(obs, bucket, rewards=r)
    with pytest.raises(ValueError, match="obs: expected 3 dimensions"):
        panel_from_arrays(np.zeros(5), bucket)


def test_dataframe_validation_errors():
    obs, bucket = _arrays()
    df = panel_to_dataframe(panel_from_arrays(obs, bucket), metric_names=["a", "b"])
    bad = df.copy()
    bad.loc[(bad.id == 3) & (bad.time == 2), "bucket"] = 0
    with pytest.raises(ValueError, match="bucket: the bucket changes within id 3"):
        panel_from_dataframe(bad, metrics=["a", "b"])
    with pytest.raises(ValueError, match=r"df: column\(s\) \['c'\] not in the DataFrame"):
        panel_from_dataframe(df, metrics=["a", "c"])
    dup = pd.concat([df, df.iloc[:1]])
    with pytest.raises(ValueError, match="df: duplicate"):
        panel_from_dataframe(dup, metrics=["a", "b"])
    nan = df.copy()
    nan.loc[5, "b"] = np.nan
    with pytest.raises(ValueError, match="b: non-finite or non-numeric value nan at row 5"):
        panel_from_dataframe(nan, metrics=["a", "b"])
    with pytest.raises(ValueError, match="df: expected a pandas DataFrame"):
        panel_from_dataframe(obs, metrics=["a"])
    with pytest.raises(ValueError, match="df: the DataFrame is empty"):
        panel_from_dataframe(df.iloc[:0], metrics=["a"])
    with pytest.raises(ValueError, match="metrics: expected at least one"):
        panel_from_dataframe(df, metrics=[])


def test_panel_is_a_pytree():
    import jax

    obs, bucket = _arrays()
    p = panel_from_arrays(obs, bucket)
    leaves = jax.tree.leaves(p)
    assert len(leaves) == 3          # rewards None is an empty subtree
    q = jax.tree.map(lambda x: x * 2.0, p)
    assert isinstance(q, Panel)
    np.testing.assert_array_equal(q.obs, 2.0 * obs)
