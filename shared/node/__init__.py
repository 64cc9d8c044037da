"""A node's lifecycle: `ksnode up`, preflight, supervision, reload, log relay."""
