"""Sample events and rules for ``rulejet demo``: a small deterministic
generator of web/security log events (the shape the benchmarks use), so
the main job runs on data the project makes itself."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

EVENTS = ["view", "search", "login", "logout", "purchase", "signup", "password_reset", "api_call"]
WEIGHTS = [35, 15, 15, 5, 10, 3, 2, 15]
COUNTRIES = ["US", "DE", "IN", "BR", "GB", "FR", "JP", "CN", "RU", "NG", "MX", "CA", "SE", "ES"]
NAMES = ["Ana", "José", "Zoë", "李", "Søren", 'O"Brien', "Back\\slash", "Ivan", "さくら", "Amir"]
PATHS = ["/", "/products/{}", "/api/v1/items/{}", "/api/v2/orders/{}", "/admin/users", "/login",
         "/account/settings", "/wp-login.php", "/.env", "/search?q={}"]  # fmt: skip
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
AGENTS = ["Mozilla/5.0 (iPhone)", "Mozilla/5.0 (Windows) Safari", "curl/8.5.0",
          "python-requests/2.31", "Googlebot/2.1", "Go-http-client/1.1"]  # fmt: skip


def make_event(rng: random.Random, i: int) -> dict[str, object]:
    event = rng.choices(EVENTS, WEIGHTS)[0]
    status = rng.choices([200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 500, 502, 503],
                         [60, 3, 2, 2, 4, 6, 4, 3, 2, 8, 3, 1, 2])[0]  # fmt: skip
    user: dict[str, object] = {
        "id": rng.randrange(1, 10_000_000),
        "name": f"{rng.choice(NAMES)} {rng.randrange(100)}",
        "age": rng.randrange(13, 90),
        "roles": rng.sample(["user", "admin", "editor", "support"], rng.randrange(1, 3)),
        "profile": {"country": rng.choice(COUNTRIES)},
    }
    if rng.random() < 0.4:
        user["profile"]["tier"] = rng.choice(["free", "gold", "platinum", "diamond"])  # type: ignore[index]
    http: dict[str, object] = {
        "method": rng.choice(METHODS),
        "path": rng.choice(PATHS).format(rng.randrange(1000)),
        "status": status,
        "latency_ms": round(rng.lognormvariate(4, 1), 1),
    }
    if rng.random() < 0.7:
        http["ua"] = rng.choice(AGENTS)
    flags: dict[str, object] = {"bot": rng.random() < 0.05}
    if event in ("login", "password_reset"):
        flags["mfa"] = rng.random() < 0.6
    return {
        "ts": f"2026-11-{1 + i * 29 // 1_000_000 % 29:02d}T{rng.randrange(24):02d}:00:00Z",
        "event": event,
        "user": user,
        "http": http,
        "tags": rng.sample(["web", "mobile", "api", "promo", "internal", "tor"], rng.randrange(3)),
        "amount": round(rng.uniform(1, 2000), 2) if event == "purchase" else None,
        "flags": flags,
    }


def write_events(path: str | Path, count: int, seed: int = 7) -> int:
    """Write ``count`` NDJSON events; returns the bytes written."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(count):
            f.write(json.dumps(make_event(rng, i), ensure_ascii=rng.random() < 0.05) + "\n")
        return f.tell()


def demo_rules_path() -> Path:
    """The bundled sample rule file."""
    return Path(str(resources.files("rulejet") / "data" / "demo_rules.yaml"))
