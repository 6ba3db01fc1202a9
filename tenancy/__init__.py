"""Who may submit: tenants, the keys their agents sign with, the API keys their clients read outcomes with,
the keyring that checks signatures, and the per-process copies of configuration that a change announcement
drops (``config_cache``). Imports calibration and agent_client only."""
