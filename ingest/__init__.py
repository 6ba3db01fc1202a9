"""The submit path and its durability: the API views, the inbox WAL and its replay, rate limits, dedup and the
store of outcomes, async batches, health and metrics. Imports policy, tenancy, calibration and agent_client."""
