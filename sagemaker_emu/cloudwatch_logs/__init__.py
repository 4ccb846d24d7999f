"""CloudWatch Logs on the one URL, from the real worker logs: a group per endpoint (and per
inference component), a stream per instance (and copy), events as the workers write them."""
