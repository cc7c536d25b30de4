"""
What importing ``spacer.tasks`` loads: the scoring code, as pyspacer does,
so that a first ``classify_features`` (inline in a CoralNet web request)
pays no import; never torch; and, without the worker extra, nothing that
fails the import.
"""
from __future__ import annotations

import json
import subprocess
import sys

LOADED = ("import json, sys\n"
          "import spacer.tasks\n"
          "print(json.dumps({m: m in sys.modules for m in"
          " ('sklearn', 'scipy', 'spacer.classify', 'torch')}))\n")

# A producer install: scikit-learn and scipy cannot be imported.
WITHOUT_SKLEARN = ("import sys\n"
                   "class Absent:\n"
                   "    def find_spec(self, name, path=None, target=None):\n"
                   "        if name.split('.')[0] in ('sklearn', 'scipy'):\n"
                   "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
                   "sys.meta_path.insert(0, Absent())\n")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, check=True).stdout


def test_the_tasks_import_their_scoring_code_and_not_torch():
    assert json.loads(_run(LOADED)) == {'sklearn': True, 'scipy': True,
                                        'spacer.classify': True, 'torch': False}


def test_without_the_worker_extra_the_tasks_still_import():
    loaded = json.loads(_run(WITHOUT_SKLEARN + LOADED))
    assert loaded == {'sklearn': False, 'scipy': False, 'spacer.classify': False,
                      'torch': False}
