"""
Settings of the example site: a web app that hands vision jobs to spacer
workers through the broker, the way CoralNet does.

Only the producer side of spacer is used here (``workers.client`` and the
message classes); neither torch nor the task code is imported. spacer reads
its own settings from ``SPACER`` below (or from SPACER_* environment
variables, which win).
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get('JOBSITE_SECRET_KEY', 'example-only-not-for-production')
DEBUG = os.environ.get('JOBSITE_DEBUG', '') == '1'
ALLOWED_HOSTS = ['localhost', '127.0.0.1', 'testserver']

INSTALLED_APPS = [
    'django.contrib.contenttypes',
    'django.contrib.auth',
    'jobs',
]
MIDDLEWARE = [
    'django.middleware.common.CommonMiddleware',
]
ROOT_URLCONF = 'jobsite.urls'

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.environ.get('JOBSITE_DB', str(BASE_DIR / 'jobsite.sqlite3')),
    }
}
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
USE_TZ = True
TIME_ZONE = 'UTC'

# Read by spacer.config (the SPACER_* environment variables take precedence).
SPACER = {
    'BROKER_URL': os.environ.get('JOBSITE_BROKER_URL', 'redis://127.0.0.1:6379/0'),
}

# CoralNet's setting: the vision-backend queue class (see jobs/coralnet_stub.py
# and docs/coralnet.md). This one runs CoralNet's jobs on the spacer fleet.
SPACER_QUEUE_CHOICE = os.environ.get('JOBSITE_QUEUE_CHOICE',
                                     'workers.coralnet_queue.CeleryQueue')
