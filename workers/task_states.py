"""The task state spacer adds to Celery's: a running task that reports how
far it got. A leaf module, so that producers and tasks share it without
importing each other."""

PROGRESS = 'PROGRESS'  # a running task that reports how far it got (not ready)
