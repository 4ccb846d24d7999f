"""`sagemaker-emu` command line."""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import shlex
import sys
from pathlib import Path

from sagemaker_emu import __version__
from sagemaker_emu.config import DEFAULT_ACCOUNT, DEFAULT_PORT, Config

# `sagemaker-emu bench NAME` -> its module in sagemaker_emu/bench/ (each has a `main(argv)`)
BENCHES = {"routing": "routing", "overhead": "overhead", "pick": "routing_pick", "compare": "compare",
           "chaos": "chaos", "soak": "soak", "model-data": "model_data", "async": "async_drain", "record": "record",
           "autoscaling": "autoscaling", "s3-uploads": "s3_uploads",
           "router": "router", "replay": "replay", "cross-check": "cross_check", "pools": "pools", "density": "density",
           "queueing": "queueing"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagemaker-emu", description=__doc__)
    parser.add_argument("--version", action="version", version=f"sagemaker-emu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the SageMaker and SageMaker Runtime APIs")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port to bind (default {DEFAULT_PORT}; 0 picks a free one and prints it)")
    serve.add_argument("--seed", type=int, default=None, help="make random choices and simulated latencies reproducible")
    serve.add_argument("--log-format", choices=("text", "json"), default="text")
    serve.add_argument("--region", default="us-east-1", help="region for requests without a SigV4 scope")
    serve.add_argument("--account-id", default=DEFAULT_ACCOUNT,
                       help="the default account: unsigned requests and access keys no --accounts file maps")
    serve.add_argument("--accounts", default=None, metavar="FILE",
                       help="shared-credentials file whose profiles map aws_access_key_id to aws_account_id; "
                            "a 12-digit access key is that account")
    serve.add_argument("--waiter-hold", type=float, default=20.0,
                       help="seconds a boto3 waiter's DescribeEndpoint may wait for a transition (0: never)")
    serve.add_argument("--model-timeout", type=float, default=60.0,
                       help="seconds a container has to answer an invocation (SageMaker: 60)")
    serve.add_argument("--image-map", default=None,
                       help="TOML or JSON file mapping image URIs to local commands or URLs")
    serve.add_argument("--state-dir", default=None,
                       help="where instances keep model directories and logs (default: a temporary directory)")
    serve.add_argument("--stop-grace", type=float, default=5.0,
                       help="seconds between SIGTERM and SIGKILL when an instance stops")
    serve.add_argument("--http-threads", type=int, default=256,
                       help="requests answered at once; more wait their turn (default: 256)")
    for flag, default, what in (("--idle-timeout", 60.0, "close a kept-alive connection idle this long"),
                                ("--read-timeout", 30.0, "close a connection whose request takes longer to arrive"),
                                ("--write-timeout", 30.0, "close a connection that stops reading its answer")):
        serve.add_argument(flag, type=float, default=default, help=f"{what} (seconds, default: {default:g})")
    serve.add_argument("--health-interval", type=float, default=5.0,
                       help="seconds between GET /ping checks of each running instance (default: 5)")
    serve.add_argument("--health-failures", type=int, default=3,
                       help="failed checks in a row before an instance is replaced (default: 3)")
    serve.add_argument("--model-root", action="append", default=None, metavar="DIR",
                       help="a directory requests may name as model data or code (default: the current "
                            "directory); repeatable")
    serve.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                       help="a Host name to answer besides IP addresses and localhost (DNS-rebinding guard); repeatable")
    serve.add_argument("--auth", choices=("none", "sigv4"), default="none",
                       help="sigv4: refuse requests not signed with a key from --credentials (default: none)")
    serve.add_argument("--credentials", default=None, metavar="FILE",
                       help="AWS shared-credentials file whose keys may sign requests (with --auth sigv4)")
    serve.add_argument("--min-transition-seconds", type=float, default=0.0, metavar="S",
                       help="Creating, Updating and Deleting last at least S seconds, as on AWS (default: 0)")
    serve.add_argument("--min-deleting-seconds", type=float, default=1.0, metavar="S",
                       help="Deleting lasts at least S seconds, so code that describes a resource right after "
                       "deleting it sees Deleting, as on AWS (default: 1)")
    serve.add_argument("--quota", action="append", default=[], metavar="NAME=COUNT",
                       help="instances per region: total=N (default 64) or per type, e.g. ml.g5.xlarge=4; repeatable")
    serve.add_argument("--capacity", action="append", default=[], metavar="TYPE=COUNT",
                       help="at most COUNT instances of TYPE can be provisioned, e.g. ml.p5.48xlarge=0: creation fails, "
                       "or instance pools fall back to their next type, as on an insufficient capacity error; repeatable")
    serve.add_argument("--worker-start", choices=("fork", "exec"), default="fork",
                       help="fork: built-in and toolkit workers are forked from one pre-imported template process "
                       "(less memory, faster starts; Linux); exec: each starts a new Python (default: fork)")
    serve.add_argument("--fleet", choices=("local", "ray"), default="local",
                       help="where instances run: local processes, or Ray actors on a Ray cluster's nodes, placed by "
                       "their instance type's resources (pip install 'sagemaker-emu[ray]'; default: local)")
    serve.add_argument("--ray-address", metavar="ADDRESS",
                       help="the Ray cluster for --fleet ray (default: RAY_ADDRESS, else a running local cluster)")
    serve.add_argument("--clock-speed", type=float, default=1.0, metavar="K",
                       help="alarm periods, evaluation windows, cooldowns and scaling waits pass K times faster "
                       "than wall time; timestamps stay real (default: 1)")
    serve.add_argument("--serverless-idle-seconds", type=float, default=300.0, metavar="S",
                       help="a serverless endpoint without provisioned concurrency scales to zero after S idle "
                       "seconds; its next call is a cold start (default: 300)")
    serve.add_argument("--multi-model-cache", type=int, default=0, metavar="N",
                       help="an instance of a multi-model endpoint holds at most N models, unloading the least "
                       "recently used (default: as many as fit in its instance type's memory)")
    serve.add_argument("--s3-endpoint", default=os.environ.get("AWS_ENDPOINT_URL_S3"), metavar="URL",
                       help="a real S3-compatible server (MinIO, LocalStack, moto_server) for model data and "
                       "async results, instead of the embedded S3 (default: $AWS_ENDPOINT_URL_S3, else embedded)")
    serve.add_argument("--bootstrap", default=None,
                       help="YAML or JSON file of models, endpoint configs and endpoints to create first")

    bench = commands.add_parser("bench", help=f"run a benchmark ({', '.join(BENCHES)}); "
                                "`bench NAME --help` for its flags", add_help=False)
    bench.add_argument("which", choices=BENCHES)
    bench.add_argument("rest", nargs=argparse.REMAINDER)

    env = commands.add_parser("env", help="print export lines that point boto3 at a running server")
    env.add_argument("--url", default=None,
                     help="the running server (default: the one on port 8080, else the one started last)")
    env.add_argument("--region", default="us-east-1")
    env.add_argument("--openai", metavar="ENDPOINT", default=None,
                     help="also OPENAI_BASE_URL and OPENAI_API_KEY (a bearer token) for ENDPOINT's OpenAI-compatible path")
    env.add_argument("--component", metavar="NAME", default=None, help="with --openai: an inference component's path")

    logs = commands.add_parser("logs", help="print the last log lines of an endpoint's instances")
    logs.add_argument("endpoint")
    logs.add_argument("--instance", default=None, help="one instance id (default: every instance)")
    logs.add_argument("--lines", type=int, default=50)
    logs.add_argument("--url", default=None,
                      help="the running server (default: the one on port 8080, else the one started last)")
    return parser


def _server_url(args) -> str | None:
    """--url, else the server discovery.py finds; None (and why, on stderr) when none answers."""
    from sagemaker_emu import discovery

    if args.url:
        if discovery.answers(args.url):
            return args.url.rstrip("/")
        print(f"sagemaker-emu: no sagemaker-emu answers at {args.url}", file=sys.stderr)
        return None
    url, others = discovery.find()
    if url is None:
        print("sagemaker-emu: no sagemaker-emu server is running on this machine: start one with `make run` "
              "or `sagemaker-emu serve`, or name it with --url", file=sys.stderr)
    elif others:
        print(f"sagemaker-emu: using {url}; also running: {', '.join(others)} (--url chooses)", file=sys.stderr)
    return url


def _env(args) -> int:
    url = _server_url(args)
    if url is None:
        if not sys.stdout.isatty():  # inside `eval "$(sagemaker-emu env)"`: make the eval fail too
            print("false")
        return 1
    from botocore.exceptions import BotoCoreError, ClientError

    from sagemaker_emu import client_env, sdk_config
    from sagemaker_emu.testing import client

    try:
        account = client(url, "sts", args.region).get_caller_identity()["Account"]
    except (BotoCoreError, ClientError):  # a server that checks signatures (--auth sigv4) refuses ours
        account = DEFAULT_ACCOUNT
    variables = client_env.environment(url, args.region, account, Path("~/.cache/sagemaker-emu").expanduser())
    if args.openai:
        variables.update(client_env.openai_variables(url, args.region, args.openai, args.component))
    for name, value in variables.items():
        print(f"export {name}={shlex.quote(value)}")
    if sdk_config.VARIABLE not in variables:
        print(f"# your SageMaker SDK config is kept: add SageMaker.PythonSDK.Modules.Session.DefaultS3Bucket: "
              f"{sdk_config.default_bucket(args.region, account)} to it (docs/sdk.md)")
    return 0


def _logs(args) -> int:
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    url = _server_url(args)
    if url is None:
        return 1
    base = url + "/_emu/endpoints/" + urllib.parse.quote(args.endpoint)
    try:
        with urllib.request.urlopen(base, timeout=10) as resp:
            view = json.load(resp)
        ids = [i["id"] for v in view["variants"] for i in v["instances"]]
        if view.get("failure_reason"):  # a failed start leaves no instances: its reason holds their last lines
            print(f"sagemaker-emu: endpoint {view['name']} is {view['status']}: {view['failure_reason']}",
                  file=sys.stderr)
        if not ids and not args.instance:
            if not view.get("failure_reason"):
                print(f"sagemaker-emu: endpoint {view['name']} is {view['status']} and has no instances",
                      file=sys.stderr)
            return 1
        for instance_id in [args.instance] if args.instance else ids:
            url = f"{base}/instances/{urllib.parse.quote(instance_id)}/logs?lines={args.lines}"
            with urllib.request.urlopen(url, timeout=10) as resp:
                print(f"==> {instance_id} <==")
                print(resp.read().decode(errors="replace"), end="")
    except urllib.error.HTTPError as exc:
        print(f"sagemaker-emu: {json.loads(exc.read() or b'{}').get('message', exc)}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"sagemaker-emu: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_writable(state_dir: Path) -> None:
    """Instances keep their model directories and logs under --state-dir: it must take a file."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        probe = state_dir / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(f"--state-dir {state_dir} cannot be written: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"] and (len(argv) == 1 or argv[1] in ("-h", "--help")):
        print("usage: sagemaker-emu bench {" + ",".join(BENCHES) + "} [flags]\n\n"
              "Each benchmark prints its own flags with `sagemaker-emu bench NAME --help`.")
        return 0 if len(argv) > 1 else 2
    args = _parser().parse_args(argv)
    if args.command == "logs":
        return _logs(args)
    if args.command == "env":
        return _env(args)
    if args.command == "bench":
        return importlib.import_module(f"sagemaker_emu.bench.{BENCHES[args.which]}").main(args.rest)
    if args.command == "serve":
        from sagemaker_emu import logs
        from sagemaker_emu.edge.http_server import serve

        if not 0 <= args.port <= 65535:
            print(f"sagemaker-emu: --port must be between 0 and 65535, not {args.port}", file=sys.stderr)
            return 2
        from sagemaker_emu.control.quotas import Quotas
        from sagemaker_emu.fleet.instance_capacity import InstanceCapacity

        from sagemaker_emu.edge.auth import SigV4Verifier
        from sagemaker_emu.service_model import known_regions

        if (args.auth == "sigv4") != bool(args.credentials):
            print("sagemaker-emu: --auth sigv4 and --credentials FILE go together", file=sys.stderr)
            return 2
        if args.region not in known_regions():
            print(f"sagemaker-emu: --region {args.region} is not an AWS region", file=sys.stderr)
            return 2
        if args.fleet == "ray" and importlib.util.find_spec("ray") is None:
            print("sagemaker-emu: --fleet ray needs Ray: pip install 'sagemaker-emu[ray]'", file=sys.stderr)
            return 2
        from sagemaker_emu.bootstrap import BootstrapError, load

        try:
            Quotas.parse(args.quota)
            InstanceCapacity.parse(args.capacity)
            if args.credentials:
                SigV4Verifier.from_file(args.credentials)
        except (ValueError, OSError, KeyError) as exc:
            print(f"sagemaker-emu: {exc}", file=sys.stderr)
            return 2
        try:  # files that cannot be used fail before the port is taken, in one line
            if args.bootstrap:
                load(args.bootstrap)
            if args.state_dir:
                _check_writable(Path(args.state_dir))
        except (OSError, BootstrapError) as exc:
            print(f"sagemaker-emu: {exc}", file=sys.stderr)
            return 1
        if args.seed is not None:
            random.seed(args.seed)
        logs.configure(args.log_format)
        return serve(Config(host=args.host, port=args.port, seed=args.seed, log_format=args.log_format,
                     region=args.region, account=args.account_id, accounts_file=args.accounts, waiter_hold=args.waiter_hold,
                     model_timeout=args.model_timeout, image_map=args.image_map, state_dir=args.state_dir,
                     stop_grace=args.stop_grace, http_threads=args.http_threads,
                     idle_timeout=args.idle_timeout, read_timeout=args.read_timeout,
                     write_timeout=args.write_timeout, quotas=tuple(args.quota),
                     capacity=tuple(args.capacity),
                     health_interval=args.health_interval, health_failures=args.health_failures,
                     model_roots=tuple(args.model_root) if args.model_root else None,
                     allowed_hosts=tuple(args.allowed_host), credentials=args.credentials,
                     min_transition_seconds=args.min_transition_seconds, s3_endpoint=args.s3_endpoint,
                     min_deleting_seconds=args.min_deleting_seconds,
                     serverless_idle_seconds=args.serverless_idle_seconds, clock_speed=args.clock_speed,
                     multi_model_cache=max(0, args.multi_model_cache), worker_start=args.worker_start,
                     fleet=args.fleet, ray_address=args.ray_address),
                     bootstrap=args.bootstrap)
    return 0
