"""The wheel: built from the repository, installed into a clean venv, every module imported from outside."""

import os
import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    os.environ.get("WARPINIT_GPU_CHECK") == "1", reason="the GPU check installs the project without building a wheel"
)

_CHECK = """
import importlib, pkgutil, sys
from pathlib import Path
import warpinit, warpinit.kernels, warpinit.bench
root = Path(sys.argv[1])
names = ["warpinit"]
for package in (warpinit, warpinit.kernels, warpinit.bench):
    names += [package.__name__ + "." + m.name for m in pkgutil.iter_modules(package.__path__)]
for name in names:
    if name.endswith(("conftest", "__main__")):
        continue
    module = importlib.import_module(name)
    assert root not in Path(module.__file__).resolve().parents, (name, module.__file__)
bench = Path(warpinit.bench.__file__).parent
assert (bench / "gpu_check.sh").exists() and (bench / "RESULTS.md").exists()
assert not any(Path(p, "kernels").is_dir() and Path(p, "kernels", "fill_cpu.py").exists()
               for p in sys.path if p and Path(p).is_dir() and Path(p).resolve() != root)
import warpinit as wi
print(len(names), wi.uniform(8, seed=1, device="cpu").dtype)
"""


def test_wheel_installs_and_imports_every_module(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("warpinit-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # The dependencies come from the environment running the tests (which may itself be a venv):
    # a .pth adds its site-packages after the new venv's own, without running its .pth hooks (so an
    # editable install of the repository stays invisible).
    outer = [p for p in site.getsitepackages() + [sysconfig.get_paths()["purelib"]] if p != purelib]
    Path(purelib, "outer_site.pth").write_text("\n".join(dict.fromkeys(outer)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    result = subprocess.run([str(python), "-c", _CHECK, str(ROOT)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=600, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr[-3000:]
    count, dtype = result.stdout.split()
    assert int(count) >= 15 and dtype == "float32"
