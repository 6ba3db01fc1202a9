"""The verification policy: VerifyParams versions and their invariants, the pure verification of a PCS under
one version, the policy DSL, what-if reports and their admin console. Imports tenancy, calibration and
agent_client; reads ingest's stored outcomes only for what-if."""
