import os
import subprocess
import sys

import pytest

import recmap

from conftest import SOURCE_DIR

# The children import the recmap under test, wherever PYTHONPATH pointed.
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(recmap.__file__)))
EXAMPLES = sorted((SOURCE_DIR / "examples" / "python").glob("*.py"))


def test_all_examples_found():
    names = {p.name for p in EXAMPLES}
    assert {"shared_counter.py", "producer_consumer.py", "analytics.py",
            "image_filter.py", "matrix_multiply.py",
            "persistent_shared_data.py"} <= names


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs(example, tmp_path):
    r = subprocess.run([sys.executable, str(example), str(tmp_path / "store.rmap")],
                       env=ENV, cwd=tmp_path, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("OK"), r.stdout
    assert example.read_text().startswith('"""')  # the docstring


def test_readme_python_example_runs(tmp_path):
    readme = (SOURCE_DIR / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    r = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=tmp_path,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("b'hello' True 2")
