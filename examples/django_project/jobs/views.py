"""POST /jobs/ queues a spacer task; GET /jobs/<id>/ tells how it went."""
import json

from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from jobs.dispatch import enqueue
from jobs.models import Job
from spacer.task_table import TASK_NAMES


@csrf_exempt  # an API for other services; add your own authentication
@require_POST
def create_job(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body)
        task_name, message = body['task_name'], body['message']
    except (ValueError, KeyError, TypeError):
        return JsonResponse({'error': 'expected JSON {"task_name": ..., "message": {...}}'},
                            status=400)
    if task_name not in TASK_NAMES or not isinstance(message, dict):
        return JsonResponse({'error': f'task_name must be one of {", ".join(TASK_NAMES)} '
                                      f'and message a JSON object'}, status=400)
    job = enqueue(task_name, message)
    return JsonResponse(job.as_dict(), status=202)


@require_GET
def job_status(request: HttpRequest, pk: int) -> JsonResponse:
    return JsonResponse(get_object_or_404(Job, pk=pk).as_dict())
