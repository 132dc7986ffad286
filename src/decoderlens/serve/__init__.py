"""The live explorer: a local web app and HTTP API over one loaded lens, batching concurrent requests."""
