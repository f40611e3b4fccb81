"""Runners: drive the processor core from a source to a sink; they own batching, delivery,
offsets and state persistence, and contain no monitoring logic."""
