"""Training and classify_features: ours against pyspacer 0.14.0, side by side.

Writes CoralNet-like feature files (``spacer.training.synthetic``: 1280-d,
20 imbalanced classes, 50 points per image), then trains on them with the
same labels and the same (VECTORS) split in both environments, each in a
fresh process, and classifies one 200-point feature file with each
resulting classifier. Prints seconds, peak memory above the process's
starting size, validation accuracy, and the ratios.

    .venv/bin/python benchmarks/train.py                 # 10k and 60k, MLP and LR
    .venv/bin/python benchmarks/train.py --labels 10000 --types MLP
    .venv/bin/python benchmarks/train.py --parity-fixture tests/fixtures/training_parity.json

pyspacer's side needs .venv-pyspacer (``bash benchmarks/pyspacer_env.sh``).
``--parity-fixture`` records pyspacer's validation accuracy on the small
sets tests/training/test_parity.py trains on. One run each is enough:
pyspacer's MLP takes its initial weights from numpy's global generator just
after the first epoch's shuffle seeded it with 0, so its runs repeat.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ROOT / '.venv' / 'bin' / 'python'
PYSPACER = ROOT / '.venv-pyspacer' / 'bin' / 'python'
SIDE = ROOT / 'benchmarks' / 'train_side.py'

sys.path.insert(0, str(ROOT))


def run_side(python: Path, job: dict, workdir: Path, name: str) -> dict:
    job_path = workdir / f'{name}.job.json'
    job_path.write_text(json.dumps(job))
    # -P keeps this repository off sys.path, so pyspacer's spacer is used;
    # ours is installed in .venv (editable), so -P changes nothing there.
    proc = subprocess.run(
        [str(python), '-P', str(SIDE), str(job_path)], cwd='/',
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def labels_json(labels) -> dict:
    return {loc.key: [list(a) for a in labels[loc]] for loc in labels.keys()}


# Point noise that puts validation accuracy near 0.9 (0.8 for LR), where
# differences between trainers show; at the default noise both score 1.0.
BENCH_NOISE = 3.0


def make_data(workdir: Path, n_labels: int, seed: int = 0):
    from spacer.training.synthetic import make_source
    return make_source(workdir / f'features{n_labels}', n_labels, seed=seed,
                       noise=BENCH_NOISE)


def classify_file(workdir: Path) -> str:
    """A 200-point feature file (1280-d) for classify_features."""
    from spacer.training.synthetic import make_source
    labels = make_source(workdir / 'classify', 200, points_per_image=200,
                         seed=99)
    return next(iter(labels.keys())).key


def compare(n_labels: int, clf_type: str, epochs: int, workdir: Path,
            classify_path: str) -> dict:
    labels = make_data(workdir, n_labels)
    row = {'labels': n_labels, 'clf_type': clf_type}
    for name, python in (('ours', OURS), ('pyspacer', PYSPACER)):
        job = {'labels': labels_json(labels), 'clf_type': clf_type,
               'epochs': epochs, 'classify_feature': classify_path,
               'model_path': str(workdir / f'{name}-{clf_type}-{n_labels}.pkl')}
        row[name] = run_side(python, job, workdir, f'{name}-{clf_type}')
        if name == 'ours' and 'pyspacer' in row[name]['spacer']:
            raise RuntimeError("Our side imported pyspacer's package.")
    ours, ref = row['ours'], row['pyspacer']
    row['train_speedup'] = ref['train_seconds'] / ours['train_seconds']
    row['classify_speedup'] = ref['classify_seconds'] / ours['classify_seconds']
    row['acc_diff_points'] = 100 * (ours['acc'] - ref['acc'])
    return row


def print_row(row: dict) -> None:
    o, p = row['ours'], row['pyspacer']
    print(f"{row['labels']:>6} {row['clf_type']:<3} | train s: ours"
          f" {o['train_seconds']:6.2f} pyspacer {p['train_seconds']:6.2f}"
          f" x{row['train_speedup']:5.2f} | peak MB: ours"
          f" {o['train_peak_mb']:6.0f} pyspacer {p['train_peak_mb']:6.0f}"
          f" | val acc: ours {o['acc']:.4f} pyspacer {p['acc']:.4f}"
          f" ({row['acc_diff_points']:+.2f} pt) | classify 200 pts ms: ours"
          f" {1e3 * o['classify_seconds']:.2f} pyspacer"
          f" {1e3 * p['classify_seconds']:.2f}"
          f" x{row['classify_speedup']:.0f}", flush=True)


# The sets tests/training/test_parity.py trains on; keep the two in step.
PARITY_CASES = [
    {'name': 'MLP-int', 'clf_type': 'MLP', 'str_labels': False},
    {'name': 'MLP-str', 'clf_type': 'MLP', 'str_labels': True},
    {'name': 'LR-int', 'clf_type': 'LR', 'str_labels': False},
    {'name': 'LR-str', 'clf_type': 'LR', 'str_labels': True},
]
PARITY_DATA = {'n_labels': 20000, 'n_classes': 8, 'feature_dim': 128,
               'points_per_image': 25, 'seed': 3, 'noise': 1.6}
PARITY_EPOCHS = 10
PARITY_RUNS = 1


def parity_fixture(out_path: Path, workdir: Path) -> None:
    from spacer.training.synthetic import make_source
    cases = {}
    for case in PARITY_CASES:
        names = [f'class-{i}' for i in range(PARITY_DATA['n_classes'])] \
            if case['str_labels'] else None
        labels = make_source(workdir / case['name'], class_names=names,
                             **PARITY_DATA)
        accs = []
        for run in range(PARITY_RUNS):
            job = {'labels': labels_json(labels),
                   'clf_type': case['clf_type'], 'epochs': PARITY_EPOCHS,
                   'classify_feature': None,
                   'model_path': str(workdir / f"{case['name']}-{run}.pkl")}
            result = run_side(PYSPACER, job, workdir, case['name'])
            if 'site-packages' not in result['spacer']:
                raise RuntimeError(f"pyspacer side ran {result['spacer']}")
            accs.append(result['acc'])
            print(case['name'], run, result['acc'], flush=True)
        cases[case['name']] = {
            'pyspacer_val_accs': accs,
            'pyspacer_mean_val_acc': sum(accs) / len(accs),
            'val_labels': result['val_labels']}
    out = {'made_by': 'benchmarks/train.py --parity-fixture with pyspacer'
                      ' 0.14.0 (.venv-pyspacer)',
           'data': PARITY_DATA, 'epochs': PARITY_EPOCHS, 'cases': cases}
    out_path.write_text(json.dumps(out, indent=1) + '\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--labels', type=int, nargs='+',
                        default=[10000, 60000])
    parser.add_argument('--types', nargs='+', default=['MLP', 'LR'])
    parser.add_argument('--epochs', type=int, default=10)
    parser.add_argument('--json', help='also write the results here')
    parser.add_argument('--parity-fixture', type=Path,
                        help="write pyspacer's parity accuracies here instead")
    args = parser.parse_args()
    if not PYSPACER.exists():
        sys.exit("No .venv-pyspacer: run bash benchmarks/pyspacer_env.sh")
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))

    with tempfile.TemporaryDirectory(prefix='spacer-bench-') as tmp:
        workdir = Path(tmp)
        if args.parity_fixture:
            parity_fixture(args.parity_fixture, workdir)
            return
        classify_path = classify_file(workdir)
        rows = []
        for n_labels in args.labels:
            for clf_type in args.types:
                rows.append(compare(n_labels, clf_type, args.epochs, workdir,
                                    classify_path))
                print_row(rows[-1])
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == '__main__':
    main()
