import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import recmap

SCRIPT = pathlib.Path(recmap.__file__).resolve().parents[1] / "cmake_install.cmake"


@pytest.mark.skipif(not SCRIPT.exists() or not shutil.which("cmake"),
                    reason="not run from a CMake build tree")
def test_cmake_install_puts_an_importable_package_on_the_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", f"-DCMAKE_INSTALL_PREFIX={prefix}", "-P", str(SCRIPT)],
                   check=True, capture_output=True)
    pkgs = list(prefix.glob("lib/python3*/*-packages/recmap"))
    assert len(pkgs) == 1
    assert {"__init__.py", "__init__.pyi", "py.typed"} <= {p.name for p in pkgs[0].iterdir()}
    env = dict(os.environ, PYTHONPATH=str(pkgs[0].parent))
    r = subprocess.run([sys.executable, "-c", "import recmap; print(recmap.__file__)"],
                       env=env, capture_output=True, text=True, check=True, cwd=tmp_path)
    assert r.stdout.startswith(str(prefix))
