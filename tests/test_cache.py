"""The on-disk kernel cache: a read-only install works, a damaged cache file is recovered from.

Each case runs warpinit from a copy of the package in a temporary directory (its own ``__pycache__``,
its own home directory, no ``NUMBA_CACHE_DIR``), in a subprocess with a bounded timeout, and checks
the values, the cache hits and misses of the sampler's kernel and, where it matters, the files left.
Read-only means without write permission: a test run as root runs its children without the
capability that overrides file permissions.
"""

import ctypes
import json
import os
import random
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import warpinit
import warpinit.kernels

TIMEOUT = 600  # one compilation of the float32 kernel on a loaded 2-core machine, with room to spare
KERNEL = "fill_cpu._fill_template_float32-"  # the float32 sampler's cache files start with this
CHILD = """
import json
import numpy as np
import warpinit as wi
from warpinit.kernels import fill_cpu
values = wi.uniform(2 * fill_cpu.TILE, seed=1)[:8]  # two tiles: the parallel driver (one runs serially)
stats = fill_cpu.DRIVERS["float32"].stats
print(json.dumps({"file": wi.__file__, "bits": values.view(np.uint32).tolist(),
                  "hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values())}))
"""
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file permissions")


def _without_permission_override():
    """In a child of root: drop the capabilities that let root write where permissions forbid it."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _read_only(*paths: Path) -> None:
    for path in paths:
        for item in [path, *path.rglob("*")]:
            item.chmod(item.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _writable(path: Path) -> None:
    for item in [path, *path.rglob("*")]:
        item.chmod(item.stat().st_mode | stat.S_IWUSR)


class Install:
    """A copy of warpinit (site/warpinit with its kernels) and a home directory, in ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.site = root / "site"
        self.home = root / "home"
        self.pycache = self.site / "warpinit" / "kernels" / "__pycache__"
        self.home.mkdir(parents=True, exist_ok=True)

    @classmethod
    def fresh(cls, root: Path) -> "Install":
        install = cls(root)
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(Path(warpinit.__file__).parent, install.site / "warpinit", ignore=ignore)
        shutil.copytree(Path(warpinit.kernels.__file__).parent, install.site / "warpinit" / "kernels", ignore=ignore,
                        dirs_exist_ok=True)
        return install

    def copy(self, root: Path) -> "Install":
        shutil.copytree(self.root, root)
        return Install(root)

    def run(self) -> dict:
        env = {key: value for key, value in os.environ.items()
               if key not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
        env.update(PYTHONPATH=str(self.site), HOME=str(self.home), PYTHONDONTWRITEBYTECODE="1")
        preexec = _without_permission_override if os.geteuid() == 0 else None
        done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=self.root, capture_output=True, text=True,
                              timeout=TIMEOUT, preexec_fn=preexec)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert Path(result["file"]).is_relative_to(self.site)
        return result

    def files(self, suffix: str) -> list[Path]:
        return sorted(self.pycache.glob(f"{KERNEL}*{suffix}")) if self.pycache.is_dir() else []

    def cache_files(self) -> list[Path]:
        return [path for path in self.root.rglob("*") if path.suffix in (".nbi", ".nbc")]


@pytest.fixture(scope="module")
def expected_bits():
    return warpinit.uniform(8, seed=1).view(np.uint32).tolist()


@pytest.fixture(scope="module")
def cached(tmp_path_factory, expected_bits):
    """An install whose kernel cache was written by a first run (read-only home: the in-tree cache)."""
    install = Install.fresh(tmp_path_factory.mktemp("cached") / "install")
    _read_only(install.home)
    first = install.run()
    assert first["bits"] == expected_bits and first["misses"] >= 1 and first["hits"] == 0
    assert install.files(".nbi") and install.files(".nbc")
    _writable(install.home)
    return install


@pytest.fixture
def permissions_hold(tmp_path):
    """Skip where a child cannot be kept from writing into a read-only directory."""
    probe = tmp_path / "probe"
    probe.mkdir()
    _read_only(probe)
    preexec = _without_permission_override if os.geteuid() == 0 else None
    try:
        done = subprocess.run([sys.executable, "-c", f"open({str(probe / 'x')!r}, 'w')"], capture_output=True,
                              timeout=60, preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError) as error:
        pytest.skip(f"cannot run a child without write permission: {error}")
    finally:
        _writable(probe)
    if done.returncode == 0:
        pytest.skip("a child process writes into read-only directories here")


def test_nothing_writable_compiles_in_memory(tmp_path, permissions_hold, expected_bits):
    install = Install.fresh(tmp_path / "install")
    _read_only(install.site, install.home)
    try:
        result = install.run()
        assert result["bits"] == expected_bits
        assert result["misses"] >= 1 and result["hits"] == 0
        assert install.cache_files() == []
    finally:
        _writable(install.root)


@pytest.mark.parametrize("home", ["read-only home", "writable home"])
def test_read_only_cache_is_loaded(tmp_path, permissions_hold, cached, expected_bits, home):
    install = cached.copy(tmp_path / "install")
    _read_only(install.site)
    if home == "read-only home":
        _read_only(install.home)
    try:
        result = install.run()
        assert result["bits"] == expected_bits
        assert result["hits"] >= 1 and result["misses"] == 0
    finally:
        _writable(install.root)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(1).randbytes(path.stat().st_size))


def _random_bytes_inside(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = random.Random(2).randbytes(len(data[middle : middle + 4096]))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("suffix, damage", [(".nbi", _truncate), (".nbi", _garbage), (".nbc", _random_bytes_inside),
                                            (".nbc", _truncate)],
                         ids=["truncated index", "garbage index", "random bytes in data", "truncated data"])
def test_damaged_cache_is_recompiled_and_rewritten(tmp_path, cached, expected_bits, suffix, damage):
    install = cached.copy(tmp_path / "install")
    (target,) = install.files(suffix)
    damage(target)
    recovered = install.run()
    assert recovered["bits"] == expected_bits
    assert recovered["misses"] >= 1 and recovered["hits"] == 0
    again = install.run()  # the rewritten cache is whole again
    assert again["bits"] == expected_bits
    assert again["hits"] >= 1 and again["misses"] == 0


def test_an_edited_helper_module_is_not_served_from_the_cache(tmp_path, cached, expected_bits):
    """The cached sampler holds code from other files (the Philox rounds, the rounding routines),
    which Numba's own key does not cover: an edit to one of them must compile the kernel again."""
    install = cached.copy(tmp_path / "install")
    helper = install.site / "warpinit" / "kernels" / "philox.py"
    helper.write_text(helper.read_text() + "\n# edited\n")
    edited = install.run()
    assert edited["bits"] == expected_bits
    assert edited["misses"] >= 1 and edited["hits"] == 0
    assert install.run()["hits"] >= 1  # and the new key is cached in turn
