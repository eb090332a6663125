# shellcheck shell=sh disable=SC2034 # the variables are for the scripts that source this
# Sourced by redis-start.sh and sentinel-start.sh (same ConfigMap).
# NAMESPACE comes from the pod (downward API); redis-cli authenticates with
# REDISCLI_AUTH (the Secret openvtn-redis-auth, in the pod's environment).
ns=${NAMESPACE:?}
headless_redis=openvtn-redis-headless.$ns.svc.cluster.local
headless_sentinel=openvtn-sentinel-headless.$ns.svc.cluster.local

# ask_primary [SKIP]: the primary the first Sentinel that answers names
# (SKIP: a Sentinel not to ask, the caller itself); empty when none knows.
ask_primary() {
  for i in 0 1 2; do
    s=openvtn-sentinel-$i.$headless_sentinel
    [ "$s" = "${1:-}" ] && continue
    p=$(redis-cli -h "$s" -p 26379 --raw sentinel get-master-addr-by-name vtn 2>/dev/null | head -n 1 || true)
    if [ -n "$p" ]; then
      echo "$p"
      return 0
    fi
  done
}
