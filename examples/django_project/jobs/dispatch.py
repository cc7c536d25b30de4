"""
Handing jobs to spacer workers and collecting what they return.

The task is sent only once the transaction that saved the Job commits
(``transaction.on_commit``): sent earlier, a fast worker could finish before
the row exists, and a rolled-back request would leave a task running for a
job nobody has. ``workers.client.submit`` sends by task name
(``send_task``) to the queue of the task's kind; it imports neither torch
nor the task code.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from jobs.models import Job


def enqueue(task_name: str, message: dict) -> Job:
    """Save a Job and send its task once the save is committed."""
    with transaction.atomic():
        job = Job.objects.create(task_name=task_name, message=message)
        transaction.on_commit(lambda: send(job.pk))
    return job


def send(job_pk: int) -> None:
    from workers import client

    job = Job.objects.get(pk=job_pk)
    task_id = client.submit(job.task_name, job.message)
    Job.objects.filter(pk=job_pk).update(task_id=task_id, status=Job.Status.QUEUED)


def collect() -> int:
    """Record the outcome of every queued job that has finished; returns how many."""
    from workers import client

    queued = {job.task_id: job for job in Job.objects.filter(status=Job.Status.QUEUED)}
    finished = 0
    for task_id, outcome in client.poll(list(queued)).items():
        if not outcome.ready:
            continue
        job = queued[task_id]
        if outcome.ok:
            job.status, job.result = Job.Status.DONE, outcome.value
        else:
            job.status = Job.Status.FAILED
            job.error_type = outcome.error_type or outcome.state
            job.error_message = outcome.error_message or ''
        job.finished = timezone.now()
        job.save()
        finished += 1
    return finished
