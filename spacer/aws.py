"""
AWS sessions and resources built from spacer's settings: the one place that
turns the ``AWS_*`` settings into boto3 objects, for S3 storage and for
callers (CoralNet's AWS Batch queue calls ``create_aws_session()``).

Credentials are passed to boto3 only when set, so boto3's own chain
(environment, config files, instance role) applies otherwise.
"""
from __future__ import annotations

import os
import threading
from logging import getLogger
from typing import Any

from spacer import config
from spacer.extras import extra_imports

with extra_imports():
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config as BotoConfig

logger = getLogger(__name__)

# boto3 resources and clients are not thread-safe: one per thread.
THREAD_LOCAL = threading.local()

CREDENTIAL_SETTINGS = ('AWS_PROFILE_NAME', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
                       'AWS_SESSION_TOKEN')


def create_aws_session() -> Any:
    """A boto3 Session holding the credentials that spacer's settings name."""
    return boto3.Session(
        aws_access_key_id=config.get('AWS_ACCESS_KEY_ID'),
        aws_secret_access_key=config.get('AWS_SECRET_ACCESS_KEY'),
        aws_session_token=config.get('AWS_SESSION_TOKEN'),
        profile_name=config.get('AWS_PROFILE_NAME'),
    )


def boto_config(**options: Any) -> Any:
    """botocore's Config for spacer's clients: unsigned requests when
    ``AWS_ANONYMOUS`` is set (public buckets need no credentials)."""
    if config.get('AWS_ANONYMOUS'):
        options['signature_version'] = UNSIGNED
    return BotoConfig(**options) if options else None


def endpoint_url(service_name: str) -> str | None:
    """``S3_ENDPOINT_URL`` for S3 (MinIO, moto); AWS's own for the rest."""
    return config.get('S3_ENDPOINT_URL') if service_name == 's3' else None


def create_aws_resource(service_name: str, region: str | None = None) -> Any:
    """A boto3 resource of ``service_name`` in ``region`` (default ``AWS_REGION``)."""
    return create_aws_session().resource(
        service_name, region_name=region or config.get('AWS_REGION'),
        endpoint_url=endpoint_url(service_name), config=boto_config())


def current_settings() -> tuple:
    """The settings an AWS object is made from, to tell when one is stale."""
    return tuple(config.get(name) for name in (
        *CREDENTIAL_SETTINGS, 'AWS_ANONYMOUS', 'AWS_REGION', 'S3_ENDPOINT_URL'))


def get_s3_resource() -> Any:
    """This thread's S3 resource, made once and reused while the settings
    stay the same (a test or a reload that changes them gets a new one)."""
    settings = current_settings()
    if getattr(THREAD_LOCAL, 's3_settings', None) != settings:
        THREAD_LOCAL.s3_resource = create_aws_resource('s3')
        THREAD_LOCAL.s3_settings = settings
        logger.info("Made an S3 resource for this thread.")
    return THREAD_LOCAL.s3_resource


def aws_check() -> None:
    """Print which AWS settings are set (yes/no, never their values), then
    make a session and print the identity AWS sees. Errors are AWS's own,
    raised as they come: they explain its credential chain best."""
    if config.get('AWS_ANONYMOUS'):
        print("AWS_ANONYMOUS has been set to True, so AWS will be accessed"
              " without credentials.")
        return
    print("Variables that have been set:")
    sources = [
        ("Spacer config - AWS_PROFILE_NAME (highest priority if specified)",
         config.get('AWS_PROFILE_NAME')),
        ("Environment var - AWS_CONFIG_FILE", os.getenv('AWS_CONFIG_FILE')),
        ("Environment var - AWS_SHARED_CREDENTIALS_FILE",
         os.getenv('AWS_SHARED_CREDENTIALS_FILE')),
    ] + [(f"Spacer config - {name}", config.get(name)) for name in CREDENTIAL_SETTINGS[1:]]
    for description, value in sources:
        print(f"{description}: {'Yes' if value else 'No'}")
    print("Will now call create_aws_session()...")
    session = create_aws_session()
    print("Will now call get_caller_identity()...")
    identity = session.client('sts').get_caller_identity()
    print(f"Identified as ARN: {identity['Arn']}")
