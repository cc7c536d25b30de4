"""The Celery layer: app, tasks, routing, producer client, worker policies, CLI."""
