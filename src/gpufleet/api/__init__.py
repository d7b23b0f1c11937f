"""The HTTP layer: app factory, error handling, authentication and one router per resource."""
