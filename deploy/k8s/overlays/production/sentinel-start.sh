#!/bin/sh
# Starts one Sentinel: it monitors the primary the other Sentinels name, or
# pod 0 of the Redis set when none answers (a new set). Sentinel rewrites
# its file, so it is written into the pod's volume at every start.
set -eu
ns=${NAMESPACE:?}
self=$(hostname).openvtn-sentinel-headless.$ns.svc.cluster.local
primary=""
for i in 0 1 2; do
  s=openvtn-sentinel-$i.openvtn-sentinel-headless.$ns.svc.cluster.local
  [ "$s" = "$self" ] && continue
  primary=$(redis-cli -h "$s" -p 26379 --raw sentinel get-master-addr-by-name vtn 2>/dev/null | head -n 1 || true)
  [ -n "$primary" ] && break
done
[ -n "$primary" ] || primary=openvtn-redis-0.openvtn-redis-headless.$ns.svc.cluster.local
cat >/data/sentinel.conf <<EOC
port 26379
dir /data
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $self
sentinel monitor vtn $primary 6379 2
sentinel down-after-milliseconds vtn 5000
sentinel failover-timeout vtn 60000
sentinel parallel-syncs vtn 1
EOC
exec redis-server /data/sentinel.conf --sentinel
