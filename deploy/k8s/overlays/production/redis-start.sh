#!/bin/sh
# Starts one Redis of the StatefulSet: a replica of the primary the
# Sentinels name, or, when no Sentinel knows one yet (a new set), the
# primary if this is pod 0 and its replica otherwise.
set -eu
# shellcheck source-path=SCRIPTDIR source=redis-lib.sh
. /etc/openvtn-redis/redis-lib.sh
self=$(hostname).$headless_redis
primary=$(ask_primary "")
if [ -z "$primary" ]; then
  case "$(hostname)" in
  *-0) primary=$self ;;
  *) primary=openvtn-redis-0.$headless_redis ;;
  esac
fi
# The password (REDISCLI_AUTH, from the Secret openvtn-redis-auth) goes in
# through stdin ("-"), not the command line every process in the pod sees.
pass=${REDISCLI_AUTH:?}
if [ "$primary" = "$self" ]; then
  exec redis-server /etc/openvtn-redis/redis.conf --replica-announce-ip "$self" - <<EOC
requirepass $pass
masterauth $pass
EOC
fi
exec redis-server /etc/openvtn-redis/redis.conf --replica-announce-ip "$self" --replicaof "$primary" 6379 - <<EOC
requirepass $pass
masterauth $pass
EOC
