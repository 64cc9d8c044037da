"""The operator's view of the API: health, metrics, audit hooks."""
