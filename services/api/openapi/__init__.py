"""The OpenAPI document of every route."""
