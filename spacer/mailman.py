"""The AWS Batch entry point pyspacer had: run the JobMsg stored at one
location and store its JobReturnMsg at another.

A Batch job definition runs ``python3 spacer/mailman.py env_job`` (or
``python -m spacer.mailman env_job``) with JOB_MSG_LOC and RES_MSG_LOC set.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from io import BytesIO

from spacer.data_classes import DataLocation
from spacer.messages import JobMsg, JobReturnMsg
from spacer.storage import storage_for
from spacer.tasks import process_job  # noqa: F401 (pyspacer exports it here)

logger = logging.getLogger(__name__)


def _location_from_env(name: str) -> DataLocation | None:
    value = os.getenv(name)
    return DataLocation.deserialize(json.loads(value)) if value else None


def _store_json(loc: DataLocation, data: dict) -> None:
    storage_for(loc).store(loc.key, BytesIO(json.dumps(data).encode('utf-8')))


def env_job() -> JobReturnMsg | dict:
    """Run the job at JOB_MSG_LOC (required) and store its return message at
    RES_MSG_LOC (optional); both hold serialized DataLocations.

    As in pyspacer, an error that escapes process_job itself (task errors
    do not) becomes a failed return message whose error_message starts
    'Error deserializing message: ', returned and stored as a plain dict.
    """
    job_loc = _location_from_env('JOB_MSG_LOC')
    if job_loc is None:
        raise ValueError('JOB_MSG_LOC env. variable not set. Can not process job.')
    logger.info("Received job from env var: %s", job_loc.key)
    job_msg = JobMsg.load(job_loc)
    try:
        result: JobReturnMsg | dict = process_job(job_msg)
        serialized = result.serialize()
    except Exception as e:
        serialized = result = {'original_job': job_msg.serialize(), 'ok': False,
                               'results': None,
                               'error_message': 'Error deserializing message: ' + repr(e)}
    result_loc = _location_from_env('RES_MSG_LOC')
    if result_loc is not None:
        _store_json(result_loc, serialized)
    return result


def main(argv: list[str]) -> int:
    """pyspacer's command line ran a named function (``env_job``) with fire."""
    if argv not in ([], ['env_job']):
        print("usage: python -m spacer.mailman env_job", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    env_job()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
