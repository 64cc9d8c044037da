"""Small infrastructure every floor may use: logs, processes, files, text, version."""
