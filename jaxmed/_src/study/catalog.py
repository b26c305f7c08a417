"""Wiring between the study engine, the design registry and the estimator families.

Everything here is deliberately small: the study engine only needs a ``Design`` (``name``,
``kind``, ``simulate(key, n, horizon)``, ``truth()``, ``default_horizon``, ``description``)
and an ``EstimatorSpec``. The design registry (``jaxmed._src.sim.designs``) and the estimator
families (``jaxmed._src.mediation``, ``jaxmed._src.longterm``) are imported lazily, so that
the study engine works (with user designs and estimators) even where one of them is absent.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Mapping, Sequence

import numpy as np

from jaxmed._src.effect_table import EffectTable, EstimatorSpec

__all__ = ["truth_values", "get_design", "list_designs", "default_estimator", "select_estimators"]


def _import(module: str, what: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            raise RuntimeError(f"{what} needs the module {module}, which is not part of this "
                               f"jaxmed installation") from None
        raise


def truth_values(design_or_truth) -> dict[str, float]:
    """The true effect values of a design as a plain ``{effect name: float}`` dict.

    Tolerant of the ways a truth can be expressed. ``design_or_truth`` may be

    * a design (anything with a callable ``truth()``), whose ``truth()`` is then converted;
    * a mapping ``{name: value}``;
    * an object with an ``as_dict()`` method, or ``_asdict()`` (NamedTuple), or an
      ``effects`` attribute that is a mapping;
    * ``None`` (no truth known): returns ``{}``.

    Values must be scalars (0-d arrays are fine); entries whose value is not a finite-able
    scalar (e.g. nested metadata) are skipped.

    >>> truth_values({"IDE": 2.68, "IME": 3.65})
    {'IDE': 2.68, 'IME': 3.65}
    """
    obj = design_or_truth
    if obj is not None and not isinstance(obj, Mapping) and callable(getattr(obj, "truth", None)):
        obj = obj.truth()
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        mapping = obj
    elif isinstance(getattr(obj, "effects", None), Mapping):
        mapping = obj.effects
    elif callable(getattr(obj, "as_dict", None)):
        mapping = obj.as_dict()
    elif callable(getattr(obj, "_asdict", None)):
        mapping = obj._asdict()
    else:
        raise ValueError(f"truth: expected a mapping effect -> value or an object with an "
                         f"`effects` mapping or `as_dict()`, got {type(obj).__name__}")
    out = {}
    for name, value in mapping.items():
        arr = np.asarray(value)
        if arr.ndim == 0 and np.issubdtype(arr.dtype, np.number):
            out[str(name)] = float(arr)
    return out


def get_design(name: str):
    """The registered design called ``name`` (from ``jaxmed._src.sim.designs``)."""
    designs = _import("jaxmed._src.sim.designs", "the design registry")
    return designs.get_design(name)


def list_designs() -> list:
    """All registered designs (from ``jaxmed._src.sim.designs``)."""
    designs = _import("jaxmed._src.sim.designs", "the design registry")
    return list(designs.list_designs())


def default_estimator(design, *, se_method: str | None = None) -> EstimatorSpec:
    """The default ``EstimatorSpec`` for a design, looked up by ``design.kind``.

    Designs describe data only; the estimator configuration that fits them lives with the
    estimator families:

    * ``kind == "mediation"``: ``jaxmed._src.mediation.design_config.default_mediation_estimator``
      (MR, DM, MIS, baselines × IDE, IME, DDE, DME, ATE, with ``MediationConfig.binary()``
      for designs whose ``support`` is ``"binary"``);
    * ``kind == "longterm"``: ``jaxmed._src.longterm.design_estimators.default_longterm_estimator``;
    * a user's design object may instead provide its own ``estimator_spec()``.

    ``se_method`` (mediation designs only): ``"cluster"`` or ``"ij"``, the
    ``MediationConfig.se_method`` of the spec (``None``: the config's default). An IJ spec's
    name ends in ``+ij``, so a study store never mixes the two SEs.

    Raises:
      ValueError: unknown ``design.kind``, or the design lacks an attribute the factory needs,
        or ``se_method`` given for a design that is not a built-in mediation design.
      RuntimeError: the estimator family is not installed.
    """
    kind = getattr(design, "kind", None)
    own = callable(getattr(design, "estimator_spec", None))
    if se_method is not None and (own or kind != "mediation"):
        raise ValueError(f"se_method: applies to the built-in mediation estimators only; design "
                         f"{getattr(design, 'name', design)!r} has "
                         + ("its own estimator_spec()" if own else f"kind {kind!r}"))
    if own:
        return design.estimator_spec()
    if kind not in _DEFAULTS:
        raise ValueError(f"design: kind must be 'mediation' or 'longterm', got {kind!r}")
    module, factory = _DEFAULTS[kind]
    mod = _import(module, f"the {kind} estimators")
    if se_method is None:
        return getattr(mod, factory)(design)
    return getattr(mod, factory)(design, se_method=se_method)


_DEFAULTS = {"mediation": ("jaxmed._src.mediation.design_config", "default_mediation_estimator"),
             "longterm": ("jaxmed._src.longterm.design_estimators", "default_longterm_estimator")}


def select_estimators(spec: EstimatorSpec, names: Sequence[str] | None) -> EstimatorSpec:
    """The same estimator restricted to the rows ``names`` (in the order given).

    The rows' numbers do not change. With ``spec.restrict`` (the mediation specs with the IJ
    SE) only what those rows need is computed: the IJ SE's reverse passes of the other rows
    are skipped (``MediationConfig.ij_estimators``).

    Raises:
      ValueError: a name is not one of ``spec.estimators``.
    """
    if names is None:
        return spec
    names = tuple(names)
    unknown = [n for n in names if n not in spec.estimators]
    if unknown or not names:
        raise ValueError(f"estimators: {unknown or 'none'} not among the available "
                         f"{list(spec.estimators)}")
    rows = np.asarray([spec.estimators.index(n) for n in names])
    if tuple(rows) == tuple(range(len(spec.estimators))):
        return spec
    inner = (spec if spec.restrict is None else spec.restrict(names)).fn

    def fn(key, data: Any) -> EffectTable:
        t = inner(key, data)
        return EffectTable(t.estimate[rows], t.se[rows], t.ci_low[rows], t.ci_high[rows], t.status)

    return dataclasses.replace(spec, estimators=names, fn=fn)
