"""AI benchmark jobs' runner: what a job does once the control plane has accepted it."""
