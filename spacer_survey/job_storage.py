"""Where the main job keeps what its tasks read and write.

The tasks' messages carry DataLocations, so whichever worker runs a task
reads and writes the place this module names:

- `LocalFiles` (the default): the photos where they lie, features,
  classifier and valresult under the output folder. A fleet must then share
  the disk.
- `S3Objects` (`--storage s3://BUCKET/PREFIX`): the producer uploads each
  photo once to `PREFIX/images/<name>` (a key already there with the same
  size is kept) and, when a fleet runs the tasks, the extractor's local
  data files to `PREFIX/extractors/<sha256>/<file>`; features
  (`PREFIX/features/<extractor id>/<name>.featurevector`), the classifier
  (`PREFIX/classifier.pkl`), `PREFIX/valresult.json` and the records that
  let a re-run resume lie under PREFIX too. Workers share only the bucket.

Both speak in keys relative to their root (`classifier.pkl`,
`features/...`); the CSVs and the report always go to the local output
folder. Writes of records are atomic (a rename locally, a PUT on S3).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from spacer.data_classes import DataLocation
from spacer.extractors import FeatureExtractor

STORAGE_OPTION = '--storage'
UPLOAD_THREADS = 8
_S3_URL = re.compile(r's3://(?P<bucket>[^/]+)(?:/(?P<prefix>.*))?')
# What spacer's S3 storage accepts as a bucket name (spacer.storage.s3).
_BUCKET = re.compile(r'[a-zA-Z0-9.\-_]{1,255}')


def safe_relative(name: str) -> str:
    """A CSV's image name as a relative key: sub-folders kept (equal file
    names in two folders don't collide), no '..' or empty parts."""
    relative = name.strip().replace('\\', '/').lstrip('/')
    return '/'.join(part for part in relative.split('/')
                    if part not in ('', '.', '..'))


@dataclass(frozen=True)
class S3Place:
    bucket: str
    prefix: str     # no leading or trailing '/'; '' is the bucket's root


def parse_storage_url(text: str) -> S3Place:
    """`s3://BUCKET/PREFIX` -> S3Place; ValueError naming the option else."""
    match = _S3_URL.fullmatch(text.strip())
    if not match or not _BUCKET.fullmatch(match['bucket']):
        raise ValueError(f"{STORAGE_OPTION} must look like s3://BUCKET/PREFIX "
                         f"(an S3 bucket and a key prefix), not {text!r}")
    prefix = '/'.join(part for part in (match['prefix'] or '').split('/') if part)
    return S3Place(match['bucket'], prefix)


class LocalFiles:
    """The output folder: workers read the photos where they lie."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def place(self, key: str) -> Path:
        """Where `key` lies, as the user is shown it."""
        return self.root / key

    def location(self, key: str) -> DataLocation:
        return DataLocation('filesystem', str(self.root / key))

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def read_text(self, key: str) -> str | None:
        try:
            return (self.root / key).read_text(encoding='utf-8')
        except (OSError, ValueError):
            return None

    def write_text(self, key: str, text: str) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + '.part')
        partial.write_text(text, encoding='utf-8')
        partial.replace(path)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def make_folder(self, key: str) -> None:
        (self.root / key).mkdir(parents=True, exist_ok=True)

    def photo_locations(self, photos: Iterable[tuple[str, Path]],
                        say: Callable[[str], None]) -> dict[str, DataLocation]:
        """Where workers read each (name, path) photo: where it lies."""
        return {name: DataLocation('filesystem', str(Path(path).resolve()))
                for name, path in photos}

    def published_extractor(self, extractor: Any) -> Any:
        """The extractor as workers load it: as it is."""
        return extractor

    def classifier_location(self, path: Path, sha256: str) -> DataLocation:
        """Where workers read a classifier given as a local file."""
        return DataLocation('filesystem', str(path))


class S3Objects:
    """Keys under PREFIX in one S3 bucket (the S3 settings: S3_ENDPOINT_URL,
    AWS_*); botocore's errors come out as OSError naming the object."""

    def __init__(self, place: S3Place):
        self.bucket, self.prefix = place.bucket, place.prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def place(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.key(key)}"

    def location(self, key: str) -> DataLocation:
        return DataLocation('s3', self.key(key), bucket_name=self.bucket)

    def _call(self, key: str, action: Callable[[Any], Any]) -> Any:
        # boto3 is loaded only when a job keeps its files on S3.
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        from spacer.storage.s3 import s3_client
        try:
            return action(s3_client())
        except (Boto3Error, BotoCoreError, ClientError) as err:
            raise OSError(f"{self.place(key)}: {err}") from err

    def size(self, key: str) -> int | None:
        """The object's size in bytes, None when there is none."""
        from botocore.exceptions import ClientError

        def head(client: Any) -> int | None:
            try:
                return client.head_object(Bucket=self.bucket, Key=self.key(key))['ContentLength']
            except ClientError as err:
                if err.response.get('ResponseMetadata', {}).get('HTTPStatusCode') == 404:
                    return None
                raise
        return self._call(key, head)

    def check_bucket(self) -> None:
        """Raise ValueError (bad input) when the bucket cannot be reached."""
        try:
            self._call('', lambda client: client.head_bucket(Bucket=self.bucket))
        except OSError as err:
            raise ValueError(f"{STORAGE_OPTION} s3://{self.bucket}/{self.prefix}: the "
                             f"bucket cannot be used: {err.__cause__ or err}") from err

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def read_text(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        def get(client: Any) -> bytes | None:
            try:
                return client.get_object(Bucket=self.bucket, Key=self.key(key))['Body'].read()
            except ClientError as err:
                if err.response.get('Error', {}).get('Code') in ('NoSuchKey', '404'):
                    return None
                raise
        body = self._call(key, get)
        if body is None:
            return None
        try:
            return body.decode('utf-8')
        except ValueError:
            return None

    def write_text(self, key: str, text: str) -> None:
        self._call(key, lambda client: client.put_object(
            Bucket=self.bucket, Key=self.key(key), Body=text.encode('utf-8')))

    def delete(self, key: str) -> None:
        self._call(key, lambda client: client.delete_object(
            Bucket=self.bucket, Key=self.key(key)))

    def make_folder(self, key: str) -> None:
        """S3 has no folders."""

    def upload(self, key: str, path: Path) -> DataLocation:
        """Put a local file at `key` unless an object of its size is there."""
        path = Path(path)
        if self.size(key) != path.stat().st_size:
            self._call(key, lambda client: client.upload_file(
                str(path), self.bucket, self.key(key)))
        return self.location(key)

    def photo_locations(self, photos: Iterable[tuple[str, Path]],
                        say: Callable[[str], None]) -> dict[str, DataLocation]:
        """Upload each (name, path) photo once to `images/<name>`."""
        from concurrent.futures import ThreadPoolExecutor
        photos = list(photos)
        if not photos:
            return {}
        say(f"Uploading {len(photos)} photos to {self.place('images/')} "
            "(those already there with the same size are kept).")
        # A request per photo at least: several in flight (a client per thread).
        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            locations = pool.map(
                lambda photo: self.upload(f"images/{safe_relative(photo[0])}", photo[1]),
                photos)
            return dict(zip((name for name, _ in photos), locations))

    def published_extractor(self, extractor: Any) -> Any:
        """The extractor with its local data files uploaded (keyed by their
        sha256), so workers on other hosts can load it. Its features'
        identity does not change: that ignores where the files lie."""
        data = extractor.serialize()
        locations = data.get('data_locations') or {}
        hashes = data.get('data_hashes') or {}
        changed = False
        for name, loc in locations.items():
            if loc.get('storage_type') != 'filesystem' or not hashes.get(name):
                continue
            file = Path(loc['key'])
            uploaded = self.upload(f"extractors/{hashes[name]}/{file.name}", file)
            locations[name] = uploaded.serialize()
            changed = True
        return FeatureExtractor.deserialize(data) if changed else extractor

    def classifier_location(self, path: Path, sha256: str) -> DataLocation:
        """A classifier given as a local file, uploaded once by content."""
        return self.upload(f"classifiers/{sha256}.pkl", path)


JobFiles = Union[LocalFiles, S3Objects]


def storage_for(url: str | None, say: Callable[[str], None] | None = None
                ) -> S3Objects | None:
    """The storage `--storage URL` names (None: the local output folder).
    Raises ValueError naming the option for a bad URL or bucket."""
    if url is None:
        return None
    storage = S3Objects(parse_storage_url(url))
    storage.check_bucket()
    if say is not None:
        say(f"Photos, features and the classifier go to {storage.place('')}.")
    return storage


def record_of(files: JobFiles, key: str) -> dict:
    """A JSON record kept beside the artifacts, or {} when unreadable."""
    text = files.read_text(key)
    try:
        record = json.loads(text) if text is not None else {}
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}
