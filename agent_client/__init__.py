"""The PCS protocol and the agent that produces PCS.

This package is the one implementation of the wire contract (schema, canonical JSON, signing, pcs_id,
Theil–Sen). The server imports it; agents install it on its own. It never imports Django.
"""

from __future__ import annotations

SCHEMA_NAME = "fractal-lba-kakeya"
PROTOCOL_VERSION = "0.2"  # what agents emit by default; 0.1 stays available (canonical.PROTOCOLS)
