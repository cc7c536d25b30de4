#!/bin/sh
# Starts redis-server with the users of redis-users.acl, each password taken
# from the environment (compose/.env). Extra arguments go to redis-server.
#   ACL_TEMPLATE: the users file with ${REDIS_*_PASSWORD} placeholders
#   ACL_FILE:     where the rendered file is written (not on a volume)
set -eu
ACL_TEMPLATE=${ACL_TEMPLATE:-/etc/redis/users.acl}
ACL_FILE=${ACL_FILE:-/tmp/users.acl}
for name in REDIS_ADMIN_PASSWORD REDIS_WORKER_PASSWORD REDIS_PRODUCER_PASSWORD \
            REDIS_FLOWER_PASSWORD REDIS_KEDA_PASSWORD; do
  eval "value=\${$name:-}"
  case "$value" in
    ''|*[!A-Za-z0-9]*) echo "redis-start: set $name in compose/.env (letters and digits only)" >&2
                       exit 1 ;;
  esac
done
umask 077
sed -e '/^#/d' -e '/^[[:space:]]*$/d' \
    -e "s/\${REDIS_ADMIN_PASSWORD}/$REDIS_ADMIN_PASSWORD/" \
    -e "s/\${REDIS_WORKER_PASSWORD}/$REDIS_WORKER_PASSWORD/" \
    -e "s/\${REDIS_PRODUCER_PASSWORD}/$REDIS_PRODUCER_PASSWORD/" \
    -e "s/\${REDIS_FLOWER_PASSWORD}/$REDIS_FLOWER_PASSWORD/" \
    -e "s/\${REDIS_KEDA_PASSWORD}/$REDIS_KEDA_PASSWORD/" \
    "$ACL_TEMPLATE" > "$ACL_FILE"
exec redis-server --aclfile "$ACL_FILE" "$@"
