"""
GPU extraction, measured: correctness against the CPU, then images/s and
patches/s from the bytes of 12-MP JPEG files to stored feature files, then
the same through the queue (a real Redis and a real ``spacer worker``).

Run by ``benchmarks/extract.py --device cuda`` (or directly) with the
interpreter that has CUDA torch. Everything is made here: distinct 12-MP
JPEGs (a real photo resized, shifted and noised per image) and random
EfficientNet-B0 weights with calibrated BatchNorm (realistic features).

Sections (each prints its figures; nothing passes or fails):

- correctness: EfficientNet-B0 and a full-size VGG16 on CUDA against
  torch on the CPU (and B0 against the ONNX Runtime CPU engine); nvJPEG's
  pixels and features against Pillow's.
- profile: each stage alone: decoding (Pillow on N threads, nvJPEG),
  cropping on the device, the network at the GPU batch size.
- direct: ``spacer.extractors.device_pipeline.extract_many`` over many
  images, patches batched across images, decode ahead on threads, features
  stored by a thread pool; and one ``extract_features`` call at a time.
- queue (``--queue``): redis-server (``--redis-server PATH``) and
  ``spacer worker --queues extract --device cuda`` with several pool
  processes; ``client.submit`` of every image, wall time to the last result.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEIGHT, WIDTH = 3000, 4000
DEVICE = 'cuda'  # --device; 'cpu' only to smoke-test this script


def log(*parts) -> None:
    print(*parts, flush=True)


def sync() -> None:
    import torch
    if DEVICE.startswith('cuda'):
        torch.cuda.synchronize()


# ---- inputs -----------------------------------------------------------------

def _one_jpeg(args) -> str:
    seed, path = args
    from PIL import Image
    from sklearn.datasets import load_sample_images
    rng = np.random.default_rng(seed)
    photo = load_sample_images().images[seed % 2]
    big = np.asarray(Image.fromarray(photo).resize((WIDTH + 200, HEIGHT + 150),
                                                   Image.BILINEAR))
    top, left = int(rng.integers(0, 150)), int(rng.integers(0, 200))
    crop = big[top:top + HEIGHT, left:left + WIDTH].astype(np.int16)
    noisy = crop + rng.integers(-12, 13, crop.shape, dtype=np.int16)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def make_jpegs(folder: Path, count: int) -> list[Path]:
    paths = [folder / f'survey_{i:03d}.jpg' for i in range(count)]
    todo = [(i, str(p)) for i, p in enumerate(paths) if not p.exists()]
    with ProcessPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        list(pool.map(_one_jpeg, todo))
    return paths


def make_weights(folder: Path) -> tuple[Path, str]:
    from spacer.extractors.default_weights import write_default_weights
    path = folder / 'efficientnet_b0_random.pt'
    if not path.exists():
        write_default_weights(path, seed=0)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def b0(weights: Path, digest: str):
    from spacer.data_classes import DataLocation
    from spacer.extractors import EfficientNetExtractor
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(weights))},
        data_hashes={'weights': digest})


def random_points(n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return list(zip(rng.integers(0, HEIGHT, n).tolist(),
                    rng.integers(0, WIDTH, n).tolist()))


# ---- decoders ------------------------------------------------------------------

def pillow_decode(data: bytes, device: str):
    from spacer.extractors.device_pipeline import image_tensor
    from spacer.storage.images import decode_image
    return image_tensor(decode_image(data, 'bench'), device)


def nvjpeg_decode(data: bytes, device: str):
    from spacer.extractors.device_images import decode_jpeg_on_device
    return decode_jpeg_on_device(data, device)


def libjpeg_decode(data: bytes, device: str):
    """torchvision's CPU decoder (libjpeg-turbo, the GIL released)."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    from spacer.extractors.device_crop import image_to_device
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    hwc = decode_jpeg(raw, mode=ImageReadMode.RGB).permute(1, 2, 0)
    return image_to_device(hwc.contiguous().numpy(), device)


def nvjpeg_decode_batch(datas: list, device: str) -> list:
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg
    raws = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
    return [image.permute(1, 2, 0) for image in
            decode_jpeg(raws, mode=ImageReadMode.RGB, device=device)]


DECODERS = {'pillow': pillow_decode, 'libjpeg': libjpeg_decode,
            'nvjpeg': nvjpeg_decode}


def decoders() -> dict:
    """nvJPEG only on a GPU."""
    return DECODERS if DEVICE.startswith('cuda') else {'pillow': pillow_decode}


def pixel_equality(jpegs: list[Path]) -> dict:
    """Whether torchvision's CPU decoder gives Pillow's pixels exactly."""
    from PIL import Image
    unequal = 0
    for path in jpegs:
        pil = np.asarray(Image.open(path).convert('RGB'))
        tv = libjpeg_decode(path.read_bytes(), 'cpu').numpy()
        unequal += int(not np.array_equal(pil, tv))
    return {'libjpeg_vs_pillow_images_differing': unequal,
            'libjpeg_vs_pillow_images_compared': len(jpegs)}


# ---- correctness ------------------------------------------------------------------

def correctness(folder: Path, jpeg: Path, weights: Path, digest: str) -> dict:
    import torch
    from PIL import Image

    from spacer import config
    from spacer.extractors import warm

    out = {}
    im = Image.open(jpeg)
    im.load()
    points = random_points(200, 7) + [(0, 0), (HEIGHT - 1, WIDTH - 1)]
    extractor = b0(weights, digest)
    feats = {}
    for name, device, engine in (('cuda', 'cuda', 'torch'),
                                 ('cpu-torch', 'cpu', 'torch'),
                                 ('cpu-onnx', 'cpu', 'auto')):
        config.DEVICE, config.EXTRACT_ENGINE = device, engine
        warm.clear()
        feats[name] = extractor(im, points)[0].feat
    config.DEVICE, config.EXTRACT_ENGINE = 'cuda', 'auto'
    warm.clear()
    out['b0_cuda_vs_cpu_torch'] = float(np.abs(feats['cuda'] - feats['cpu-torch']).max())
    out['b0_cuda_vs_cpu_onnx'] = float(np.abs(feats['cuda'] - feats['cpu-onnx']).max())
    out['b0_feature_scale'] = float(np.abs(feats['cpu-torch']).max())
    # The same patches with TF32 allowed in cuDNN (off in TorchEngine).
    model, _, _ = extractor.warm_model()
    from spacer.extractors.device_crop import crop_on_device
    from spacer.extractors.device_pipeline import image_tensor
    from spacer.extractors.base import unique_points
    unique, inverse = unique_points(points)
    patches = crop_on_device(image_tensor(im, 'cuda'), unique, 224)
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=True):
        x = patches.permute(0, 3, 1, 2).float().div_(255).contiguous(
            memory_format=torch.channels_last)
        tf32 = model.model(x).float().cpu().numpy()[inverse]
    out['b0_cuda_tf32_vs_cpu_torch'] = float(np.abs(tf32 - feats['cpu-torch']).max())

    data = jpeg.read_bytes()
    pil = np.asarray(im.convert('RGB'))
    nv = nvjpeg_decode(data, 'cuda').cpu().numpy()
    diff = np.abs(pil.astype(np.int16) - nv.astype(np.int16))
    out['nvjpeg_pixels_max_diff'] = int(diff.max())
    out['nvjpeg_pixels_mean_diff'] = float(diff.mean())
    out['nvjpeg_pixels_equal_fraction'] = float((diff == 0).all(axis=2).mean())
    model, device, _ = extractor.warm_model()
    from spacer.extractors.device_pipeline import features_on_device
    nv_feats = features_on_device(extractor, model, device,
                                  torch.from_numpy(nv).cuda(), points)
    out['nvjpeg_features_max_diff'] = float(np.abs(nv_feats - feats['cuda']).max())

    out.update(vgg16_correctness(folder))
    out.update(pixel_equality(sorted(folder.glob('survey_*.jpg'))))
    for key, value in out.items():
        log(f'  {key}: {value}')
    return out


def vgg16_correctness(folder: Path) -> dict:
    """Full-size VGG16 (random He weights, Caffe files) on CUDA vs CPU."""
    from PIL import Image

    from spacer import config
    from spacer.data_classes import DataLocation
    from spacer.extractors import warm
    from spacer.extractors.vgg16 import VGG16CaffeExtractor
    from tests.extractors.test_vgg16_files import (
        VGGConfig, caffemodel_bytes, random_weights)

    cfg = VGGConfig()
    definition = folder / 'deploy.prototxt'
    model = folder / 'vgg16.caffemodel'
    if not model.exists():
        definition.write_text(cfg.prototxt())
        model.write_bytes(caffemodel_bytes(cfg, random_weights(cfg, seed=3)))
    extractor = VGG16CaffeExtractor(data_locations=dict(
        definition=DataLocation('filesystem', str(definition)),
        weights=DataLocation('filesystem', str(model))))
    im = Image.open(folder / 'survey_000.jpg')
    points = random_points(24, 11) + [(0, 0)]
    feats = {}
    for device in ('cuda', 'cpu'):
        config.DEVICE = device
        warm.clear()
        feats[device] = extractor(im, points)[0].feat
    config.DEVICE = 'cuda'
    warm.clear()
    return {'vgg16_cuda_vs_cpu': float(np.abs(feats['cuda'] - feats['cpu']).max()),
            'vgg16_feature_scale': float(np.abs(feats['cpu']).max())}


# ---- profile ------------------------------------------------------------------------

def profile(jpegs: list[Path], extractor, threads: int) -> dict:
    import torch

    from spacer.extractors.device_crop import crop_on_device

    datas = [p.read_bytes() for p in jpegs]
    out = {}
    for name, decode in decoders().items():
        workers = 1 if name == 'nvjpeg' else threads
        decode(datas[0], DEVICE)
        sync()
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda d: decode(d, DEVICE), datas))
        sync()
        out[f'decode_{name}_{workers}threads_images_per_s'] = \
            len(datas) / (time.perf_counter() - start)
    if 'nvjpeg' in decoders():
        from torchvision.io import decode_jpeg
        raws = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        decode_jpeg(raws[:2], device=DEVICE)
        sync()
        start = time.perf_counter()
        for i in range(0, len(raws), 16):
            decode_jpeg(raws[i:i + 16], device=DEVICE)
        sync()
        out['decode_nvjpeg_batched16_images_per_s'] = \
            len(raws) / (time.perf_counter() - start)

    image = pillow_decode(datas[0], DEVICE)
    points = np.array(random_points(256, 3))
    crop_on_device(image, points, 224)
    sync()
    start = time.perf_counter()
    for _ in range(20):
        crop_on_device(image, points, 224)
    sync()
    out['crop_256_patches_ms'] = (time.perf_counter() - start) / 20 * 1000

    model, device, _ = extractor.warm_model()
    patches = crop_on_device(image, points, 224)
    for batch in (30, 256):
        x = patches[:batch]
        extractor.compute_features_on_device(model, x)
        sync()
        start = time.perf_counter()
        for _ in range(20):
            extractor.compute_features_on_device(model, x)
        sync()
        out[f'forward_b0_batch{batch}_patches_per_s'] = \
            batch * 20 / (time.perf_counter() - start)
    for key, value in out.items():
        log(f'  {key}: {value:.1f}')
    return out


# ---- direct throughput -------------------------------------------------------------------

def direct(jpegs: list[Path], extractor, n_images: int, points: int,
           decoder: str, threads: int, out_dir: Path) -> dict:
    """extract_many from file bytes to stored feature files."""
    from spacer.data_classes import DataLocation
    from spacer.extractors.device_pipeline import extract_many

    decode = DECODERS[decoder]
    if decoder == 'nvjpeg':
        threads = 2  # reading files; nvJPEG itself runs one call at a time
    rowcols = [random_points(points, i) for i in range(len(jpegs))]

    def items(count):
        for i in range(count):
            k = i % len(jpegs)
            # The bytes are read inside decode, so the file read is timed.
            yield jpegs[k], rowcols[k]

    def read_and_decode(path, device):
        return decode(path.read_bytes(), device)

    batched = {}
    if decoder == 'nvjpeg':  # nvJPEG decodes 16 files per call
        batched = dict(decode_batch=lambda paths, device: nvjpeg_decode_batch(
            [p.read_bytes() for p in paths], device), images_per_decode=16)

    def run(count) -> float:
        start = time.perf_counter()
        with ThreadPoolExecutor(4) as store_pool:
            stores = [store_pool.submit(features.store, DataLocation(
                'filesystem', str(out_dir / f'{decoder}_{points}_{index}.fv')))
                for index, features in extract_many(
                    extractor, items(count), decode=read_and_decode,
                    decode_threads=threads, **batched)]
            for future in stores:
                future.result()
        sync()
        return time.perf_counter() - start

    run(min(32, n_images))  # warm: model, cuDNN autotuning, thread pools
    seconds = run(n_images)
    result = {'mode': 'direct', 'decoder': decoder, 'points': points,
              'images': n_images, 'seconds': seconds,
              'images_per_s': n_images / seconds,
              'patches_per_s': n_images * points / seconds}
    log(f"  direct {decoder:>6} {points:>4} pts: {result['images_per_s']:7.1f} images/s,"
        f" {result['patches_per_s']:8.0f} patches/s ({n_images} images, {seconds:.2f} s)")
    return result


def one_at_a_time(jpegs: list[Path], extractor, points: int, decoder: str,
                  out_dir: Path, count: int = 24) -> dict:
    """``spacer.tasks.extract_features``, one message after another (what a
    single pool process does)."""
    from spacer import config
    from spacer.data_classes import DataLocation
    from spacer.messages import ExtractFeaturesMsg
    from spacer.tasks import extract_features

    config.JPEG_DECODER = decoder

    def msg(i):
        return ExtractFeaturesMsg(
            job_token=f'seq{i}', extractor=extractor,
            rowcols=random_points(points, i),
            image_loc=DataLocation('filesystem', str(jpegs[i % len(jpegs)])),
            feature_loc=DataLocation('filesystem', str(out_dir / f'seq_{i}.fv')))

    extract_features(msg(0))
    start = time.perf_counter()
    for i in range(count):
        extract_features(msg(i))
    seconds = time.perf_counter() - start
    config.JPEG_DECODER = 'pillow'
    result = {'mode': 'one_task_at_a_time', 'decoder': decoder, 'points': points,
              'images': count, 'seconds': seconds, 'images_per_s': count / seconds,
              'patches_per_s': count * points / seconds}
    log(f"  extract_features, one at a time, {decoder:>6} {points:>4} pts:"
        f" {result['images_per_s']:6.1f} images/s")
    return result


# ---- through the queue ---------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def queue_run(jpegs, weights, digest, redis_server: str, processes: int,
              decoder: str, points: int, n_images: int, out_dir: Path,
              log_dir: Path) -> dict:
    port = free_port()
    env = dict(os.environ)
    redis_env = dict(env)
    lib = Path(redis_server).parent / 'lib'
    if lib.is_dir():
        redis_env['LD_LIBRARY_PATH'] = str(lib)
    redis = subprocess.Popen(
        [redis_server, '--port', str(port), '--bind', '127.0.0.1', '--save', '',
         '--appendonly', 'no'], env=redis_env, stdout=subprocess.DEVNULL)
    url = f'redis://127.0.0.1:{port}/0'
    env.update(SPACER_BROKER_URL=url, SPACER_RESULT_BACKEND=url,
               SPACER_JPEG_DECODER=decoder, PYTHONPATH=str(ROOT))
    # the worker may read and write the run's own files only
    env.setdefault('SPACER_FILESYSTEM_ROOTS', os.pathsep.join(
        str(Path(p).resolve().parent) for p in (jpegs[0], weights, out_dir / 'x', log_dir / 'x')))
    worker_log = log_dir / f'worker_{processes}_{decoder}_{points}.log'
    worker = subprocess.Popen(
        [sys.executable, '-m', 'spacer_cli', 'worker', '--queues', 'extract',
         '--device', DEVICE, '--concurrency', str(processes), '--loglevel', 'WARNING'],
        env=env, cwd=ROOT, stdout=open(worker_log, 'w'), stderr=subprocess.STDOUT)
    try:
        os.environ.update(SPACER_BROKER_URL=url, SPACER_RESULT_BACKEND=url)
        from workers.client import Client
        from workers.app import make_app
        client = Client(make_app())
        extractor = b0(weights, digest)
        from spacer.data_classes import DataLocation
        from spacer.messages import ExtractFeaturesMsg

        def submit(tag, i):
            msg = ExtractFeaturesMsg(
                job_token=f'{tag}-{i}', extractor=extractor,
                rowcols=random_points(points, i),
                image_loc=DataLocation('filesystem', str(jpegs[i % len(jpegs)])),
                feature_loc=DataLocation('filesystem', str(out_dir / f'q_{tag}_{i}.fv')))
            return client.submit('extract_features', msg)

        def wait_all(ids):
            for task_id in ids:
                outcome = client.wait_result(task_id, timeout=300)
                if outcome.state != 'SUCCESS':
                    raise RuntimeError(f'{task_id}: {outcome.state} {outcome.error_message}')

        tag = f'{processes}{decoder}{points}'
        started = time.perf_counter()
        wait_all([submit(f'warm{tag}', i) for i in range(processes * 4)])
        warm_s = time.perf_counter() - started
        start = time.perf_counter()
        ids = [submit(tag, i) for i in range(n_images)]
        submit_s = time.perf_counter() - start
        wait_all(ids)
        seconds = time.perf_counter() - start
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        redis.terminate()
        redis.wait(10)
    result = {'mode': 'queue', 'processes': processes, 'decoder': decoder,
              'points': points, 'images': n_images, 'seconds': seconds,
              'submit_s': submit_s, 'start_and_warm_s': warm_s,
              'images_per_s': n_images / seconds,
              'patches_per_s': n_images * points / seconds}
    log(f"  queue {processes} processes {decoder:>6} {points:>4} pts:"
        f" {result['images_per_s']:7.1f} images/s ({n_images} images, {seconds:.2f} s;"
        f" submitting took {submit_s:.2f} s; start and warm-up {warm_s:.1f} s)")
    return result


# ---- main --------------------------------------------------------------------------------

def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cuda')
    parser.add_argument('--points', type=int, nargs='+', default=[30, 200])
    parser.add_argument('--images', type=int, default=48, help='distinct JPEGs made')
    parser.add_argument('--count', type=int, default=480,
                        help='images per direct run at 30 points (fewer at more points)')
    parser.add_argument('--threads', type=int, default=0,
                        help='decode threads (default: one per core)')
    parser.add_argument('--queue', action='store_true', help='also through the queue')
    parser.add_argument('--queue-processes', type=int, nargs='+', default=[4, 8])
    parser.add_argument('--queue-points', type=int, nargs='+', default=[30])
    parser.add_argument('--queue-count', type=int, default=96, help='images per queue run')
    parser.add_argument('--redis-server', default='redis-server')
    parser.add_argument('--skip', nargs='*', default=[],
                        choices=['correctness', 'profile', 'direct', 'sequential'])
    parser.add_argument('--keep', help='folder for inputs and outputs')
    parser.add_argument('--json', help='write every figure to this file')
    args = parser.parse_args(argv)

    import torch
    global DEVICE
    DEVICE = args.device
    if DEVICE.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('benchmarks/extract_gpu.py needs a CUDA device.')
    from spacer import config
    config.DEVICE = args.device
    config.EXTRACT_ENGINE = 'torch'  # on CPU (smoke tests): the same engine
    torch.backends.cudnn.benchmark = True

    folder = Path(args.keep or tempfile.mkdtemp(prefix='spacer-gpu-bench-'))
    folder.mkdir(parents=True, exist_ok=True)
    out_dir = folder / 'features'
    out_dir.mkdir(exist_ok=True)
    threads = args.threads or len(os.sched_getaffinity(0))
    t0 = time.perf_counter()
    jpegs = make_jpegs(folder, args.images)
    weights, digest = make_weights(folder)
    name = torch.cuda.get_device_name() if DEVICE.startswith('cuda') else 'CPU'
    log(f'{name}, torch {torch.__version__}, '
        f'{len(os.sched_getaffinity(0))} cpus; {len(jpegs)} distinct 4000x3000 JPEGs '
        f'(~{np.mean([p.stat().st_size for p in jpegs]) / 1e6:.1f} MB) and weights made in '
        f'{time.perf_counter() - t0:.1f} s')
    figures = {'device': name, 'torch': torch.__version__}
    extractor = b0(weights, digest)

    figures['runs'] = []

    def attempt(what, fn, *fn_args):
        """One measurement; a failure is printed and the others go on."""
        try:
            return fn(*fn_args)
        except Exception:  # noqa: BLE001 - a benchmark reports, never stops
            log(f'  {what} failed:\n{traceback.format_exc()}')
            return None

    if 'correctness' not in args.skip and DEVICE.startswith('cuda'):
        log('correctness (max |difference|):')
        figures['correctness'] = attempt('correctness', correctness, folder, jpegs[0],
                                         weights, digest)
    if 'profile' not in args.skip:
        log('profile (each stage alone):')
        figures['profile'] = attempt('profile', profile, jpegs[:32], extractor, threads)
    for points in args.points:
        count = max(64, args.count * 30 // points)
        if 'direct' not in args.skip:
            for decoder in decoders():
                figures['runs'].append(attempt(f'direct {decoder}', direct, jpegs,
                                               extractor, count, points, decoder,
                                               threads, out_dir))
        if 'sequential' not in args.skip:
            figures['runs'].append(attempt('one at a time', one_at_a_time, jpegs,
                                           extractor, points, 'pillow', out_dir))
    if args.queue:
        for points in args.queue_points:
            for processes in args.queue_processes:
                for decoder in ('pillow', 'nvjpeg'):
                    figures['runs'].append(attempt(
                        f'queue {processes} {decoder}', queue_run, jpegs, weights,
                        digest, args.redis_server, processes, decoder, points,
                        args.queue_count, out_dir, folder))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    log(f'total {time.perf_counter() - t0:.0f} s')


if __name__ == '__main__':
    main()
