"""Bridge: turns Immich into retained MQTT manifests, Home Assistant discovery and schedules."""
