import os
import pathlib

import pytest

import recmap

SOURCE_DIR = pathlib.Path(os.environ.get(
    "RECMAP_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2])).resolve()


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "store.rmap")


@pytest.fixture
def store(path):
    s = recmap.open(path, create=True, region_size=1 << 20)
    yield s
    s.close()
