"""Run every notebook in nbs/ as a test (one pytest case each) with nbdev's own runner.

Cells flagged with a `tst_flags` flag from settings.ini (`#| gpu`, `#| slow`) are skipped,
exactly as `nbdev_test` does; set COBRA_LIT_TEST_FLAGS="gpu slow" to run them too.
"""
import os
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev import test as nbdev_test  # module import: pytest would collect a bare `test_nb` as a test

cfg = get_config()
NBS = sorted(p for p in Path(cfg.nbs_path).glob('*.ipynb') if not p.name.startswith('_'))


@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    skip = cfg.tst_flags.split()
    force = os.environ.get('COBRA_LIT_TEST_FLAGS', '').split()
    ok, secs = nbdev_test.test_nb(nb, skip_flags=[f for f in skip if f not in force], force_flags=force,
                       showerr=True, basepath=cfg.config_path)
    assert ok, f'{nb.name} failed (see the traceback above)'
