"""Amazon S3 and S3-compatible stores (MinIO, moto) through boto3."""
from __future__ import annotations

import threading
from io import BytesIO

from spacer import config
from spacer.storage.base import RemoteStorage

_local = threading.local()


def s3_client():
    """A boto3 client per thread (clients are not shared across threads)."""
    settings = tuple(config.get(name) for name in (
        'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
        'AWS_PROFILE_NAME', 'AWS_ANONYMOUS', 'AWS_REGION', 'S3_ENDPOINT_URL'))
    cached = getattr(_local, 'client', None)
    if cached is not None and cached[0] == settings:
        return cached[1]
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    key_id, secret, token, profile, anonymous, region, endpoint = settings
    if anonymous:
        session = boto3.Session(region_name=region)
        client_config = Config(signature_version=UNSIGNED, retries={'mode': 'standard'})
    else:
        session = boto3.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            aws_session_token=token, profile_name=profile, region_name=region)
        client_config = Config(retries={'mode': 'standard'})
    client = session.client('s3', endpoint_url=endpoint, config=client_config)
    _local.client = (settings, client)
    return client


class S3Storage(RemoteStorage):
    """Keys are object keys in one bucket. A PUT is atomic on S3."""

    def __init__(self, bucket_name: str):
        self.bucket_name = bucket_name

    def store(self, key: str, stream: BytesIO) -> None:
        s3_client().put_object(Bucket=self.bucket_name, Key=key, Body=stream.getvalue())

    def _load_remote(self, key: str) -> BytesIO:
        from botocore.exceptions import ClientError
        try:
            response = s3_client().get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as e:
            if e.response.get('Error', {}).get('Code') in ('NoSuchKey', '404'):
                raise FileNotFoundError(
                    f"s3://{self.bucket_name}/{key} does not exist.") from e
            raise
        return BytesIO(response['Body'].read())

    def delete(self, key: str) -> None:
        s3_client().delete_object(Bucket=self.bucket_name, Key=key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError
        try:
            s3_client().head_object(Bucket=self.bucket_name, Key=key)
            return True
        except ClientError as e:
            if e.response['ResponseMetadata']['HTTPStatusCode'] == 404:
                return False
            raise
