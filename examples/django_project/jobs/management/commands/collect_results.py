"""Record the results of finished jobs (run it periodically, e.g. from cron)."""
import time

from django.core.management.base import BaseCommand

from jobs.dispatch import collect
from jobs.models import Job


class Command(BaseCommand):
    help = "Poll the result backend and record the outcome of finished jobs."

    def add_arguments(self, parser):
        parser.add_argument('--wait', type=float, default=0,
                            help='keep polling up to this many seconds until no job is queued')
        parser.add_argument('--interval', type=float, default=0.5)

    def handle(self, *args, **options):
        deadline = time.monotonic() + options['wait']
        total = collect()
        while (Job.objects.filter(status=Job.Status.QUEUED).exists()
               and time.monotonic() < deadline):
            time.sleep(options['interval'])
            total += collect()
        waiting = Job.objects.filter(status=Job.Status.QUEUED).count()
        self.stdout.write(f"recorded {total}, still queued {waiting}")
