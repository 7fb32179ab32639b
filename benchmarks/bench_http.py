"""HTTP: rulejet serve against nginx, aiohttp's FileResponse and http.server.

    python benchmarks/bench_http.py [--seconds 8]

Needs wrk and nginx (Debian: apt-get install wrk nginx). In the same run,
on loopback: a 1 GiB file (wrk -t1 -c4: MB/s, and the server's CPU
seconds per GB sent, from /proc/PID/stat over the server's processes and
threads) and a 4 KiB file (wrk -t1 -c64 --latency: requests/s and p99),
served by `rulejet serve`, nginx (sendfile on, one worker, access log
off; its config is written here), aiohttp's web.FileResponse and
`python -m http.server`; plus events/s through rulejet's /v1/evaluate
with NDJSON bodies of 1,000 events (wrk with a Lua script). Files live
under benchmarks/.data/http and are read once first so they come from the
page cache.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import events_file, machine_facts, table

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "http"
TICK = os.sysconf("SC_CLK_TCK")

AIOHTTP_APP = """
import sys
from aiohttp import web
root = sys.argv[1]
async def handle(request):
    return web.FileResponse(root + "/" + request.match_info["name"])
app = web.Application()
app.router.add_get("/files/{name}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /files/ {{ alias {root}/; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.args}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    """utime + stime of pid and every descendant (threads included)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += int(stats[p][11]) + int(stats[p][12])
        todo += children.get(p, [])
    return total / TICK


def wrk(url: str, conns: int, secs: int, script: str | None = None) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{secs}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", script]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    units = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", out)
    assert m, out
    dur = float(m.group(2)) * {"s": 1, "m": 60, "ms": 1e-3}[m.group(3)]
    read = float(m.group(4)) * units[m.group(5)]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1, "s": 1e3}
    lat = float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": int(m.group(1)) / dur,
        "bytes": read,
        "secs": dur,
        "p99_ms": lat,
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def make_files() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    big = DATA / "big.bin"
    if not big.exists() or big.stat().st_size != 1 << 30:
        chunk = os.urandom(1 << 20)
        with open(big, "wb") as f:
            for _ in range(1024):
                f.write(chunk)
    (DATA / "small.bin").write_bytes(os.urandom(4096))
    with open(big, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass


def start_servers(tmp: Path) -> dict[str, tuple[subprocess.Popen[bytes], int]]:
    servers = {}
    path = str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")
    env = {**os.environ, "PYTHONPATH": path}
    port = free_port()
    rules = HERE.parent.parent / "shared" / "bench" / "rules_10.yaml"
    servers["rulejet serve"] = (subprocess.Popen(
        [sys.executable, "-c", "import sys; from rulejet.cli import main; sys.exit(main())",
         "serve", "--rules", str(rules), "--root", str(DATA), "--log", str(tmp / "log"),
         "--port", str(port)], env=env, stderr=subprocess.DEVNULL), port)  # fmt: skip
    if shutil.which("nginx"):
        port = free_port()
        conf = tmp / "nginx.conf"
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (tmp / d).mkdir()
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=DATA))
        servers["nginx (sendfile on, 1 worker)"] = (
            subprocess.Popen(["nginx", "-c", str(conf), "-e", str(tmp / "error.log")],
                             stderr=subprocess.DEVNULL), port)  # fmt: skip
    port = free_port()
    app = tmp / "aio_app.py"
    app.write_text(AIOHTTP_APP)
    servers["aiohttp web.FileResponse"] = (
        subprocess.Popen([sys.executable, str(app), str(DATA), str(port)]), port)  # fmt: skip
    port = free_port()
    servers["python -m http.server"] = (subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(DATA.parent)], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL), port)  # fmt: skip
    for proc, p in servers.values():
        wait_port(p, proc)
    return servers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("needs wrk: apt-get install wrk nginx")
    make_files()
    tmp = Path(tempfile.mkdtemp(prefix="rulejet-bench-http-"))
    servers = start_servers(tmp)
    rows = []
    res: dict[str, dict[str, float]] = {}
    try:
        for name, (proc, port) in servers.items():
            prefix = "/http/" if name.startswith("python") else "/files/"
            base = f"http://127.0.0.1:{port}{prefix}"
            c0 = cpu_seconds(proc.pid)
            big = wrk(base + "big.bin", 4, args.seconds)
            cpu = cpu_seconds(proc.pid) - c0
            small = wrk(base + "small.bin", 64, args.seconds)
            mbs = big["bytes"] / big["secs"] / 1e6
            per_gb = cpu / (big["bytes"] / 1e9)
            res[name] = {"mbs": mbs, "cpu_gb": per_gb, "rps": small["rps"], "p99": small["p99_ms"]}
            rps, p99 = small["rps"], small["p99_ms"]
            print(f"  {name}: {mbs:,.0f} MB/s at {per_gb:.2f} CPU-s/GB; "
                  f"4 KiB {rps:,.0f} req/s p99 {p99:.1f} ms", flush=True)  # fmt: skip
            rows.append([name, f"{mbs:,.0f}", f"{per_gb:.2f}", f"{small['rps']:,.0f}",
                         f"{small['p99_ms']:.1f}"])  # fmt: skip
        # /v1/evaluate with 1,000-event NDJSON bodies.
        body = tmp / "body.ndjson"
        with open(events_file(), "rb") as f:
            body.write_bytes(b"".join(next(f) for _ in range(1000)))
        lua = tmp / "post.lua"
        lua.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/x-ndjson"\n'
            f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
        )
        _, port = servers["rulejet serve"]
        ev = wrk(f"http://127.0.0.1:{port}/v1/evaluate", 4, args.seconds, str(lua))
        assert ev["non2xx"] == 0
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"wrk -t1, {args.seconds} s each; 1 GiB file with -c4, 4 KiB file with -c64")
    print(machine_facts())
    print()
    print(table(["server", "1 GiB MB/s", "CPU-s per GB", "4 KiB req/s", "4 KiB p99 ms"], rows))
    print()
    me = res["rulejet serve"]
    if "nginx (sendfile on, 1 worker)" in res:
        ng = res["nginx (sendfile on, 1 worker)"]
        print(f"large file: {me['mbs'] / ng['mbs']:.2f}x nginx's MB/s at "
              f"{me['cpu_gb'] / ng['cpu_gb']:.2f}x its CPU per GB")  # fmt: skip
        print(f"small file: {me['rps'] / ng['rps']:.0%} of nginx's requests/s")
    aio = res["aiohttp web.FileResponse"]
    print(f"small file: {me['rps'] / aio['rps']:.1f}x aiohttp FileResponse's requests/s")
    print(f"/v1/evaluate: {ev['rps'] * 1000:,.0f} events/s "
          f"({ev['rps']:,.0f} requests/s of 1,000 events, -c4)")  # fmt: skip


if __name__ == "__main__":
    main()
