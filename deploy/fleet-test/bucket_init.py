"""bucket-init for the local S3 stand-in (moto): creates S3_BUCKET, then exits.
moto has no users to create: it accepts the workers' key pair as it is."""
import os
import sys
import time

import boto3

endpoint = os.environ.get('S3_ENDPOINT', 'http://minio:9000')
bucket = os.environ['S3_BUCKET']
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id=os.environ['SPACER_AWS_ACCESS_KEY_ID'],
                  aws_secret_access_key=os.environ['SPACER_AWS_SECRET_ACCESS_KEY'])
for attempt in range(30):
    try:
        existing = [b['Name'] for b in s3.list_buckets().get('Buckets', [])]
        break
    except Exception as err:  # the server is still starting
        last = err
        time.sleep(1)
else:
    sys.exit(f"bucket-init: S3 at {endpoint} did not answer: {last}")
if bucket not in existing:
    s3.create_bucket(Bucket=bucket)
print(f"bucket-init: bucket {bucket} ready at {endpoint}")
