"""Runs ``python3 -m jaxmed ...`` in a subprocess, as a user does (not collected by pytest).

Every run shares one JAX persistent compilation cache directory (under the system temp
directory), so a second process compiling the same program (e.g. the README quickstart in
``test_docs_blocks.py`` after ``test_cli_subprocess.py``) reads it instead of recompiling.
The numbers do not depend on the cache.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAX_CACHE = os.path.join(tempfile.gettempdir(), f"jaxmed-tests-jax-cache-{os.getuid()}")


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env["JAX_COMPILATION_CACHE_DIR"] = JAX_CACHE
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def run_jaxmed(*args, cwd, timeout=900) -> subprocess.CompletedProcess:
    """``python3 -m jaxmed ARGS`` in ``cwd``; returns the completed process (text output)."""
    return subprocess.run([sys.executable, "-m", "jaxmed", *map(str, args)], cwd=cwd,
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout)
