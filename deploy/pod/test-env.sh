# shellcheck shell=bash
# Sourced by deploy/pod/test.sh and deploy/pod/overlay-test.sh (after they
# set ROOT and say): podman's settings for this machine and the official
# OpenADR schema the VEN client validates every reply against.
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/container/containers.conf}
SCHEMA=${VTN_OFFICIAL_SCHEMA:-$ROOT/../shared/oadr20b-schema/oadr_20b.xsd}
[ -f "$SCHEMA" ] || { say "the official schema is not at $SCHEMA (set VTN_OFFICIAL_SCHEMA)"; exit 2; }
