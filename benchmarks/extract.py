"""
Feature extraction, ours against pyspacer 0.14.0, side by side.

Both run ``spacer.tasks.extract_features`` (the same API) on the same
12-megapixel JPEG with the same random EfficientNet-B0 weights (BatchNorm
statistics calibrated, so features are realistic), at 30, 200 and 1000
points. Each (implementation, point count) runs in its own process, so peak
memory is that configuration's alone; the two implementations alternate so
that a busy machine slows both alike. Ours is timed as a worker runs it
(the model stays loaded between images; the first, cold call is reported
apart); pyspacer rebuilds its model for every image, which is its design.

Prints seconds per image, patches per second, peak RSS, the ratios, and
the largest absolute difference between the two feature files. Figures
only; nothing passes or fails.

Usage:
    .venv/bin/python benchmarks/extract.py [--points 30 200 1000]
        [--repeats 3] [--device cpu|auto] [--only ours|pyspacer]
    python3 benchmarks/extract.py --device cuda --points 30 200 [--queue ...]
pyspacer's side needs .venv-pyspacer (bash benchmarks/pyspacer_env.sh).
With --device cuda, benchmarks/extract_gpu.py measures GPU throughput
(images/s from JPEG bytes to stored features) instead; its options pass
through.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS_PY = ROOT / '.venv' / 'bin' / 'python'
PYSPACER_PY = ROOT / '.venv-pyspacer' / 'bin' / 'python'


# ---- the worker: runs in either environment -----------------------------

def worker(args) -> None:
    """Time extract_features in this process; print one JSON line."""
    import numpy as np
    from spacer.data_classes import DataLocation
    from spacer.extractors import EfficientNetExtractor
    from spacer.messages import ExtractFeaturesMsg
    from spacer.tasks import extract_features

    import spacer
    rowcols = [tuple(rc) for rc in json.loads(Path(args.rowcols).read_text())]
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', args.weights)},
        data_hashes={'weights': args.weights_hash})

    def run(feature_path: str) -> float:
        msg = ExtractFeaturesMsg(
            job_token='bench', extractor=extractor, rowcols=rowcols,
            image_loc=DataLocation('filesystem', args.image),
            feature_loc=DataLocation('filesystem', feature_path))
        start = time.perf_counter()
        extract_features(msg)
        return time.perf_counter() - start

    cold = run(args.features)
    times = [run(args.features) for _ in range(args.repeats)]
    peak_kib = peak_rss_kib()
    device = 'cpu'
    if 'torch' in sys.modules:
        import torch
        device = 'cuda' if torch.cuda.is_available() and \
            os.environ.get('SPACER_DEVICE', 'auto') != 'cpu' else 'cpu'
    print(json.dumps({
        'cold_s': cold, 'times_s': times, 'peak_rss_mib': peak_kib / 1024,
        'module': spacer.__file__, 'device': device,
        'npoints': len(rowcols), 'checksum': float(np.load(
            args.features)['feat'].sum())}))


def peak_rss_kib() -> int:
    """This process's peak resident memory. Not ru_maxrss: a child starts
    with its parent's high-water mark, while VmHWM starts afresh at exec."""
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ---- the driver -----------------------------------------------------------

def make_inputs(folder: Path, points: list[int]):
    """A 4000 x 3000 JPEG built from a real photo, random weights, points."""
    import hashlib

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    from spacer.extractors.default_weights import write_default_weights

    # Inputs already in a --keep folder are reused (same seeds, same bytes).
    rng = np.random.default_rng(0)
    image = folder / 'survey_12mp.jpg'
    if not image.exists():
        photo = Image.fromarray(load_sample_images().images[0])
        big = photo.resize((4000, 3000), Image.BICUBIC)
        noisy = np.asarray(big).astype(np.int16) + rng.integers(
            -12, 13, (3000, 4000, 3), dtype=np.int16)
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
            image, quality=90)

    weights = folder / 'efficientnet_b0_random.pt'
    if not weights.exists():
        t0 = time.perf_counter()
        write_default_weights(weights, seed=0)
        print(f'weights: random EfficientNet-B0, BatchNorm calibrated'
              f' in {time.perf_counter() - t0:.1f} s')
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()

    rowcol_files = {}
    for n in points:
        pts = np.stack([rng.integers(0, 3000, n), rng.integers(0, 4000, n)],
                       axis=1)
        path = folder / f'rowcols_{n}.json'
        path.write_text(json.dumps(pts.tolist()))
        rowcol_files[n] = path
    return image, weights, digest, rowcol_files


def run_worker(impl: str, folder: Path, image, weights, digest, rowcols,
               repeats: int, device: str) -> dict:
    env = dict(os.environ)
    env['SPACER_EXTRACTORS_CACHE_DIR'] = str(folder / 'cache')
    env.setdefault('OMP_NUM_THREADS', str(len(os.sched_getaffinity(0))))
    features = folder / f'{impl}_{rowcols.stem}.featurevector'
    if impl == 'ours':
        python, flags = str(OURS_PY), []
        env['SPACER_DEVICE'] = device
    else:
        # -P and a neutral cwd: this repository's spacer/ must not shadow
        # pyspacer's.
        python, flags = str(PYSPACER_PY), ['-P']
    cmd = [python, *flags, str(Path(__file__).resolve()), '--worker',
           '--image', str(image), '--weights', str(weights),
           '--weights-hash', digest, '--rowcols', str(rowcols),
           '--features', str(features), '--repeats', str(repeats)]
    out = subprocess.run(cmd, env=env, cwd=tempfile.gettempdir(),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f'{impl} worker failed:\n{out.stderr[-3000:]}')
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result['features'] = str(features)
    return result


def paired_forward(image, weights, digest, rounds: int = 5) -> None:
    """Forward pass alone, ours and pyspacer's network (efficientnet-pytorch,
    the code pyspacer adapted: eager NCHW, batches of 10) on the same 30
    patches, alternating, so a busy machine slows both alike."""
    import numpy as np
    import torch
    from efficientnet_pytorch import EfficientNet
    from PIL import Image

    from spacer.data_classes import DataLocation
    from spacer.extractors import EfficientNetExtractor
    from spacer.extractors.utils import crop_patches

    im = Image.open(image)
    rng = np.random.default_rng(1)
    patches = crop_patches(im, np.stack([rng.integers(0, 3000, 30),
                                         rng.integers(0, 4000, 30)], 1))
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(weights))},
        data_hashes={'weights': digest})
    ours, device, _ = extractor.warm_model()
    reference = EfficientNet.from_name('efficientnet-b0', num_classes=1275)
    reference.load_state_dict(
        torch.load(weights, weights_only=True)['net'])
    reference.eval()

    def run_ours():
        size = extractor.batch_size(device)
        return np.concatenate([extractor.compute_features(
            ours, patches[i:i + size]) for i in range(0, 30, size)])

    def run_reference():
        x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
        with torch.no_grad():
            return torch.cat([reference._avg_pooling(
                reference.extract_features(x[i:i + 10])).flatten(1)
                for i in range(0, 30, 10)]).numpy()

    timings = {'ours': [], 'reference': []}
    for _ in range(rounds):
        for name, fn in (('ours', run_ours), ('reference', run_reference)):
            start = time.perf_counter()
            out = fn()
            timings[name].append((time.perf_counter() - start) / 30 * 1000)
            if name == 'ours':
                ours_out = out
    diff = np.abs(ours_out - run_reference()).max()
    ours_ms = float(np.median(timings['ours']))
    ref_ms = float(np.median(timings['reference']))
    print(f'forward only, 30 patches, {type(ours).__name__} on {device}:'
          f' ours {ours_ms:.1f} ms/patch, pyspacer\'s network'
          f' {ref_ms:.1f} ms/patch, {ref_ms / ours_ms:.2f}x,'
          f' max |diff| {diff:.1e}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--worker', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--image'), parser.add_argument('--weights')
    parser.add_argument('--weights-hash'), parser.add_argument('--rowcols')
    parser.add_argument('--features')
    parser.add_argument('--points', type=int, nargs='+',
                        default=[30, 200, 1000])
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed warm calls per configuration (ours);'
                             ' pyspacer gets fewer at 1000 points')
    parser.add_argument('--device', default='cpu',
                        help="our device: cpu, cuda or auto")
    parser.add_argument('--only', choices=['ours', 'pyspacer'])
    parser.add_argument('--keep', help='folder for inputs and outputs')
    args, rest = parser.parse_known_args()
    if args.worker:
        worker(args)
        return
    if args.device.startswith('cuda'):
        # On a GPU the question is throughput over many images, measured
        # in this interpreter (the one with CUDA torch): extract_gpu.py.
        sys.path.insert(0, str(ROOT / 'benchmarks'))
        import extract_gpu
        extract_gpu.main(['--device', args.device, '--points', *map(str, args.points),
                          *(['--keep', args.keep] if args.keep else []), *rest])
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    import numpy as np

    impls = [args.only] if args.only else ['ours', 'pyspacer']
    if 'pyspacer' in impls and not PYSPACER_PY.exists():
        print('No .venv-pyspacer: run bash benchmarks/pyspacer_env.sh;'
              ' benchmarking ours only.')
        impls = ['ours']
    folder = Path(args.keep or tempfile.mkdtemp(prefix='spacer-bench-'))
    folder.mkdir(parents=True, exist_ok=True)
    image, weights, digest, rowcol_files = make_inputs(folder, args.points)
    print(f'image: {image} (4000 x 3000 JPEG, '
          f'{image.stat().st_size / 1e6:.1f} MB); cpus:'
          f' {len(os.sched_getaffinity(0))}; our device: {args.device}')

    if 'ours' in impls:   # the one-time ONNX export, outside the timings
        t0 = time.perf_counter()
        run_worker('ours', folder, image, weights, digest,
                   rowcol_files[args.points[0]], 0, args.device)
        print(f'ours, first process ever (model build, ONNX export if CPU):'
              f' {time.perf_counter() - t0:.1f} s')

    if 'ours' in impls and args.device == 'cpu':
        paired_forward(image, weights, digest)

    results: dict[int, dict[str, dict]] = {}
    for n in args.points:
        results[n] = {}
        for impl in impls:
            repeats = args.repeats if impl == 'ours' else \
                max(1, args.repeats if n <= 200 else 1)
            results[n][impl] = run_worker(impl, folder, image, weights,
                                          digest, rowcol_files[n], repeats,
                                          args.device)

    print()
    header = (f"{'points':>6} {'impl':>9} {'device':>6} {'cold s':>7}"
              f" {'s/image':>8} {'patch/s':>8} {'peak MiB':>9}")
    print(header)
    print('-' * len(header))
    for n, by_impl in results.items():
        for impl, r in by_impl.items():
            per_image = float(np.median(r['times_s']))
            r['per_image'] = per_image
            print(f"{n:>6} {impl:>9} {r['device']:>6} {r['cold_s']:>7.2f}"
                  f" {per_image:>8.3f} {n / per_image:>8.1f}"
                  f" {r['peak_rss_mib']:>9.0f}")
    if len(impls) == 2:
        print()
        print(f"{'points':>6} {'speed-up':>9} {'cold speed-up':>14}"
              f" {'memory ratio':>13} {'max |diff|':>11}")
        for n, by_impl in results.items():
            ours, ref = by_impl['ours'], by_impl['pyspacer']
            diff = np.abs(np.load(ours['features'])['feat']
                          - np.load(ref['features'])['feat']).max()
            print(f"{n:>6} {ref['per_image'] / ours['per_image']:>8.2f}x"
                  f" {ref['cold_s'] / ours['cold_s']:>13.2f}x"
                  f" {ours['peak_rss_mib'] / ref['peak_rss_mib']:>13.2f}"
                  f" {diff:>11.2e}")
        print('speed-up: pyspacer s/image / ours s/image (warm worker);'
              ' cold: first call in a fresh process each.')
    print(f'inputs and feature files: {folder}')


if __name__ == '__main__':
    main()
