"""BlueCurrent: live charge-point status over the websocket API, transactions over REST.

Writes `bluecurrent_status` and `bluecurrent_grid` points and `charging_session` records
(source `bluecurrent`). See README.md in this folder for the config block and behaviour.
"""

from __future__ import annotations

from collectors.bluecurrent.cli import add_cli
from collectors.bluecurrent.collector import BlueCurrentCollector
from collectors.bluecurrent.config import BlueCurrentConfig
from collectors.bluecurrent.demo import demo
from daemon.collector import CollectorContext, SourcePlugin

__all__ = ["PLUGIN", "BlueCurrentCollector", "BlueCurrentConfig"]


def create(config: BlueCurrentConfig, ctx: CollectorContext) -> BlueCurrentCollector:
    return BlueCurrentCollector(config, ctx)


PLUGIN: SourcePlugin[BlueCurrentConfig] = SourcePlugin(
    name="bluecurrent",
    config_model=BlueCurrentConfig,
    create=create,
    demo=demo,
    add_cli=add_cli,
)
