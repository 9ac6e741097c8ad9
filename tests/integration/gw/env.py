"""Where the programs under test are and how long a test waits for anything: the paths
(IOTGW_BIN, the PKI tool, mosquitto) and the time bounds (WAIT, START_WAIT, STOP_WAIT), each
overridable from the environment."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
IOTGW_BIN = os.environ.get("IOTGW_BIN", str(ROOT / "build" / "iotgw"))
PKI_TOOL = os.environ.get("IOTGW_PKI", str(ROOT / "tools" / "iotgw-pki"))
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"

# Upper bound of every "wait until X happens" (only reached when a test fails).
WAIT = float(os.environ.get("IOTGW_TEST_WAIT", "10"))
# Gateway start-up (READY=1) bound; ASan builds start more slowly.
START_WAIT = float(os.environ.get("IOTGW_TEST_START_WAIT", "20"))
# SIGTERM -> exit bound (the contract: graceful stop, exit 0, within 10 s).
STOP_WAIT = 10.0
