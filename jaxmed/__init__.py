"""jaxmed: causal effects in sequential decision problems, as batched, differentiable JAX kernels.

The public API is re-exported here explicitly; implementation lives in ``jaxmed._src``.
"""

from jaxmed._src.precision import precision as precision
from jaxmed._src.trajectories import Trajectories as Trajectories
from jaxmed._src.trajectories import trajectories_from_arrays as trajectories_from_arrays
from jaxmed._src.trajectories import trajectories_from_dataframe as trajectories_from_dataframe
from jaxmed._src.trajectories import trajectories_to_dataframe as trajectories_to_dataframe
from jaxmed._src.trajectories import validate_trajectories as validate_trajectories
from jaxmed._src import policies as policies

__version__ = "0.1.0"

__all__ = [
    "precision",
    "Trajectories",
    "trajectories_from_arrays",
    "trajectories_from_dataframe",
    "trajectories_to_dataframe",
    "validate_trajectories",
    "policies",
]
