"""``susurro-relay``: run the blind relay."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from types import FrameType

from susurro import __version__, compiled
from susurro.protocol.limits import ABSOLUTE_MAX_FRAME, DEFAULT_MAX_RECIPIENTS, MAX_RECIPIENTS, MIN_MAX_FRAME

from .addresses import announce
from .budget import DEFAULT_MAX_PARTIAL_BYTES, DEFAULT_MEMORY_BUDGET
from .cluster.errors import ClusterConfigError
from .config import (
    DEFAULT_FANOUT_HOLD_MS,
    DEFAULT_FLUSH_THREADS,
    DEFAULT_FRAME_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_IO_THREADS,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_PER_IP,
    DEFAULT_PORT,
    DEFAULT_SEND_TIMEOUT,
    MAX_FANOUT_HOLD_MS,
    RelayConfig,
)
from .environment import apply_environment, document_environment
from .fdlimit import ResourceLimitError
from .idle import DEFAULT_IDLE_PING, DEFAULT_IDLE_TIMEOUT
from .logsetup import LogSetup, configure_logging
from .mailbox import add_mailbox_flags, mailbox_settings
from .outbox import DEFAULT_OUTBOX_BYTES
from .ratelimit import DEFAULT_RATE_BURST, DEFAULT_RATE_GRACE, DEFAULT_RATE_PER_SECOND
from .registry import RegistryError
from .rooms import add_room_flags, room_settings
from .server import RelayServer, format_address, tune_collector
from .status import DEFAULT_STATUS_HOST, StatusServer
from .store import StoreError
from .tls import TLSConfigError, client_flags, server_context

DESCRIPTION = """\
Susurro's blind relay. It routes sealed envelopes between members of one room
and keeps the roster; it never holds a private key and never sees a message's
text, so its logs hold only metadata (names, sizes, times) and ciphertext.
"""

EPILOG = """\
examples:
  susurro-relay                              local relay on 127.0.0.1:12345
  susurro-relay --host 0.0.0.0 --log-file relay.log
  susurro-relay --port 0                     pick a free port (printed on start)

On start it prints 'listening on HOST:PORT'; its log's start line and --version
say whether the hot path runs compiled or as pure Python (SUSURRO_PURE_PYTHON=1
runs it pure; docs/deploy.md). SIGTERM or Ctrl-C tells every
client the relay is shutting down, then exits 0. SIGHUP reopens --log-file
(after logrotate renamed it); it does not stop the relay.
"""


def _positive_int(low: int, high: int | None = None):  # type: ignore[no-untyped-def]
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range ({bound})")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="susurro-relay",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"susurro-relay {__version__}, hot path {compiled.state().describe()}"
    )
    net = parser.add_argument_group("network")
    net.add_argument(
        "--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}; 0.0.0.0 or :: for all)"
    )
    net.add_argument(
        "--port",
        type=_positive_int(0, 65535),
        default=DEFAULT_PORT,
        help=f"TCP port (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    tls = parser.add_argument_group(
        "TLS (hides metadata from the network; messages are end-to-end encrypted either way)"
    )
    tls.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve TLS 1.2+ instead of plain TCP")
    tls.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert (default: read from that file)")
    status = parser.add_argument_group("monitoring")
    status.add_argument(
        "--status-port",
        type=_positive_int(0, 65535),
        help="serve GET /status (JSON: uptime, connection and member counts, no names; with --cluster the node id, "
        "cluster state and Redis latency) on this port; default off",
    )
    status.add_argument(
        "--status-host", default=DEFAULT_STATUS_HOST, help=f"address for --status-port (default {DEFAULT_STATUS_HOST})"
    )
    logs = parser.add_argument_group("logging")
    logs.add_argument("--log-file", help="also append log lines to this file")
    logs.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default INFO: one line per event",
    )
    logs.add_argument(
        "--log-ciphertext",
        action="store_true",
        help="one deliver line per copy with its whole ciphertext (default: one line per message, 16-byte prefix)",
    )
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-frame",
        type=_positive_int(MIN_MAX_FRAME, ABSOLUTE_MAX_FRAME),
        default=1024 * 1024,
        help="largest frame in bytes (default 1048576)",
    )
    limits.add_argument(
        "--max-clients",
        type=_positive_int(1),
        default=DEFAULT_MAX_CLIENTS,
        help=f"connections at once (default {DEFAULT_MAX_CLIENTS})",
    )
    limits.add_argument(
        "--max-recipients",
        type=_positive_int(1, MAX_RECIPIENTS),
        default=DEFAULT_MAX_RECIPIENTS,
        help=f"recipients per message (default {DEFAULT_MAX_RECIPIENTS}, at most {MAX_RECIPIENTS})",
    )
    limits.add_argument(
        "--outbox-bytes",
        type=_positive_int(4096),
        default=DEFAULT_OUTBOX_BYTES,
        help="bytes queued for one client before it is dropped as a slow consumer (default 1048576)",
    )
    limits.add_argument(
        "--handshake-timeout",
        type=float,
        default=DEFAULT_HANDSHAKE_TIMEOUT,
        help=f"seconds from connect to a valid hello (default {DEFAULT_HANDSHAKE_TIMEOUT:g})",
    )
    names = parser.add_argument_group("name registry")
    names.add_argument(
        "--registry",
        metavar="FILE",
        help="remember which identity key first joined under each name, in FILE (created if absent), "
        "and refuse that name to any other key, across restarts",
    )
    names.add_argument(
        "--registry-max-names",
        metavar="N",
        type=_positive_int(1),
        default=100_000,
        help="names the registry may hold; new names beyond it are refused (default 100000)",
    )
    add_robustness_flags(limits)
    add_cluster_flags(parser)
    add_room_flags(parser, _positive_int)
    add_mailbox_flags(parser, _positive_int)
    return parser


def add_cluster_flags(parser: argparse.ArgumentParser) -> None:
    """Relay processes that act as one relay through a shared Redis (docs/deploy.md, "Scaling out")."""
    cluster = parser.add_argument_group("cluster (several relay processes acting as one; needs susurro[cluster])")
    cluster.add_argument(
        "--cluster",
        metavar="URL",
        help="share rooms, presence, names and mailboxes with other relays through the Redis at "
        "redis://HOST:PORT/DB (rediss:// for TLS); the password is never part of the URL",
    )
    cluster.add_argument(
        "--cluster-password-file",
        metavar="FILE",
        help="the Redis password, on the first line of FILE (mode 600); default: $SUSURRO_REDIS_PASSWORD",
    )
    cluster.add_argument(
        "--import-sqlite",
        metavar="DIR",
        help="with --cluster: copy the rooms, prekeys and waiting mail a single relay kept under --data-dir DIR "
        "into the cluster's (empty) Redis, then exit; run it with that relay stopped",
    )


def add_robustness_flags(limits: argparse._ArgumentGroup) -> None:
    """Keepalive, flood and per-address limits; defaults in docs/deploy.md."""
    limits.add_argument(
        "--idle-ping",
        type=float,
        default=DEFAULT_IDLE_PING,
        help=f"seconds of silence from a member before the relay sends a keepalive (default {DEFAULT_IDLE_PING:g})",
    )
    limits.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"seconds of silence before a member is disconnected (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    limits.add_argument(
        "--send-timeout",
        type=float,
        default=DEFAULT_SEND_TIMEOUT,
        help=f"seconds one send to a client may block before it is dropped (default {DEFAULT_SEND_TIMEOUT:g})",
    )
    limits.add_argument(
        "--max-per-ip",
        type=_positive_int(1),
        default=DEFAULT_MAX_PER_IP,
        help=f"connections at once from one address; loopback is exempt (default {DEFAULT_MAX_PER_IP})",
    )
    limits.add_argument(
        "--limit-loopback",
        action="store_true",
        help="apply --max-per-ip to loopback addresses too (default: exempt, for local demos and SSH tunnels)",
    )
    limits.add_argument(
        "--rate-burst",
        type=_positive_int(1),
        default=DEFAULT_RATE_BURST,
        help=f"frames a member may send at once before the rate applies (default {DEFAULT_RATE_BURST})",
    )
    limits.add_argument(
        "--rate-per-second",
        type=float,
        default=DEFAULT_RATE_PER_SECOND,
        help=f"sustained frames per second per member; 0 turns flood control off (default {DEFAULT_RATE_PER_SECOND:g})",
    )
    add_capacity_flags(limits)


def add_capacity_flags(limits: argparse._ArgumentGroup) -> None:
    """Pacing, unfinished frames, one memory budget, the pre-join quota, I/O threads (docs/deploy.md)."""
    limits.add_argument(
        "--rate-grace",
        type=float,
        default=DEFAULT_RATE_GRACE,
        help="seconds a member sending faster than the rate may stay slowed down before it is disconnected "
        f"(default {DEFAULT_RATE_GRACE:g})",
    )
    limits.add_argument(
        "--frame-timeout",
        type=float,
        default=DEFAULT_FRAME_TIMEOUT,
        help=f"seconds a started frame may take to arrive in full (default {DEFAULT_FRAME_TIMEOUT:g})",
    )
    limits.add_argument(
        "--memory-budget",
        type=_positive_int(1024 * 1024),
        default=DEFAULT_MEMORY_BUDGET,
        help="bytes buffered for all connections (input and outboxes) before the relay stops reading new input "
        f"until they drain (default {DEFAULT_MEMORY_BUDGET})",
    )
    limits.add_argument(
        "--max-partial-bytes",
        type=_positive_int(64 * 1024),
        default=DEFAULT_MAX_PARTIAL_BYTES,
        help="bytes of unfinished frames across all connections; past it the largest holders are cut "
        f"(default {DEFAULT_MAX_PARTIAL_BYTES})",
    )
    limits.add_argument(
        "--max-pending",
        type=_positive_int(1),
        default=None,
        help="connections that have not joined yet, at most; past it the oldest is cut (default --max-clients / 4)",
    )
    limits.add_argument(
        "--io-threads",
        type=_positive_int(1, 64),
        default=DEFAULT_IO_THREADS,
        help=f"event-loop threads sharing the connections (default {DEFAULT_IO_THREADS})",
    )
    limits.add_argument(
        "--flush-threads",
        type=_positive_int(0, 8),
        default=DEFAULT_FLUSH_THREADS,
        help="threads per event loop that send the copies of a message to a large room while the loop "
        f"reads on (0: the loop sends every copy itself and waits; default {DEFAULT_FLUSH_THREADS})",
    )
    limits.add_argument(
        "--fanout-hold-ms",
        type=_positive_int(0, MAX_FANOUT_HOLD_MS),
        default=DEFAULT_FANOUT_HOLD_MS,
        help="milliseconds a pass that wrote to many members may keep its copies while more input arrives, "
        f"so several messages leave in one send per member (0: off; default {DEFAULT_FANOUT_HOLD_MS})",
    )
    limits.add_argument(
        "--no-memory-trim",
        dest="memory_trim",
        action="store_false",
        help="keep the memory the C allocator holds free after a burst (many joins, a large fan-out) instead "
        "of giving it back with malloc_trim when the resident size grew 8 MiB more than the relay's buffers "
        "explain; a trim pauses allocating threads for a few ms (default: trim, where glibc has malloc_trim)",
    )


def robustness_flag_error(args: argparse.Namespace) -> str | None:
    if not 0 < args.idle_ping < args.idle_timeout:
        return "--idle-ping must be positive and below --idle-timeout"
    if args.send_timeout <= 0:
        return "--send-timeout must be positive"
    if args.rate_per_second < 0:
        return "--rate-per-second must be 0 (off) or positive"
    if args.rate_grace <= 0 or args.frame_timeout <= 0:
        return "--rate-grace and --frame-timeout must be positive"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    document_environment(parser)
    apply_environment(parser, os.environ)  # flag > SUSURRO_RELAY_* variable > default
    args = parser.parse_args(argv)
    if args.tls_key and not args.tls_cert:
        print("susurro-relay: --tls-key needs --tls-cert", file=sys.stderr)
        return 2
    if args.handshake_timeout <= 0:
        print("susurro-relay: --handshake-timeout must be positive", file=sys.stderr)
        return 2
    if (problem := robustness_flag_error(args)) is not None:
        print(f"susurro-relay: {problem}", file=sys.stderr)
        return 2
    if args.import_sqlite is not None:
        return _import_sqlite(args)
    try:
        logs = configure_logging(args.log_level, args.log_file)
    except OSError as exc:
        print(f"susurro-relay: cannot open log file: {exc}", file=sys.stderr)
        return 2
    # SIGHUP (a logrotate postrotate step) reopens the log file and never stops
    # the relay. The handler only sets a flag: the main loop below does the
    # reopening, so a signal cannot land inside a lock the logging code holds.
    hangups: list[int] = []
    signal.signal(signal.SIGHUP, lambda signum, frame: hangups.append(signum))
    try:
        return _run(args, logs, hangups)
    finally:
        logs.stop()  # writes out every queued line before the process ends


def _import_sqlite(args: argparse.Namespace) -> int:
    """``--cluster URL --import-sqlite DIR``: one relay's SQLite data into the cluster's Redis (docs/deploy.md)."""
    if not args.cluster:
        print("susurro-relay: --import-sqlite needs --cluster (the Redis to copy into)", file=sys.stderr)
        return 2
    try:
        from .cluster.migrate import import_sqlite
    except ModuleNotFoundError as exc:
        if exc.name != "redis":
            raise
        print("susurro-relay: --cluster needs the redis package: pip install 'susurro[cluster]'", file=sys.stderr)
        return 2
    config = RelayConfig(**room_settings(args), **mailbox_settings(args))  # type: ignore[arg-type]
    try:
        copied = import_sqlite(args.import_sqlite, args.cluster, args.cluster_password_file, config)
    except (StoreError, ClusterConfigError) as exc:
        print(f"susurro-relay: {exc}", file=sys.stderr)
        return 2
    for line in copied.left_out:
        print(f"left out: {line}")
    print(copied.summary())
    return 0


def _run(args: argparse.Namespace, logs: LogSetup, hangups: list[int]) -> int:
    config = RelayConfig(
        host=args.host,
        port=args.port,
        max_frame=args.max_frame,
        max_clients=args.max_clients,
        max_recipients=args.max_recipients,
        outbox_bytes=args.outbox_bytes,
        handshake_timeout=args.handshake_timeout,
        log_ciphertext=args.log_ciphertext,
        registry=args.registry,
        registry_max_names=args.registry_max_names,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        idle_ping=args.idle_ping,
        idle_timeout=args.idle_timeout,
        send_timeout=args.send_timeout,
        max_per_ip=args.max_per_ip,
        limit_loopback=args.limit_loopback,
        rate_burst=args.rate_burst,
        rate_per_second=args.rate_per_second,
        rate_grace=args.rate_grace,
        frame_timeout=args.frame_timeout,
        memory_budget=args.memory_budget,
        max_partial_bytes=args.max_partial_bytes,
        max_pending=args.max_pending,
        io_threads=args.io_threads,
        flush_threads=args.flush_threads,
        fanout_hold=args.fanout_hold_ms / 1000,
        memory_trim=args.memory_trim,
        cluster=args.cluster,
        cluster_password_file=args.cluster_password_file,
        **room_settings(args),  # type: ignore[arg-type]
        **mailbox_settings(args),  # type: ignore[arg-type]
    )
    if args.cluster_password_file and not args.cluster:
        print("susurro-relay: --cluster-password-file needs --cluster", file=sys.stderr)
        return 2
    tune_collector()
    try:
        server = RelayServer(config)
    except (RegistryError, StoreError, ClusterConfigError) as exc:
        print(f"susurro-relay: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if exc.name != "redis":
            raise
        print("susurro-relay: --cluster needs the redis package: pip install 'susurro[cluster]'", file=sys.stderr)
        return 2
    try:
        host, port = server.start()
    except TLSConfigError as exc:
        print(f"susurro-relay: TLS: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"susurro-relay: cannot listen on {format_address(args.host, args.port)}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    except ResourceLimitError as exc:
        print(f"susurro-relay: {exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    status: StatusServer | bool | None = None
    try:  # a SIGTERM right after start must still stop cleanly
        logging.getLogger("susurro.relay").info(
            "start addr=%s max_clients=%d tls=%s build=%s",
            format_address(host, port),
            config.max_clients,
            _on(args.tls_cert),
            compiled.state().kind.name.lower(),
        )
        build_notice = compiled.notice(compiled.state())
        if build_notice is not None:
            logging.getLogger("susurro.relay").warning("build %s", build_notice)
        print(f"listening on {format_address(host, port)}", flush=True)
        status = _start_status(args, server)
        if status is False:
            server.stop()
            return 1
        say = lambda line: print(line, flush=True)  # noqa: E731
        flags = client_flags(server_context(args.tls_cert, args.tls_key), args.tls_cert) if args.tls_cert else None
        announce(host, port, bool(args.tls_cert), say, logging.getLogger("susurro.relay"), flags)
        while not server.wait(0.5):
            if hangups:
                hangups.clear()
                logs.reopen()
    except KeyboardInterrupt:
        server.stop()
    if isinstance(status, StatusServer):
        status.stop()
    logging.getLogger("susurro.relay").info("stopped")
    return 0


def _on(value: object) -> str:
    return "on" if value else "off"


def _start_status(args: argparse.Namespace, server: RelayServer) -> StatusServer | bool | None:
    """Start ``--status-port`` if asked; False (after saying why) if it cannot bind."""
    if args.status_port is None:
        return None
    cluster = server.cluster
    status = StatusServer(
        args.status_host,
        args.status_port,
        # Members of this relay: the roster also holds stand-ins for other nodes' members.
        lambda: (server.core.connection_count, len(server.core.roster) - (cluster.remote_members if cluster else 0)),
        tls=bool(args.tls_cert),
        cluster=cluster.status if cluster is not None else None,
    )
    try:
        host, port = status.start()
    except OSError as exc:
        where = format_address(args.status_host, args.status_port)
        print(f"susurro-relay: cannot serve status on {where}: {exc.strerror or exc}", file=sys.stderr)
        return False
    print(f"status on http://{format_address(host, port)}/status", flush=True)
    logging.getLogger("susurro.relay").info("status addr=%s", format_address(host, port))
    return status


if __name__ == "__main__":
    sys.exit(main())
