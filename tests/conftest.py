"""Fixtures shared by the test files: the shared data folder and a headless Chromium."""
import os, shutil
from pathlib import Path

import pytest

from cobra_lit.data import shared_data_dir

CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync']


@pytest.fixture(scope='module')
def data() -> Path:
    "The shared data folder (`shared_data_dir`); a test that needs it is skipped, with the reason, when there is none."
    try: return shared_data_dir()
    except FileNotFoundError as e: pytest.skip(f'needs the shared data folder: {e}')


def missing(reason: str):
    "Skip, saying why; fail instead where the browser is required (`COBRA_LIT_REQUIRE_BROWSER=1`, set by CI)."
    if os.environ.get('COBRA_LIT_REQUIRE_BROWSER') == '1': pytest.fail(f'{reason} (COBRA_LIT_REQUIRE_BROWSER=1)')
    pytest.skip(reason)


@pytest.fixture(scope='module')
def chromium():
    "Debian's headless Chromium launched by Playwright (its own browser download is out of reach)."
    exe = next(filter(None, [shutil.which('chromium'), shutil.which('chromium-browser')]), '/usr/bin/chromium')
    if not os.access(exe, os.X_OK): missing('chromium not installed (apt-get install -y chromium)')
    try: from playwright.sync_api import sync_playwright
    except ImportError: missing('playwright not installed (pip install playwright, pinned in requirements-lock.txt)')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()
