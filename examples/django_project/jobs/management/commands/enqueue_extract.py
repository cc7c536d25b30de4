"""Queue feature extraction for one image, built with spacer's message classes."""
from django.core.management.base import BaseCommand, CommandError

from jobs.dispatch import enqueue


class Command(BaseCommand):
    help = "Queue extract_features for an image at the given points."

    def add_arguments(self, parser):
        parser.add_argument('--image', required=True, help='image location (key or path)')
        parser.add_argument('--features', required=True, help='where to write the features')
        parser.add_argument('--points', required=True,
                            help='row,col pairs separated by ";", e.g. "10,20;30,40"')
        parser.add_argument('--storage', default='filesystem', choices=['filesystem', 's3'])
        parser.add_argument('--bucket', default=None, help='S3 bucket (storage s3)')
        parser.add_argument('--feature-dim', type=int, default=64,
                            help='feature size of the dummy extractor used here')

    def handle(self, *args, **options):
        from spacer.data_classes import DataLocation
        from spacer.extractors import DummyExtractor
        from spacer.messages import ExtractFeaturesMsg

        try:
            rowcols = [tuple(int(v) for v in pair.split(','))
                       for pair in options['points'].split(';') if pair.strip()]
        except ValueError:
            raise CommandError(f"--points must look like '10,20;30,40', "
                               f"not {options['points']!r}") from None
        storage, bucket = options['storage'], options['bucket']
        message = ExtractFeaturesMsg(
            job_token=options['image'],
            extractor=DummyExtractor(feature_dim=options['feature_dim']),
            rowcols=rowcols,
            image_loc=DataLocation(storage, options['image'], bucket_name=bucket),
            feature_loc=DataLocation(storage, options['features'], bucket_name=bucket))
        job = enqueue('extract_features', message.serialize())
        self.stdout.write(f"{job.pk}")
