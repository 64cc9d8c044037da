"""The API's server layer: pre-fork pool, balance, handover, limits, HTTP errors."""
