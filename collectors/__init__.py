"""Sources: one package per external system (enedis, bluecurrent, qualicharge, econnect)."""
