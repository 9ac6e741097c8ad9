"""Helpers for the iotgw integration tests, one module per concern:

  env         paths of the programs under test, time bounds (WAIT, START_WAIT, STOP_WAIT)
  proc        processes the helpers started (tracked by PID, reap_all), LOG_SOURCES
  util        wait_until, tail, safe_name, unique
  net         free ports, IPv6 loopback, wait_port
  pki         Pki: the session's certificates (tools/iotgw-pki), TLS client contexts
  revocation  the revocation PKI of the trust tests, CRL bundles
  supervised  SupervisedClient: a paho client whose thread survives every socket error
  observer    Observer and Message: what arrives on the upstream broker
  broker      Upstream: mosquitto as the upstream broker (mutual TLS)
  notify      NotifySocket: the service manager's end of sd_notify
  logs        the gateway's log line format, parse_log_line
  status      --spool-stats, STATE_DIR/status and STATUS= texts
  gateway     listener(), Gateway, module_gateway
  devices     Device: a paho MQTT 3.1.1 device
  packets     raw MQTT 3.1.1 packets (byte-exact)
  rawconn     RawConn: a device writing packets by hand over TCP or TLS
  sclient     openssl s_client as a device (always reaped)
  readings    assert_reading and what it checks
  load        counted load: LoadDevice, Load, Tally, wait_tally
  disk        fill_fs: a file system with no block left
  metrics     the [metrics] listener: http_get, Scrape (the Prometheus format), wait_metric
  haproxy     HAProxy: the load balancer in front of gateways (PROXY protocol tests)
  netns       Lan: network namespaces on a bridge, one address per "box" (many-boxes test)
  relay       RecordRelay: a TCP relay to the upstream that reads TLS record headers, pausable

Tests use `import gw` (or `from gw import NAME`): every public name of these modules is
re-exported here, so a test never needs to know which module holds what.

Everything here drives real processes over real sockets: the iotgw binary
($IOTGW_BIN), the mosquitto broker as the upstream (mutual TLS), paho-mqtt and
raw sockets as devices, Python's ssl module and openssl s_client for TLS. Nothing is mocked.

Rules kept throughout:
  * every wait is bounded (WAIT seconds unless said otherwise);
  * every process started here is recorded by PID and stopped by PID;
  * files live in per-test (or per-module) temporary directories.
"""

from .env import (IOTGW_BIN, MOSQUITTO, MOSQUITTO_PUB, PKI_TOOL, ROOT, START_WAIT, STOP_WAIT,
                  WAIT)
from .proc import LOG_SOURCES, reap_all
from . import proc as _proc
_track, _untrack = _proc._track, _proc._untrack  # private, but tests have used gw._track
from .util import safe_name, tail, unique, wait_until
from .net import free_port, ipv6_loopback_available, wait_port
from .pki import Pki
from .revocation import REV_INTER, REV_ROOT, crl_bundle, revocation_pki
from .supervised import SupervisedClient
from .observer import Message, Observer
from .broker import Upstream
from .notify import NotifySocket, notify_fields
from .logs import LEVELS, LOG_LINE_RE, parse_log_line
from .status import STATUS_RE, SpoolStats, parse_kv, parse_status, spool_stats
from .gateway import Gateway, listener, module_gateway
from .devices import Device
from .packets import (CONNACK_OK, DISCONNECT, PINGREQ, PINGRESP, connect_pkt, mstr, packet,
                      publish_pkt, pubacks, pubrel_pkt, subscribe_pkt, unsubscribe_pkt,
                      varint)
from .rawconn import Closed, RawConn
from .sclient import (PUBACK_7, SClient, SClientProcess, s_client, s_client_device,
                      s_client_publish)
from .readings import TS_RE, assert_reading, b64, parse_ts
from .load import (MAX_NUMBERED, Load, LoadDevice, Tally, reading_number, reading_payload,
                   wait_tally)

from .disk import fill_fs
from .passwords import pw_file, pw_line
from .metrics import Scrape, http_get, parse_metrics, wait_metric
from .haproxy import HAPROXY, HAProxy, haproxy_available
from .netns import Lan, netns_unavailable

__all__ = [
    "pw_file", "pw_line",
    "IOTGW_BIN", "MOSQUITTO", "MOSQUITTO_PUB", "PKI_TOOL", "ROOT", "START_WAIT", "STOP_WAIT",
    "WAIT",
    "LOG_SOURCES", "reap_all",
    "safe_name", "tail", "unique", "wait_until",
    "free_port", "ipv6_loopback_available", "wait_port",
    "Pki",
    "REV_INTER", "REV_ROOT", "crl_bundle", "revocation_pki",
    "SupervisedClient",
    "Message", "Observer",
    "Upstream",
    "NotifySocket", "notify_fields",
    "LEVELS", "LOG_LINE_RE", "parse_log_line",
    "STATUS_RE", "SpoolStats", "parse_kv", "parse_status", "spool_stats",
    "Gateway", "listener", "module_gateway",
    "Device",
    "CONNACK_OK", "DISCONNECT", "PINGREQ", "PINGRESP", "connect_pkt", "mstr", "packet",
    "publish_pkt", "pubrel_pkt", "subscribe_pkt", "unsubscribe_pkt", "varint",
    "Closed", "RawConn",
    "PUBACK_7", "SClient", "SClientProcess", "s_client", "s_client_device", "s_client_publish",
    "TS_RE", "assert_reading", "b64", "parse_ts",
    "MAX_NUMBERED", "Load", "LoadDevice", "Tally", "reading_number", "reading_payload",
    "wait_tally",
    "fill_fs",
    "Scrape", "http_get", "parse_metrics", "wait_metric",
    "HAPROXY", "HAProxy", "haproxy_available",
    "Lan", "netns_unavailable",
]
from .relay import APPLICATION_DATA, RecordRelay
