"""The framework-free HTTP contract: routes, schemas, OpenAPI, CORS policy, body limits."""
