"""Server settings: one object built by the CLI (or a test) and handed to `create_app`."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PORT = 8080
DEFAULT_ACCOUNT = "123456789012"  # the account every ARN names; also the one moto uses


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    seed: int | None = None
    log_format: str = "text"
    region: str = "us-east-1"  # for requests that carry no SigV4 credential scope
    account: str = DEFAULT_ACCOUNT  # the default account: unsigned requests, and keys no file maps
    accounts_file: str | None = None  # shared-credentials file: aws_access_key_id -> aws_account_id
    # How long a boto3 waiter's DescribeEndpoint may wait for a transition to finish,
    # so that `endpoint_in_service` does not sleep its 30-s delay for a fast model.
    waiter_hold: float = 20.0
    model_timeout: float = 60.0  # SageMaker gives a container 60 s to answer /invocations
    image_map: str | None = None  # TOML or JSON file: image URI -> local command or URL
    state_dir: str | None = None  # instances' model directories and logs (default: a temp dir)
    stop_grace: float = 5.0  # seconds between SIGTERM and SIGKILL when instances stop
    # What one caller may hold of the HTTP server (sagemaker_emu/edge/http_server.py).
    http_threads: int = 256  # requests answered at once; more wait their turn, none is refused
    idle_timeout: float = 60.0  # a kept-alive connection with no request (AWS's load balancers: 60 s)
    read_timeout: float = 30.0  # from a request's first byte to its last
    write_timeout: float = 30.0  # an answer the caller has stopped reading
    health_interval: float = 5.0  # seconds between /ping checks of a running instance
    health_failures: int = 3  # failed checks in a row that get an instance replaced
    quotas: tuple[str, ...] = ()
    capacity: tuple[str, ...] = ()  # TYPE=N: at most N instances of the type can be had (fleet/instance_capacity.py)
    min_transition_seconds: float = 0.0  # Creating/Updating/Deleting last at least this long
    # Deleting lasts at least this long: code written for AWS describes what it has just deleted
    # and expects Deleting, not "Could not find" (docs/decisions.md)
    min_deleting_seconds: float = 1.0
    serverless_idle_seconds: float = 300.0  # a serverless variant with no provisioned concurrency scales to zero
    clock_speed: float = 1.0  # alarm periods, cooldowns and scaling waits pass this many times faster
    multi_model_cache: int = 0  # models a multi-model instance holds at once (0: as its memory allows)
    worker_start: str = "fork"  # our workers forked from a pre-imported template, or "exec" (fleet/spawn.py)
    fleet: str = "local"  # where instances run: this machine, or "ray": a Ray cluster's nodes (fleet/ray_nodes.py)
    ray_address: str | None = None  # the Ray cluster (`ray.init(address=...)`); None: RAY_ADDRESS, else "auto"
    # Directories a request may name as model data or code (besides the model's own data);
    # None: the directory the server runs in.
    model_roots: tuple[str, ...] | None = None
    allowed_hosts: tuple[str, ...] = ()  # Host names accepted besides IP addresses and localhost
    s3_endpoint: str | None = None  # a real S3-compatible server instead of the embedded one
    credentials: str | None = None  # shared-credentials file: every request must be signed by one of its keys  # `NAME=COUNT`: instances per region, `total` or per type
