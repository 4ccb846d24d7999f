"""Instances as real processes: launch, health, restarts, scaling, in-flight accounting."""
