"""Test harness for openvtn (Python 3 standard library only).

stack   start/stop redis-server, gateways, workers, scheduler on free ports
resp    a small Redis client for fixtures and checks
httpc   keep-alive HTTP client, management API client, raw framing helpers
oadr    OpenADR messages, namespace-agnostic lookups, official-XSD validation
checks  a minimal runner for a test file made of several named checks
"""

from .checks import Checks, check, eq, fail, wait_for  # noqa: F401
from .httpc import Api, Http, Response, http_request_bytes, parse_responses, raw_exchange  # noqa: F401
from .oadr import Reply, SchemaError, Validator  # noqa: F401
from .resp import Redis, RedisError  # noqa: F401
from .stack import Config, Stack, free_ports, install_signal_handlers, metric_sum, parse_args  # noqa: F401
