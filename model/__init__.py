"""mathsight core: schema, data, models, registry, monitoring. Imports no front-end framework."""
