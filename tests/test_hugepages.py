"""The command line's re-execution with glibc's huge-page tunable (``jaxmed._src.hugepages``)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from jaxmed._src import hugepages as H

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLIBC = ("glibc", "2.36")


def test_hugepage_env_adds_the_tunable_only_where_it_helps_and_is_not_set():
    env = H.hugepage_env({"PATH": "/bin"}, GLIBC, "madvise", "linux")
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": H.TUNABLE}
    assert H.hugepage_env({}, GLIBC, "always", "linux")["GLIBC_TUNABLES"] == H.TUNABLE
    # other tunables of the user are kept, the new one appended
    env = H.hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, GLIBC, "madvise", "linux")
    assert env["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2:" + H.TUNABLE
    # nothing to do: set already (a second exec never happens), switched off, huge pages off,
    # unknown mode, old or other libc, other systems
    assert H.hugepage_env({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, GLIBC, "madvise",
                          "linux") is None
    assert H.hugepage_env({"GLIBC_TUNABLES": H.TUNABLE}, GLIBC, "madvise", "linux") is None
    assert H.hugepage_env({H.SWITCH: "0"}, GLIBC, "madvise", "linux") is None
    assert H.hugepage_env({H.SWITCH: "1"}, GLIBC, "madvise", "linux") is not None
    assert H.hugepage_env({}, GLIBC, "never", "linux") is None
    assert H.hugepage_env({}, GLIBC, None, "linux") is None
    assert H.hugepage_env({}, ("glibc", "2.34"), "madvise", "linux") is None
    assert H.hugepage_env({}, ("", ""), "madvise", "linux") is None
    assert H.hugepage_env({}, ("musl", "1.2"), "madvise", "linux") is None
    assert H.hugepage_env({}, GLIBC, "madvise", "darwin") is None


def test_thp_mode_reads_the_bracketed_mode(tmp_path):
    p = tmp_path / "enabled"
    p.write_text("always [madvise] never\n")
    assert H.thp_mode(str(p)) == "madvise"
    p.write_text("[always] madvise never\n")
    assert H.thp_mode(str(p)) == "always"
    p.write_text("garbage\n")
    assert H.thp_mode(str(p)) is None
    assert H.thp_mode(str(tmp_path / "missing")) is None


def test_only_the_command_line_counts_as_launched_as_cli():
    assert H.launched_as_cli(["-m"], ["python3", "-m", "jaxmed", "study"], None)
    assert H.launched_as_cli(["-m"], ["python3", "-X", "dev", "-mjaxmed"], None)
    assert not H.launched_as_cli(["-m"], ["python3", "-m", "pytest", "jaxmed"], None)
    assert not H.launched_as_cli(["-c"], ["python3", "-c", "import jaxmed"], None)
    assert not H.launched_as_cli(["script.py"], ["python3", "script.py"], "script.py")
    assert not H.launched_as_cli([""], ["python3"], None)  # the interactive interpreter
    script = "/venv/bin/jaxmed"
    assert H.launched_as_cli([script, "designs"], ["python3", script, "designs"], script)
    # a module named jaxmed that is not the running script
    assert not H.launched_as_cli([script], ["python3", script], "/elsewhere/main.py")
    # this test process imported jaxmed as a library
    assert not H.launched_as_cli()


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", H.SWITCH)}
    env.update(PYTHONPATH=ROOT, **extra)
    return env


SHOW = "import os; print('TUNABLES=' + os.environ.get('GLIBC_TUNABLES', ''))"
WANTED = H.hugepage_env({}, platform.libc_ver(), H.thp_mode()) is not None


def test_reexec_runs_the_command_again_with_the_tunable_where_the_machine_supports_it():
    code = ("import sys; from jaxmed._src import hugepages as H; "
            f"H.reexec_cli([sys.executable, '-c', {SHOW!r}], force=True); print('NOT-REEXECUTED')")
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(), capture_output=True,
                         text=True, timeout=120, check=True).stdout
    if WANTED:
        assert out.strip() == "TUNABLES=" + H.TUNABLE
    else:
        assert out.strip() == "NOT-REEXECUTED"
    # switched off: no exec
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(**{H.SWITCH: "0"}),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "NOT-REEXECUTED"


@pytest.mark.skipif(not WANTED, reason="no glibc >= 2.35 with transparent huge pages here")
def test_python_m_jaxmed_restarts_once_with_the_tunable_and_a_library_import_never_does():
    # ``python -m jaxmed`` (as users run it): the package's import sees the launch and
    # re-executes; the command's own output is unchanged, and it runs once
    env = _child_env()
    out = subprocess.run([sys.executable, "-m", "jaxmed", "designs"], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    off = subprocess.run([sys.executable, "-m", "jaxmed", "designs"],
                         env=_child_env(**{H.SWITCH: "0"}), capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out == off and "semi-synthetic" in out
    # the re-executed process has the tunable: seen through a ``-m jaxmed`` launch whose
    # original command line we stand in for (argv[0] is "-m" while the package imports)
    code = ("import sys; sys.argv[0] = '-m'; "
            "sys.orig_argv = [sys.executable, '-m', 'jaxmed', 'designs']; import jaxmed")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert out == off  # the exec ran ``python -m jaxmed designs``
    lib = subprocess.run([sys.executable, "-c", "import jaxmed; " + SHOW], env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert lib.strip() == "TUNABLES="
