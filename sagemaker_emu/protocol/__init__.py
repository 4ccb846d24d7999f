"""The wire: which service a request is for (services.py), AWS JSON 1.1 for SageMaker's control
plane, REST-JSON for its runtime, JSON/CBOR/query for the emulator's other services, error
envelopes."""
