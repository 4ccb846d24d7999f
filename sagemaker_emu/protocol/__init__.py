"""The wire: AWS JSON 1.1 for the control plane, REST-JSON for the runtime, error envelopes."""
