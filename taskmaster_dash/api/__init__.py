"""The REST API under /api/v1: the spec's resources, its envelope and its OpenAPI document."""
