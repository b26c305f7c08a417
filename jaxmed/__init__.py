"""jaxmed: causal effects in sequential decision problems, as batched, differentiable JAX kernels.

The public API is re-exported here explicitly; implementation lives in ``jaxmed._src``.
"""

# the ``jaxmed`` command line re-executes itself once with huge pages for XLA's buffers
# before anything imports JAX (``_src/hugepages``); importing the library does nothing here
from jaxmed._src import hugepages as _hugepages

_hugepages.reexec_cli()

# single-threaded OpenBLAS for the LAPACK kernels jaxlib loads at its first solve, unless the
# user set OPENBLAS_NUM_THREADS or JAXMED_BLAS_THREADS=keep (``_src/execution``)
from jaxmed._src import execution as _execution  # noqa: E402

_execution.configure_library_threads()

from jaxmed._src.precision import precision as precision  # noqa: E402
from jaxmed._src.trajectories import Trajectories as Trajectories
from jaxmed._src.trajectories import trajectories_from_arrays as trajectories_from_arrays
from jaxmed._src.trajectories import trajectories_from_dataframe as trajectories_from_dataframe
from jaxmed._src.trajectories import trajectories_to_dataframe as trajectories_to_dataframe
from jaxmed._src.trajectories import validate_trajectories as validate_trajectories
from jaxmed import policies as policies
from jaxmed._src.effect_table import EffectTable as EffectTable
from jaxmed._src.effect_table import EstimatorSpec as EstimatorSpec
from jaxmed._src.mediation.config import MediationConfig as MediationConfig
from jaxmed._src.mediation.effects import MediationResult as MediationResult
from jaxmed._src.mediation.effects import mediation_effects as mediation_effects
from jaxmed._src.mediation.effects import mediation_estimator_spec as mediation_estimator_spec
from jaxmed._src.longterm.api import LongtermResult as LongtermResult
from jaxmed._src.longterm.api import longterm_effect as longterm_effect
from jaxmed._src.longterm.api import longterm_estimator_spec as longterm_estimator_spec
from jaxmed._src.differentiable.policy_optimisation import (
    PolicyOptimisationResult as PolicyOptimisationResult)
from jaxmed._src.differentiable.policy_optimisation import optimize_policy as optimize_policy
from jaxmed import mediation as mediation
from jaxmed import differentiable as differentiable
from jaxmed import longterm as longterm
from jaxmed import sim as sim
from jaxmed import study as study

__version__ = "0.1.0"

__all__ = [
    "precision",
    "Trajectories",
    "trajectories_from_arrays",
    "trajectories_from_dataframe",
    "trajectories_to_dataframe",
    "validate_trajectories",
    "policies",
    "EffectTable",
    "EstimatorSpec",
    "MediationConfig",
    "MediationResult",
    "mediation_effects",
    "mediation_estimator_spec",
    "LongtermResult",
    "longterm_effect",
    "longterm_estimator_spec",
    "PolicyOptimisationResult",
    "optimize_policy",
    "mediation",
    "differentiable",
    "longterm",
    "sim",
    "study",
]
