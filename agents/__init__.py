"""Agents: config schemas, PPO construction, training and evaluation."""
