"""The control plane: alert routing (dedup, cooldown), alert sinks, retrain requests; in process
or as a faust-streaming app. Imports the ground floor only."""
