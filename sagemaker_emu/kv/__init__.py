"""The prefix (KV) cache concern in one home.

- `blocks.py`: prompts as chained block hashes (container and router hash alike);
- `events.py`: the `GET /kv-events` report a container serves, and applying it;
- `cache.py`: the container-side cache (llm-sim's), which writes those reports;
- `index.py`: the fleet-side picture of one instance's cache, which KV_AWARE reads.
"""
