from django.db import models


class Job(models.Model):
    """One spacer task: what was asked, its Celery task id, and what came back."""

    class Status(models.TextChoices):
        NEW = 'new'            # saved, not yet handed to the broker
        QUEUED = 'queued'      # sent; a worker will (or does) run it
        DONE = 'done'          # the worker returned a result
        FAILED = 'failed'      # the worker reported an error

    task_name = models.CharField(max_length=64)
    message = models.JSONField()
    task_id = models.CharField(max_length=64, blank=True, default='')
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    result = models.JSONField(null=True, blank=True)
    error_type = models.CharField(max_length=128, blank=True, default='')
    error_message = models.TextField(blank=True, default='')
    created = models.DateTimeField(auto_now_add=True)
    finished = models.DateTimeField(null=True, blank=True)

    def as_dict(self) -> dict:
        return {'id': self.pk, 'task_name': self.task_name, 'task_id': self.task_id,
                'status': self.status, 'result': self.result,
                'error_type': self.error_type, 'error_message': self.error_message}

    def __str__(self) -> str:
        return f"Job {self.pk} {self.task_name} ({self.status})"
