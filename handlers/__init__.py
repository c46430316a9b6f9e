"""Chat-neutral conversation logic: what residents and officers are told, and why."""
