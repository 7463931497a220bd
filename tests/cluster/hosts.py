"""Hosts on this machine: network namespaces joined to a database host by veth pairs with link-local addresses.

Each host is a namespace with one link to the database namespace (169.254.<100+i>.2 ↔ .1), where a test-only
PostgreSQL cluster (initdb, pg_ctl) listens on the database ends of those links and on a Unix socket in a
temporary directory (the test reads the database through it; sockets are not namespaced). Nothing is added to
the machine's own network namespace. `close()` removes every process, namespace (and with it every link) and
file it made, whatever state the run is in.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PG_PORT = 5432


def missing_requirement() -> str | None:
    """Why this machine cannot build the hosts, or None."""
    if os.geteuid() != 0:
        return "the cluster test builds network namespaces and must run as root"
    for tool in ("ip", "runuser"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    if postgres_bin("initdb") is None:
        return "PostgreSQL's initdb/pg_ctl are not installed"
    return None


def postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found is not None:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return None


def run(*command: str, timeout: float = 30.0) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass
class Host:
    index: int
    name: str
    namespace: str
    link: str
    """The host's end of its link to the database."""

    @property
    def address(self) -> str:
        return f"169.254.{100 + self.index}.2"

    @property
    def database_address(self) -> str:
        return f"169.254.{100 + self.index}.1"


@dataclass
class Cluster:
    prefix: str = field(default_factory=lambda: "dby" + secrets.token_hex(3))
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dobby-cluster-")))
    hosts: dict[str, Host] = field(default_factory=dict)
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    postgres_started: bool = False

    @property
    def database_namespace(self) -> str:
        return f"{self.prefix}-db"

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "pg-socket"

    def build(self, names: list[str]) -> None:
        self.workdir.chmod(0o755)
        self._namespace(self.database_namespace)
        for index, name in enumerate(names, start=1):
            host = Host(index, name, f"{self.prefix}-{name}", f"{self.prefix}h{index}")
            self._namespace(host.namespace)
            database_end = f"{self.prefix}d{index}"
            run("ip", "link", "add", host.link, "netns", host.namespace, "type", "veth", "peer", "name",
                database_end, "netns", self.database_namespace)  # fmt: skip
            run("ip", "-n", host.namespace, "addr", "add", f"{host.address}/30", "dev", host.link)
            run("ip", "-n", host.namespace, "link", "set", host.link, "up")
            run("ip", "-n", self.database_namespace, "addr", "add", f"{host.database_address}/30", "dev", database_end)
            run("ip", "-n", self.database_namespace, "link", "set", database_end, "up")
            self.hosts[name] = host

    def _namespace(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")

    def start_postgres(self) -> None:
        """A fresh cluster owned by the postgres user, listening on the database end of every link."""
        data = self.workdir / "pg-data"
        for directory in (data, self.socket_dir):
            directory.mkdir()
            shutil.chown(directory, "postgres", "postgres")
        initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        assert initdb is not None and pg_ctl is not None
        as_postgres = ("runuser", "-u", "postgres", "--")
        run(*as_postgres, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
            timeout=60)  # fmt: skip
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 169.254.0.0/16 trust\n")
        listen = ",".join(host.database_address for host in self.hosts.values())
        options = (
            f"-c listen_addresses={listen} -c port={PG_PORT} -c unix_socket_directories={self.socket_dir} "
            "-c max_connections=300 -c fsync=off -c full_page_writes=off -c shared_buffers=64MB"
        )
        self.postgres_started = True
        run("ip", "netns", "exec", self.database_namespace, *as_postgres, pg_ctl, "-D", str(data), "-l",
            str(data / "postgres.log"), "-o", options, "-w", "-t", "30", "start", timeout=40)  # fmt: skip
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as connection:
            connection.execute("CREATE DATABASE dobby")

    def admin_url(self, database: str = "dobby") -> str:
        """The database through the Unix socket (for the test's own reads)."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={PG_PORT}"

    def database_url(self, host: Host) -> str:
        """The database as `host` reaches it: over its link."""
        return f"postgresql://postgres@{host.database_address}:{PG_PORT}/dobby"

    def spawn(
        self, host: Host, *args: str, env: dict[str, str], log: Path, pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen[bytes]:
        """`dobby ARGS…` on `host` (`ip netns exec` execs it: the process id is dobby's own)."""
        with log.open("ab") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", host.namespace, sys.executable, "-m", "dobby.cli", *args],
                env={**env, "DOBBY_DATABASE_URL": self.database_url(host)},
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
            )
        self.processes.append(process)
        return process

    def dobby(
        self, host: Host, *args: str, env: dict[str, str], timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", host.namespace, sys.executable, "-m", "dobby.cli", *args],
            env={**env, "DOBBY_DATABASE_URL": self.database_url(host)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cut(self, host: Host) -> None:
        """The host loses its link (its processes live on, unable to reach the database)."""
        run("ip", "-n", host.namespace, "link", "set", host.link, "down")

    def restore(self, host: Host) -> None:
        run("ip", "-n", host.namespace, "link", "set", host.link, "up")

    def close(self) -> None:
        """Every process, the database, every namespace (and so every link), the files: whatever failed before."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        if self.postgres_started:
            pg_ctl = postgres_bin("pg_ctl")
            with contextlib.suppress(Exception):
                run("runuser", "-u", "postgres", "--", str(pg_ctl), "-D", str(self.workdir / "pg-data"), "-m",
                    "immediate", "-w", "stop", timeout=30)  # fmt: skip
        for namespace in reversed(self.namespaces):
            with contextlib.suppress(Exception):
                run("ip", "netns", "del", namespace)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.leftovers():
            time.sleep(0.1)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """Namespaces and links of this run still present on the machine."""
        namespaces = [line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()]
        links = [line for line in run("ip", "-o", "link").splitlines() if self.prefix in line]
        return [name for name in namespaces if name.startswith(self.prefix)] + links
