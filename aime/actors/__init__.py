"""Rollout actors: environments stepped by a policy, episodes written to the replay store."""
