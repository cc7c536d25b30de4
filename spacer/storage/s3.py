"""Amazon S3 and S3-compatible stores (MinIO, moto) through boto3."""
from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from io import BytesIO

from spacer import config
from spacer.exceptions import MessageError
from spacer.storage.remote import RemoteStorage

_local = threading.local()

# What botocore accepts (botocore.handlers.VALID_BUCKET / VALID_S3_ARN):
# checked here so a bad location is reported as bad input, naming it, instead
# of surfacing as botocore's ParamValidationError.
_VALID_BUCKET = re.compile(r'[a-zA-Z0-9.\-_]{1,255}')
_VALID_ARN = re.compile(
    r'arn:(aws).*:(s3|s3-object-lambda):[a-z\-0-9]*:[0-9]{12}:accesspoint[/:]'
    r'[a-zA-Z0-9\-.]{1,63}'
    r'|arn:(aws).*:s3-outposts:[a-z\-0-9]+:[0-9]{12}:outpost[/:]'
    r'[a-zA-Z0-9\-]{1,63}[/:]accesspoint[/:][a-zA-Z0-9\-]{1,63}')


def check_bucket_name(bucket_name: object) -> None:
    """Raise MessageError unless bucket_name is a name boto3 can address."""
    if isinstance(bucket_name, str) and (
            _VALID_BUCKET.fullmatch(bucket_name) or _VALID_ARN.fullmatch(bucket_name)):
        return
    raise MessageError(
        f"S3 bucket name {bucket_name!r} is not valid: expected 1-255 letters, digits,"
        " '.', '-' or '_' (or an access point ARN).")


def check_key(bucket_name: str, key: object) -> None:
    """Raise MessageError unless key can name an object."""
    if not isinstance(key, str) or not key:
        raise MessageError(
            f"S3 key {key!r} in bucket {bucket_name!r} is not valid:"
            " expected a non-empty string.")


@contextlib.contextmanager
def _param_errors(bucket_name: str, key: str) -> Iterator[None]:
    """botocore's refusal of a parameter, reported as bad input naming the location."""
    from botocore.exceptions import ParamValidationError
    try:
        yield
    except ParamValidationError as e:
        raise MessageError(f"S3 location s3://{bucket_name}/{key} is not valid: {e}") from e


def s3_client():
    """A boto3 client per thread (clients are not shared across threads),
    made anew when the AWS settings change."""
    from spacer import aws  # imports boto3

    settings = aws.current_settings()
    cached = getattr(_local, 'client', None)
    if cached is not None and cached[0] == settings:
        return cached[1]
    client = aws.create_aws_session().client(
        's3', region_name=config.get('AWS_REGION'), endpoint_url=aws.endpoint_url('s3'),
        config=aws.boto_config(retries={'mode': 'standard'}))
    _local.client = (settings, client)
    return client


class S3Storage(RemoteStorage):
    """Keys are object keys in one bucket. A PUT is atomic on S3."""

    storage_type = 's3'

    def __init__(self, bucket_name: str):
        check_bucket_name(bucket_name)
        self.bucket_name = bucket_name

    def store(self, key: str, stream: BytesIO) -> None:
        check_key(self.bucket_name, key)
        with _param_errors(self.bucket_name, key):
            s3_client().put_object(Bucket=self.bucket_name, Key=key, Body=stream.getvalue())

    def _load_remote(self, key: str) -> BytesIO:
        from botocore.exceptions import ClientError
        check_key(self.bucket_name, key)
        try:
            with _param_errors(self.bucket_name, key):
                response = s3_client().get_object(Bucket=self.bucket_name, Key=key)
        except ClientError as e:
            if e.response.get('Error', {}).get('Code') in ('NoSuchKey', '404'):
                raise FileNotFoundError(
                    f"s3://{self.bucket_name}/{key} does not exist.") from e
            if e.response.get('Error', {}).get('Code') == 'NoSuchBucket':
                raise FileNotFoundError(
                    f"s3://{self.bucket_name}/{key}: the bucket does not exist.") from e
            raise
        return BytesIO(response['Body'].read())

    def delete(self, key: str) -> None:
        check_key(self.bucket_name, key)
        with _param_errors(self.bucket_name, key):
            s3_client().delete_object(Bucket=self.bucket_name, Key=key)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError
        check_key(self.bucket_name, key)
        try:
            with _param_errors(self.bucket_name, key):
                s3_client().head_object(Bucket=self.bucket_name, Key=key)
            return True
        except ClientError as e:
            if e.response['ResponseMetadata']['HTTPStatusCode'] == 404:
                return False
            raise
