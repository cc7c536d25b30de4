"""The fleet test's data, run on the host with the project's virtual
environment (the producer's side):

  workload.py extract-prepare WORK N [P] photos (P points each) and the extractor's weights onto
                                        the S3 service, one extract_features
                                        message per photo in WORK/messages/
  workload.py extract-check WORK N      every feature file is on S3, loads, and
                                        equals an extraction made here
  workload.py survey WORK N             a small survey (photos, annotations.csv,
                                        points.csv) for the main job
  workload.py same-predictions A B      two predictions.csv hold the same rows

S3: SPACER_S3_ENDPOINT_URL, SPACER_AWS_*; bucket FLEET_BUCKET.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PREFIX = 'fleet-test/extract'
SIZE = (480, 360)          # width, height
POINTS = 12


def s3_client():
    import boto3
    return boto3.client(
        's3', endpoint_url=os.environ['SPACER_S3_ENDPOINT_URL'],
        region_name=os.environ.get('SPACER_AWS_REGION', 'us-east-1'),
        aws_access_key_id=os.environ['SPACER_AWS_ACCESS_KEY_ID'],
        aws_secret_access_key=os.environ['SPACER_AWS_SECRET_ACCESS_KEY'])


def photo(rng: np.random.Generator, labels: np.ndarray) -> Image.Image:
    """A textured photo; each of the 2x2 regions painted by its label."""
    width, height = SIZE
    palette = np.array([[0.8, 0.75, 0.6], [0.6, 0.3, 0.5], [0.3, 0.5, 0.3],
                        [0.7, 0.5, 0.3], [0.3, 0.4, 0.7]], np.float32)
    pixels = np.empty((height, width, 3), np.float32)
    for i in range(2):
        for j in range(2):
            label = labels[i * 2 + j]
            block = (slice(i * height // 2, (i + 1) * height // 2),
                     slice(j * width // 2, (j + 1) * width // 2))
            shape = (height // 2, width // 2, 1)
            freq = 2 + label * 3
            yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
            stripes = 0.15 * np.sin((xx + yy * (label % 2)) / freq)[..., None]
            noise = rng.normal(0, 0.08, shape)
            pixels[block] = palette[label] + stripes + noise
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))


def region_label(labels, row, col):
    width, height = SIZE
    return labels[(row * 2 // height) * 2 + col * 2 // width]


def rowcols(rng):
    width, height = SIZE
    return [(int(r), int(c)) for r, c in zip(rng.integers(0, height, POINTS),
                                             rng.integers(0, width, POINTS))]


def extractor_on_s3(work: Path, s3, bucket: str):
    """The weights-free default extractor, its weights put on S3."""
    from spacer.data_classes import DataLocation
    from spacer.extractors import EfficientNetExtractor
    from spacer.extractors.default_weights import default_extractor
    local = default_extractor(work / 'weights')
    path = Path(local.data_locations['weights'].key)
    key = f'{PREFIX}/weights/{path.name}'
    s3.upload_file(str(path), bucket, key)
    return local, EfficientNetExtractor(
        data_locations={'weights': DataLocation('s3', key, bucket_name=bucket)},
        data_hashes=dict(local.data_hashes))


def extract_prepare(work: Path, count: int) -> None:
    from spacer.data_classes import DataLocation
    from spacer.messages import ExtractFeaturesMsg
    bucket = os.environ['FLEET_BUCKET']
    s3 = s3_client()
    _local, extractor = extractor_on_s3(work, s3, bucket)
    rng = np.random.default_rng(7)
    messages = work / 'messages'
    messages.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        name = f'photo_{number:03d}'
        buffer = io.BytesIO()
        photo(rng, rng.integers(0, 5, 4)).save(buffer, 'JPEG', quality=90)
        s3.put_object(Bucket=bucket, Key=f'{PREFIX}/images/{name}.jpg',
                      Body=buffer.getvalue())
        msg = ExtractFeaturesMsg(
            job_token=f'fleet-test-{name}', extractor=extractor, rowcols=rowcols(rng),
            image_loc=DataLocation('s3', f'{PREFIX}/images/{name}.jpg', bucket_name=bucket),
            feature_loc=DataLocation('s3', f'{PREFIX}/features/{name}.featurevector',
                                     bucket_name=bucket))
        (messages / f'{name}.json').write_text(json.dumps(msg.serialize()))
    print(f"{count} photos and the extractor's weights on s3://{bucket}/{PREFIX}/, "
          f"{count} messages in {messages}")


def extract_check(work: Path, count: int) -> None:
    """Every photo's features are on S3, and (for two of them) equal to an
    extraction made here from the same message."""
    from spacer.data_classes import DataLocation, ImageFeatures
    from spacer.messages import ExtractFeaturesMsg
    from spacer.tasks import extract_features
    bucket = os.environ['FLEET_BUCKET']
    s3 = s3_client()
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f'{PREFIX}/features/')
    keys = sorted(o['Key'] for o in listing.get('Contents', []))
    expected = [f'{PREFIX}/features/photo_{n:03d}.featurevector' for n in range(count)]
    missing = sorted(set(expected) - set(keys))
    if missing:
        sys.exit(f"FAIL: {len(missing)} of {count} feature files missing on S3: {missing[:5]}")
    for name in ('photo_000', f'photo_{count - 1:03d}'):
        msg = ExtractFeaturesMsg.deserialize(
            json.loads((work / 'messages' / f'{name}.json').read_text()))
        fleet = ImageFeatures.load(msg.feature_loc)
        local_loc = DataLocation('filesystem', str(work / f'{name}.local.featurevector'))
        here = ExtractFeaturesMsg(job_token=msg.job_token + '-here', extractor=msg.extractor,
                                  rowcols=msg.rowcols, image_loc=msg.image_loc,
                                  feature_loc=local_loc)
        extract_features(here)
        mine = ImageFeatures.load(local_loc)
        a = np.array([p.data for p in fleet.point_features])
        b = np.array([p.data for p in mine.point_features])
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-5):
            sys.exit(f"FAIL: {name}: features from the fleet differ from an extraction here "
                     f"(max difference {np.abs(a - b).max() if a.shape == b.shape else a.shape})")
    print(f"{count} of {count} feature files on S3; two checked equal to an extraction here")


LABELS = ['Sand', 'CCA', 'Turf', 'Porites', 'Acropora']


def survey(work: Path, count: int) -> None:
    """count photos: three quarters annotated (annotations.csv), the rest to
    classify (points.csv)."""
    folder = work / 'survey'
    images = folder / 'images'
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    annotated = max(2, count * 3 // 4)
    annotations, points = [], []
    for number in range(count):
        name = f'survey_{number:03d}.jpg'
        labels = rng.permutation(5)[:4] if number % 2 else rng.integers(0, 5, 4)
        photo(rng, labels).save(images / name, quality=90)
        for row, col in rowcols(rng):
            if number < annotated:
                annotations.append([name, row, col, LABELS[region_label(labels, row, col)]])
            else:
                points.append([name, row, col])
    with open(folder / 'annotations.csv', 'w', newline='') as fp:
        csv.writer(fp).writerows([['Name', 'Row', 'Column', 'Label'], *annotations])
    with open(folder / 'points.csv', 'w', newline='') as fp:
        csv.writer(fp).writerows([['Name', 'Row', 'Column'], *points])
    print(f"survey: {count} photos ({annotated} annotated, {len(annotations)} points; "
          f"{len(points)} points to classify) in {folder}")


def same_predictions(a: Path, b: Path) -> None:
    def rows(path):
        with open(path, newline='') as fp:
            return sorted(tuple(r) for r in csv.reader(fp))
    ra, rb = rows(a), rows(b)
    if ra != rb:
        diff = sorted(set(ra) ^ set(rb))[:5]
        sys.exit(f"FAIL: predictions differ ({len(ra)} vs {len(rb)} rows), e.g. {diff}")
    digest = hashlib.sha256(repr(ra).encode()).hexdigest()[:12]
    print(f"predictions equal: {len(ra) - 1} rows, sha256 {digest}")


if __name__ == '__main__':
    command, *args = sys.argv[1:]
    if command == 'extract-prepare':
        if len(args) > 2:
            POINTS = int(args[2])
        extract_prepare(Path(args[0]), int(args[1]))
    elif command == 'extract-check':
        extract_check(Path(args[0]), int(args[1]))
    elif command == 'survey':
        survey(Path(args[0]), int(args[1]))
    elif command == 'same-predictions':
        same_predictions(Path(args[0]), Path(args[1]))
    else:
        sys.exit(__doc__)
