"""The application layer: the ``driftline`` CLI, the demo wiring and the service entry points.

The top floor: it imports every layer below (contracts, transports, detectors, processors, producers,
the retrain worker) and nothing imports it.
"""
