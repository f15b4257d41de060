"""Domain concepts several stages share: registry, model file, scoring, study, model families,
metrics, schema, data source and the in-model transformers. Imports `common`, never a stage."""
