"""Docs checks that run without Quarto (it cannot be installed on CI machines).

`python scripts/docs.py readme` writes README.md from nbs/index.ipynb (markdown cells as they are, code
cells fenced); `python scripts/docs.py check` fails when README.md is stale or when nbdev's notebook
processing (what `nbdev_proc_nbs` does, the step `nbdev_preview`/`nbdev_docs` run before Quarto) breaks; it never
installs anything.
"""
import json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render_readme():
    "Render nbs/index.ipynb to markdown the way the README shows it."
    nb = json.loads((ROOT / 'nbs/index.ipynb').read_text())
    parts = []
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#| hide'): continue
        lines = [l for l in src.splitlines() if not l.startswith('#|')]
        src = '\n'.join(lines).strip()
        parts.append(src if c['cell_type'] == 'markdown' else f'```python\n{src}\n```')
    return '<!-- WARNING: generated from nbs/index.ipynb by scripts/docs.py readme; edit the notebook. -->\n\n' + '\n\n'.join(parts) + '\n'


def check():
    readme = (ROOT / 'README.md').read_text()
    if readme != render_readme(): sys.exit('README.md is stale: run `python scripts/docs.py readme`')
    shutil.rmtree(ROOT / '_proc', ignore_errors=True)  # no cache: process every notebook, as a fresh clone does
    # nbdev_proc_nbs's steps without its first one, which installs Quarto and then `pip install -e .[dev]` of this
    # checkout into the active environment when `quarto` is not on PATH (nbdev 2.4.14, pinned)
    proc = 'import nbdev.quarto as q; q._ensure_quarto = lambda: None; q._pre_docs()'
    subprocess.run([sys.executable, '-c', proc], cwd=ROOT, check=True)
    nbs = [p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_')]
    missing = [p.name for p in nbs if not (ROOT / '_proc' / p.name).exists()]
    if missing: sys.exit(f'nbdev_proc_nbs did not process: {missing}')
    for f in ['_quarto.yml', 'sidebar.yml']:
        if not (ROOT / '_proc' / f).exists(): sys.exit(f'_proc/{f} missing after nbdev_proc_nbs')
    print(f'docs ok: {len(nbs)} notebooks processed, README in sync')


if __name__ == '__main__':
    {'readme': lambda: (ROOT / 'README.md').write_text(render_readme()), 'check': check}[sys.argv[1]]()
