#!/bin/sh
# Starts one Redis of the StatefulSet: a replica of the primary the
# Sentinels name, or, when no Sentinel knows one yet (a new set), the
# primary if this is pod 0 and its replica otherwise.
set -eu
ns=${NAMESPACE:?}
self=$(hostname).openvtn-redis-headless.$ns.svc.cluster.local
primary=""
for i in 0 1 2; do
  s=openvtn-sentinel-$i.openvtn-sentinel-headless.$ns.svc.cluster.local
  primary=$(redis-cli -h "$s" -p 26379 --raw sentinel get-master-addr-by-name vtn 2>/dev/null | head -n 1 || true)
  [ -n "$primary" ] && break
done
if [ -z "$primary" ]; then
  case "$(hostname)" in
  *-0) primary=$self ;;
  *) primary=openvtn-redis-0.openvtn-redis-headless.$ns.svc.cluster.local ;;
  esac
fi
if [ "$primary" = "$self" ]; then
  exec redis-server /etc/openvtn-redis/redis.conf --replica-announce-ip "$self"
fi
exec redis-server /etc/openvtn-redis/redis.conf --replica-announce-ip "$self" --replicaof "$primary" 6379
