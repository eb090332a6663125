#!/bin/sh
# Starts one Sentinel: it monitors the primary the other Sentinels name, or
# pod 0 of the Redis set when none answers (a new set). Sentinel rewrites
# its file, so it is written into the pod's volume at every start.
set -eu
# shellcheck source-path=SCRIPTDIR source=redis-lib.sh
. /etc/openvtn-redis/redis-lib.sh
self=$(hostname).$headless_sentinel
primary=$(ask_primary "$self")
[ -n "$primary" ] || primary=openvtn-redis-0.$headless_redis
# The password (REDISCLI_AUTH, from the Secret openvtn-redis-auth): the
# Sentinels' own (requirepass, also what they use with each other) and the
# data nodes' (auth-pass). The file holds it: readable by this user only.
pass=${REDISCLI_AUTH:?}
umask 077
cat >/data/sentinel.conf <<EOC
port 26379
requirepass $pass
dir /data
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $self
sentinel monitor vtn $primary 6379 2
sentinel auth-pass vtn $pass
sentinel down-after-milliseconds vtn 5000
sentinel failover-timeout vtn 60000
sentinel parallel-syncs vtn 1
EOC
exec redis-server /data/sentinel.conf --sentinel
