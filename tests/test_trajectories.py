"""Trajectories validation errors and DataFrame round-trips."""

import numpy as np
import pandas as pd
import pytest

from jaxmed._src.trajectories import (Trajectories, trajectories_from_arrays,
                                      trajectories_from_dataframe, trajectories_to_dataframe,
                                      validate_trajectories)


def make(n=3, t=4, ds=2, dm=1, seed=0):
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, t + 1, ds))
    return Trajectories(states[:, :-1].copy(), rng.integers(0, 2, (n, t)).astype(float),
                        rng.normal(size=(n, t, dm)), rng.normal(size=(n, t)),
                        states[:, 1:].copy(), np.ones((n, t)))


def test_valid_data_passes():
    validate_trajectories(make())


@pytest.mark.parametrize("field,value,pattern", [
    ("state", np.zeros((3, 4)), r"state: expected 3 dimensions, got shape \(3, 4\)"),
    ("action", np.zeros((3, 5)), r"action: expected shape \(3, 4\) to match state"),
    ("reward", np.zeros((2, 4)), r"reward: expected shape \(3, 4\) to match state"),
    ("mask", np.ones((3, 3)), r"mask: expected shape \(3, 4\)"),
    ("next_state", np.zeros((3, 4, 1)), r"next_state: expected shape \(3, 4, 2\)"),
    ("mediator", np.zeros((3, 4, 0)), r"mediator: expected shape \(3, 4, dM\) with dM >= 1"),
    ("mediator", np.zeros((3, 5, 1)), r"mediator: expected shape \(3, 4, dM\)"),
    ("action", "abc", r"action: expected a numeric array"),
])
def test_shape_errors(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_trajectories(make()._replace(**{field: value}))


def test_empty_data_errors():
    d = make()
    with pytest.raises(ValueError, match=r"state: expected at least one trajectory \(N >= 1\), got N = 0"):
        validate_trajectories(d._replace(state=np.zeros((0, 4, 2))))
    with pytest.raises(ValueError, match=r"state: expected at least one time step \(T >= 1\), got T = 0"):
        validate_trajectories(d._replace(state=np.zeros((3, 0, 2))))
    with pytest.raises(ValueError, match="state: expected a state dimension dS >= 1, got 0"):
        validate_trajectories(d._replace(state=np.zeros((3, 4, 0))))


@pytest.mark.parametrize("field", ["state", "mediator", "reward", "next_state", "action"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_reports_index(field, bad):
    d = make()
    arr = np.array(getattr(d, field), dtype=float)
    if arr.ndim == 3:
        arr[1, 2, 0] = bad
        arr[2, 3, 0] = bad
    else:
        arr[1, 2] = bad
        arr[2, 3] = bad
    d = d._replace(**{field: arr})
    if field == "state":  # keep next_state consistent so the finite check is what fails
        d = d._replace(next_state=np.concatenate([arr[:, 1:], d.next_state[:, -1:]], axis=1))
    with pytest.raises(ValueError, match=rf"{field}: non-finite value \(NaN or inf\) at trajectory 1, "
                                         rf"time 2; 2 such step\(s\) in all"):
        validate_trajectories(d)


def test_non_finite_on_padding_is_ignored():
    d = make()
    mask = np.ones((3, 4))
    mask[1, 3] = 0.0
    reward = np.array(d.reward)
    reward[1, 3] = np.nan
    validate_trajectories(d._replace(reward=reward, mask=mask))


def test_non_binary_action():
    d = make()
    action = np.array(d.action)
    action[2, 1] = 0.5
    with pytest.raises(ValueError, match=r"action: expected binary actions in \{0, 1\}, got 0.5 at "
                                         r"trajectory 2, time 1"):
        validate_trajectories(d._replace(action=action))


def test_next_state_inconsistent():
    d = make()
    ns = np.array(d.next_state)
    ns[0, 1, 1] += 1e-3
    with pytest.raises(ValueError, match=r"next_state: next_state\[0, 1\] = .* is inconsistent with "
                                         r"the following state state\[0, 2\]"):
        validate_trajectories(d._replace(next_state=ns))
    validate_trajectories(d._replace(next_state=ns), check_next_state=False)
    # a change at the padded boundary is not checked
    mask = np.ones((3, 4))
    mask[0, 2:] = 0.0
    validate_trajectories(d._replace(next_state=ns, mask=mask))


def test_mask_errors():
    d = make()
    mask = np.ones((3, 4))
    mask[1, 1] = 0.0
    with pytest.raises(ValueError, match="mask: padding must come after the observed steps; "
                                         "trajectory 1 has an observed step after a padded one"):
        validate_trajectories(d._replace(mask=mask))
    mask = np.ones((3, 4))
    mask[2] = 0.0
    with pytest.raises(ValueError, match="mask: trajectory 2 has no observed step"):
        validate_trajectories(d._replace(mask=mask))
    mask = np.ones((3, 4))
    mask[0, 3] = 0.5
    with pytest.raises(ValueError, match=r"mask: expected values in \{0, 1\}, got 0.5 at trajectory 0, time 3"):
        validate_trajectories(d._replace(mask=mask))


def test_from_arrays_derives_next_state_and_zeroes_padding():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(2, 5))
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=float)
    reward = rng.normal(size=(2, 4))
    reward[1, 3] = np.nan  # padding may hold anything
    d = trajectories_from_arrays(s, [[0, 1, 0, 1], [1, 1, 0, 0]], rng.normal(size=(2, 4)), reward,
                                 mask=mask)
    np.testing.assert_array_equal(d.state[..., 0], s[:, :-1] * mask)
    np.testing.assert_array_equal(d.next_state[..., 0], s[:, 1:] * mask)
    assert d.reward[1, 3] == 0.0 and d.state.dtype == np.float64
    with pytest.raises(ValueError, match=r"state: without next_state, expected T\+1 = 4 steps, got 5"):
        trajectories_from_arrays(s, [[0, 1, 0]] * 2, np.zeros((2, 3)), np.zeros((2, 3)))
    d32 = trajectories_from_arrays(s, [[0, 1, 0, 1]] * 2, np.zeros((2, 4)), np.zeros((2, 4)),
                                   dtype=np.float32)
    assert d32.state.dtype == np.float32


def test_dataframe_round_trip_ragged():
    d = make(n=4, t=5, ds=2, dm=2, seed=3)
    mask = np.ones((4, 5))
    mask[1, 3:] = 0.0
    mask[3, 1:] = 0.0
    d = trajectories_from_arrays(d.state, d.action, d.mediator, d.reward, d.next_state, mask)
    df = trajectories_to_dataframe(d, state_names=["x", "y"], mediator_names=["u", "v"])
    assert len(df) == int(mask.sum())
    assert list(df.columns) == ["id", "time", "x", "y", "action", "u", "v", "reward", "next_x", "next_y"]
    back = trajectories_from_dataframe(df, state=["x", "y"], mediator=["u", "v"],
                                       next_state=["next_x", "next_y"])
    for a, b in zip(d, back):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # shuffled rows give the same result
    back2 = trajectories_from_dataframe(df.sample(frac=1.0, random_state=0), state=["x", "y"],
                                        mediator=["u", "v"], next_state=["next_x", "next_y"])
    for a, b in zip(d, back2):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_dataframe_without_next_state_columns():
    df = pd.DataFrame({"id": [7, 7, 7, 9, 9], "time": [0, 1, 2, 0, 1], "s": [1.0, 2.0, 3.0, 4.0, 5.0],
                       "action": [0, 1, 0, 1, 1], "m": [0.1, 0.2, 0.3, 0.4, 0.5],
                       "reward": [1.0, 2.0, 3.0, 4.0, 5.0]})
    d = trajectories_from_dataframe(df, state=["s"], mediator=["m"])
    np.testing.assert_array_equal(d.state[..., 0], [[1, 2], [4, 0]])
    np.testing.assert_array_equal(d.next_state[..., 0], [[2, 3], [5, 0]])
    np.testing.assert_array_equal(d.mask, [[1, 1], [1, 0]])
    np.testing.assert_array_equal(d.reward, [[1, 2], [4, 0]])


def test_dataframe_errors():
    df = pd.DataFrame({"id": [0, 0], "time": [0, 1], "s": [1.0, np.nan], "action": [0, 1],
                       "m": [0.0, 0.0], "reward": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"s: non-finite or non-numeric value nan at row 1 \(id=0, time=1\)"):
        trajectories_from_dataframe(df, state=["s"], mediator=["m"])
    with pytest.raises(ValueError, match=r"state: column\(s\) \['z'\] not in the DataFrame"):
        trajectories_from_dataframe(df, state=["z"], mediator=["m"])
    with pytest.raises(ValueError, match="df: the DataFrame is empty"):
        trajectories_from_dataframe(df.iloc[:0], state=["s"], mediator=["m"])
    with pytest.raises(ValueError, match=r"df: duplicate \(id, time\) at row 1"):
        trajectories_from_dataframe(df.assign(time=[0, 0], s=[1.0, 2.0]), state=["s"], mediator=["m"])
    with pytest.raises(ValueError, match="df: expected a pandas DataFrame"):
        trajectories_from_dataframe({"a": 1}, state=["s"], mediator=["m"])
    with pytest.raises(ValueError, match="df: every id has a single row"):
        trajectories_from_dataframe(df.assign(s=[1.0, 2.0], id=[0, 1]), state=["s"], mediator=["m"])
    df3 = pd.DataFrame({"id": [0, 0, 1], "time": [0, 1, 0], "s": [1.0, 2.0, 3.0], "action": [0, 1, 1],
                        "m": [0.0] * 3, "reward": [0.0] * 3})
    with pytest.raises(ValueError, match=r"df: id\(s\) \[1\] have a single row and no transition"):
        trajectories_from_dataframe(df3, state=["s"], mediator=["m"])


def test_flat_is_trajectory_major():
    d = make(n=2, t=3)
    f = d.flat()
    np.testing.assert_array_equal(f["reward"][3:6], d.reward[1])
    np.testing.assert_array_equal(f["state"][4], d.state[1, 1])
    assert d.n_trajectories == 2 and d.horizon == 3 and d.state_dim == 2 and d.mediator_dim == 1


def test_dataframe_time_gaps():
    """A missing step (time 1 -> 3 where the data's step is 1) is an error naming the id; weekly
    data (step 7) and gaps='ignore' are accepted, and datetimes are checked the same way."""
    df = pd.DataFrame({"id": [0, 0, 0, 1, 1, 1], "time": [0, 1, 2, 5, 6, 8],
                       "s": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "action": [0, 1, 0, 1, 0, 1],
                       "m": [0.0] * 6, "reward": [1.0] * 6})
    with pytest.raises(ValueError, match=r"time: id 1 jumps from time 6 to 8 \(the data's time step is 1\)"):
        trajectories_from_dataframe(df, state=["s"], mediator=["m"])
    d = trajectories_from_dataframe(df, state=["s"], mediator=["m"], gaps="ignore")
    np.testing.assert_array_equal(d.next_state[..., 0], [[2, 3], [5, 6]])
    weekly = trajectories_from_dataframe(df.assign(time=[0, 7, 14, 0, 7, 14]), state=["s"], mediator=["m"])
    np.testing.assert_array_equal(weekly.next_state[..., 0], [[2, 3], [5, 6]])
    dates = df.assign(time=pd.Timestamp("2026-01-01") + pd.to_timedelta(df["time"], unit="D"))
    with pytest.raises(ValueError, match=r"time: id 1 jumps from time 2026-01-07 00:00:00 to 2026-01-09"):
        trajectories_from_dataframe(dates, state=["s"], mediator=["m"])
    with pytest.raises(ValueError, match=r"gaps: expected 'raise' or 'ignore', got 'fill'"):
        trajectories_from_dataframe(df, state=["s"], mediator=["m"], gaps="fill")


def _panel(times, ids=None):
    """Two ids of len(times) rows each; state = the row's position in time order."""
    k = len(times)
    ids = [0] * k + [1] * k if ids is None else ids
    steps = np.arange(k, dtype=float)
    return pd.DataFrame({"id": ids, "time": list(times) * 2, "s": np.r_[steps, steps + 100.0],
                         "action": [0, 1] * k, "m": np.r_[steps, steps] * 0.5,
                         "reward": np.r_[steps, steps] + 1.0})


def test_text_times_are_ordered_by_their_integer_not_alphabetically():
    """t0..t10 must give the same trajectories as the integer times 0..10 (alphabetical order
    would put t10 before t2); rows are shuffled so the order comes from the time column."""
    numeric = _panel(range(11))
    text = numeric.assign(time=[f"t{v}" for v in numeric["time"]])
    text = text.sample(frac=1.0, random_state=1)
    ref = trajectories_from_dataframe(numeric, state="s", mediator="m")
    got = trajectories_from_dataframe(text, state="s", mediator="m")
    assert got.horizon == 10
    for name in Trajectories._fields:
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
    # state = position in time order, so the next state is the state plus one
    np.testing.assert_array_equal(got.next_state[0, :, 0], np.arange(1.0, 11.0))
    numbers_as_text = numeric.assign(time=[str(v) for v in numeric["time"]])
    np.testing.assert_array_equal(
        trajectories_from_dataframe(numbers_as_text, state="s", mediator="m").state, ref.state)
    with pytest.raises(ValueError, match=r"^time: cannot order the text times \['a', 'b'"):
        trajectories_from_dataframe(numeric.assign(time=list("abcdefghijk") * 2), state="s",
                                    mediator="m")
    with pytest.raises(ValueError, match=r"^time: id 0 jumps from time t2 to t4"):
        trajectories_from_dataframe(text[text["time"] != "t3"], state="s", mediator="m")


def test_missing_ids_and_times_are_errors_naming_the_rows():
    df = _panel(range(4))
    df.loc[[2, 5], "id"] = np.nan
    with pytest.raises(ValueError, match=r"^id: 2 row\(s\) have no id \(NaN\) in column 'id', "
                                         r"at rows \[2, 5\]"):
        trajectories_from_dataframe(df, state="s", mediator="m")
    df = _panel(range(4)).astype({"time": float})
    df.loc[6, "time"] = np.nan
    for gaps in ("raise", "ignore"):
        with pytest.raises(ValueError, match=r"^time: 1 row\(s\) have no time \(NaN\) in column "
                                             r"'time', at rows \[6\]"):
            trajectories_from_dataframe(df, state="s", mediator="m", gaps=gaps)


def test_a_string_names_one_column():
    df = _panel(range(3)).assign(ss=lambda d: d["s"] * 10.0 + 1.0)
    d = trajectories_from_dataframe(df, state="ss", mediator="m")
    assert d.state_dim == 1
    np.testing.assert_array_equal(d.state[0, :, 0], [1.0, 11.0])
    np.testing.assert_array_equal(d.next_state[1, :, 0], [1011.0, 1021.0])


def test_action_error_names_the_id_and_time():
    df = _panel(range(3), ids=["u1"] * 3 + ["u2"] * 3)
    df.loc[4, "action"] = 2
    with pytest.raises(ValueError, match=r"^action: expected binary actions in \{0, 1\} in column "
                                         r"'action', got 2 at id 'u2', time 1 \(row 4\)"):
        trajectories_from_dataframe(df, state="s", mediator="m")


def test_last_row_of_each_id_gives_only_the_final_state():
    """20 rows per id give T = 19 steps; with next_state columns every row is a step."""
    df = _panel(range(20))
    d = trajectories_from_dataframe(df, state="s", mediator="m")
    assert d.horizon == 19 and int(d.mask.sum()) == 38
    np.testing.assert_array_equal(d.reward[0], np.arange(19) + 1.0)
    full = trajectories_from_dataframe(df.assign(next_s=df["s"] + 1.0), state="s", mediator="m",
                                       next_state="next_s")
    assert full.horizon == 20


def test_repr_is_a_short_summary():
    d = make(n=3, t=4, ds=2, dm=1)
    assert repr(d) == ("Trajectories(N=3, T=4, state_dim=2, mediator_dim=1, observed_steps=12, "
                       "dtype=float64)")
    batched = Trajectories(*[np.stack([x, x]) for x in d])
    assert repr(batched) == ("Trajectories(N=3, T=4, state_dim=2, mediator_dim=1, batch=(2,), "
                             "observed_steps=24, dtype=float64)")
    assert repr(Trajectories(0, None, 0, 0, 0, 0)).startswith("Trajectories(state=0, action=None")
