"""The AWS adapter: the gateway (the only module that calls boto3), its result models, client-side pacing."""
