"""Tests run in float64 (jaxmed's estimation precision)."""

import jax

jax.config.update("jax_enable_x64", True)
