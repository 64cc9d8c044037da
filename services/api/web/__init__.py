"""Request handling: context, bodies, validation, errors, rate limits, headers."""
