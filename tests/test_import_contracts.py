"""The layering written down in `.importlinter` holds: the library never
imports Celery or the layers above it, the producer client loads neither
torch nor the task code, storage and data classes sit at the bottom, and
no package has an import cycle at any level."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_contract_is_kept():
    lint_imports = Path(sys.executable).parent / 'lint-imports'
    done = subprocess.run([str(lint_imports), '--no-cache', '--config', str(ROOT / '.importlinter')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert 'BROKEN' not in report and 'Contracts: 5 kept, 0 broken.' in report, report
