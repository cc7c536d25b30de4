"""The AWS Batch entry point pyspacer had: run the JobMsg stored at one
location and store its JobReturnMsg at another."""
from __future__ import annotations

import json
import os

from spacer.data_classes import DataLocation
from spacer.messages import JobMsg, JobReturnMsg
from spacer.tasks import process_job


def _location_from_env(name: str) -> DataLocation | None:
    value = os.getenv(name)
    return DataLocation.deserialize(json.loads(value)) if value else None


def env_job() -> JobReturnMsg:
    """JOB_MSG_LOC (required) and RES_MSG_LOC (optional) hold serialized DataLocations."""
    job_loc = _location_from_env('JOB_MSG_LOC')
    if job_loc is None:
        raise ValueError('JOB_MSG_LOC env. variable not set. Can not process job.')
    result = process_job(JobMsg.load(job_loc))
    result_loc = _location_from_env('RES_MSG_LOC')
    if result_loc is not None:
        result.store(result_loc)
    return result


if __name__ == '__main__':
    env_job()
