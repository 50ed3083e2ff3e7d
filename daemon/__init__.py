"""chargeflux engine: config, runtime, scheduler, points, outbox, sinks, checks and CLI."""

__version__ = "0.1.0"
