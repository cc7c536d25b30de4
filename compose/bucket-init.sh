#!/bin/sh
# Runs once at stack start (service bucket-init, image minio/mc): creates the
# workers' bucket and their own access key, so the MinIO root credentials
# never reach a worker. Safe to run again: every step is idempotent.
set -eu

: "${MINIO_URL:?}" "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${S3_BUCKET:?}" "${SPACER_AWS_ACCESS_KEY_ID:?}" "${SPACER_AWS_SECRET_ACCESS_KEY:?}"

# MinIO reports healthy slightly before it accepts admin calls; retry briefly.
tries=0
until mc alias set store "$MINIO_URL" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -ge 30 ]; then
        echo "bucket-init: MinIO at $MINIO_URL did not answer" >&2
        exit 1
    fi
    sleep 1
done

mc mb --ignore-existing "store/$S3_BUCKET"
mc admin user add store "$SPACER_AWS_ACCESS_KEY_ID" "$SPACER_AWS_SECRET_ACCESS_KEY"
# attach fails when the policy is already attached; that is the state we want.
if ! mc admin policy attach store readwrite --user "$SPACER_AWS_ACCESS_KEY_ID" 2>/dev/null; then
    mc admin user info store "$SPACER_AWS_ACCESS_KEY_ID" | grep -q readwrite
fi
echo "bucket-init: bucket $S3_BUCKET ready for $SPACER_AWS_ACCESS_KEY_ID"
