"""The whole bill of a simulated month, as line items: what each deployment kind pays for, and why.

`bill_of(scenario, deployment, ledger, horizon_s)` returns a `Bill` whose `total` is the run's monthly cost
(simulator/engine.py uses it). Every line has a quantity, unit, price, source and share of the total;
replica (node) time is split into busy, idle, starting and stopping, so the bill says what the idle time
costs. Quantities are per 30 days (replica time scaled from the horizon; a local GPU is a fixed monthly cost).

- Vertex: node-hours busy / idle / starting, plus the rounding of each replica's up time to the billing
  increment, at (machine + accelerator) x (1 - spot discount when spot).
- Ray: the head node (always on, no GPU); GPU nodes billed from node start to node removal: a node outlives
  its replica by the cluster autoscaler's idle timeout (`RayServeConfig.node_idle_timeout_s`), and a replica
  started within it reuses the node (its start-up is still the full one: the simulator does not shorten it);
  each node billed for at least `node_min_billed_s`.
- Local: the fixed monthly cost per GPU; its busy and idle GPU-hours shown at no price.
- Cloud kinds (Vertex, Ray, the Vertex part of hybrid): internet egress of the results (the layer PNGs of each
  completed job, bytes = layers x resolution^2 x `result_bytes_per_px`).
"""

from __future__ import annotations

from typing import TypedDict

from loadlab.cases import ALL_CASES
from simulator.pricing import PRICE_TABLE, billed_seconds, replica_price_per_hour
from simulator.workload import MONTH_S

GIB = 1024 ** 3


class LineItem(TypedDict):
    item: str
    quantity: float
    unit: str
    price: float          # $ per unit
    source: str
    cost: float           # $ per month
    share: float          # of the total (0 when the total is 0)


class Bill(TypedDict):
    lines: list[LineItem]
    total: float


def line(item: str, quantity: float, unit: str, price: float, source: str) -> LineItem:
    return {"item": item, "quantity": quantity, "unit": unit, "price": price, "source": source,
            "cost": quantity * price, "share": 0.0}


def finish(lines: list[LineItem]) -> Bill:
    total = sum(x["cost"] for x in lines)
    for x in lines:
        x["share"] = x["cost"] / total if total else 0.0
    return {"lines": lines, "total": total}


def _src(key: str) -> str:
    p = PRICE_TABLE[key]
    return f"{key}: {p.source} ({p.date})"


def bill_of(scenario, deployment, ledger, horizon_s: float) -> Bill:
    """The month's bill of `deployment` (built from `scenario`) after a run of `horizon_s` seconds."""
    prices, scale = scenario.prices, MONTH_S / horizon_s if horizon_s else 0.0
    kind = scenario.kind
    if kind == "local":
        return finish(local_lines(deployment, prices, horizon_s))
    if kind == "hybrid":
        lines = local_lines(deployment.local, prices, horizon_s, "local GPU (fallback)")
        lines += vertex_lines(deployment.vertex, prices, horizon_s, scale)
        return finish(lines + egress_lines(ledger, prices, scale, exclude="local"))
    if kind == "ray":
        return finish(ray_lines(deployment, prices, horizon_s, scale) + egress_lines(ledger, prices, scale))
    if kind == "vertex":
        return finish(vertex_lines(deployment, prices, horizon_s, scale) + egress_lines(ledger, prices, scale))
    cost = deployment.cost(horizon_s)      # a kind without line items: its total as one line
    return finish([line(f"{kind} (no line items)", 1, "month", cost["usage"] * scale + cost["fixed_per_month"],
                        "the deployment's own cost()")])


def local_lines(gpu, prices: dict, horizon_s: float, what: str = "local GPU") -> list[LineItem]:
    busy_h = gpu.busy_s / 3600 * (MONTH_S / horizon_s) if horizon_s else 0.0
    month_h = gpu.gpus * MONTH_S / 3600
    note = "fixed cost, shown without a price"
    return [line(f"{what}: fixed cost", gpu.gpus, "GPU-month", prices["local_fixed_per_month"],
                 _src("local_fixed_per_month")),
            line(f"{what}: busy", busy_h, "GPU-h", 0.0, note),
            line(f"{what}: idle", max(0.0, month_h - busy_h), "GPU-h", 0.0, note)]


def replica_split(pool, horizon_s: float) -> dict[str, float]:
    """Seconds of the pool's replicas within the horizon: starting, busy, stopping, idle (the rest of up)."""
    starting = stopping = up = 0.0
    for r in pool.replicas:
        end = r.stopped_at if r.stopped_at is not None else horizon_s
        up += end - r.started_at
        starting += (r.ready_at if r.ready_at is not None else end) - r.started_at
        if r.stopping_at is not None:
            stopping += end - r.stopping_at
    busy = min(pool.busy_s, up - starting - stopping)
    return {"starting": starting, "busy": busy, "stopping": stopping,
            "idle": max(0.0, up - starting - stopping - busy), "up": up}


def vertex_lines(pool, prices: dict, horizon: float, scale: float) -> list[LineItem]:
    spot = pool.config.spot
    price = replica_price_per_hour(prices, spot)
    src = _src("machine_per_hour") + "; " + _src("accelerator_per_hour") + ("; " + _src("spot_discount") if spot else "")
    split = replica_split(pool, horizon)
    billed = sum(pool.bill(up) for up in pool.uptimes(horizon))
    what = "Vertex node" + (" (spot)" if spot else "")
    lines = [line(f"{what}: {state}", split[state] / 3600 * scale, "node-h", price, src)
             for state in ("busy", "idle", "starting", "stopping")]
    lines.append(line(f"{what}: rounding up to the {prices['billing_granularity_s']:g} s billing increment",
                      max(0.0, billed - split["up"]) / 3600 * scale, "node-h", price,
                      _src("billing_granularity_s")))
    return lines


def ray_nodes(pool, horizon_s: float, idle_timeout_s: float) -> list[tuple[float, float]]:
    """(start, removal) of the GPU nodes: a replica takes a node left idle less than `idle_timeout_s` ago,
    else a new one starts with it; a node is removed `idle_timeout_s` after its last replica stopped."""
    nodes: list[list[float]] = []        # [start, free_since or None while a replica holds it]
    free: list[int] = []
    holder: dict[int, int] = {}
    events = []
    for r in pool.replicas:
        events.append((r.started_at, 1, r.id))
        if r.stopped_at is not None:
            events.append((r.stopped_at, 0, r.id))
    for t, starts, rid in sorted(events):
        if starts:
            free = [n for n in free if nodes[n][1] + idle_timeout_s >= t]
            if free:
                n = free.pop()           # the most recently freed node
            else:
                nodes.append([t, 0.0])
                n = len(nodes) - 1
            nodes[n][1] = None
            holder[rid] = n
        else:
            n = holder.pop(rid)
            nodes[n][1] = t
            free.append(n)
    return [(s, horizon_s if f is None else min(horizon_s, f + idle_timeout_s)) for s, f in nodes]


def ray_lines(pool, prices: dict, horizon_s: float, scale: float) -> list[LineItem]:
    price, src = prices["gpu_node_per_hour"], _src("gpu_node_per_hour")
    timeout = pool.config.node_idle_timeout_s
    split = replica_split(pool, horizon_s)
    nodes = ray_nodes(pool, horizon_s, timeout)
    node_s = sum(end - start for start, end in nodes)
    billed = sum(max(prices["node_min_billed_s"], billed_seconds(end - start, 1.0)) for start, end in nodes)
    lines = [line("Ray head node (always on, no GPU)", MONTH_S / 3600, "node-h", prices["ray_head_per_hour"],
                  _src("ray_head_per_hour"))]
    lines += [line(f"Ray GPU node, replica {state}", split[state] / 3600 * scale, "node-h", price, src)
              for state in ("busy", "idle", "starting", "stopping")]
    lines.append(line(f"Ray GPU node idle after its replica, until removal (idle timeout {timeout:g} s)",
                      max(0.0, node_s - split["up"]) / 3600 * scale, "node-h", price,
                      "--ray-node-idle-timeout: Ray's cluster autoscaler idle_timeout_minutes, default 5 "
                      "(ray/autoscaler/gcp/defaults.yaml; KubeRay's default is 60 s)"))
    lines.append(line(f"Ray GPU node minimum billing ({prices['node_min_billed_s']:g} s per node)",
                      max(0.0, billed - node_s) / 3600 * scale, "node-h", price, _src("node_min_billed_s")))
    return lines


def result_bytes(case: str, bytes_per_px: float) -> float:
    c = ALL_CASES.get(case)
    return c.layers * c.resolution ** 2 * bytes_per_px if c else 0.0


def egress_lines(ledger, prices: dict, scale: float, exclude: str | None = None) -> list[LineItem]:
    """Results sent to the internet: every completed job's layers (cache hits included: the result still
    leaves), except those served by `exclude` (a label prefix: the hybrid's local GPU)."""
    total = sum(n * result_bytes(case, prices["result_bytes_per_px"])
                for (case, label), n in ledger.served_by_case.items()
                if exclude is None or not label.startswith(exclude))
    return [line("internet egress of results (layer PNGs)", total / GIB * scale, "GiB", prices["egress_per_gib"],
                 _src("egress_per_gib") + "; bytes per job: " + _src("result_bytes_per_px"))]


def mean_bill(bills: list[Bill]) -> Bill:
    """The mean of the same deployment's bills over replications, line by line (same lines in each)."""
    if len(bills) == 1:
        return bills[0]
    lines = []
    for same in zip(*(b["lines"] for b in bills), strict=True):
        first = same[0]
        lines.append(line(first["item"], sum(x["quantity"] for x in same) / len(same), first["unit"], first["price"],
                          first["source"]))
    return finish(lines)


def format_bill(bill: Bill, cost_head: str = "$/month") -> str:
    """The bill as a text table (one line each; sources after the table, numbered); `cost_head` names the
    cost column (a trace's bill: "$ trace")."""
    rows = [(x["item"], f"{x['quantity']:,.2f} {x['unit']}", f"${x['price']:,.4g}", f"${x['cost']:,.2f}",
             f"{100 * x['share']:.1f} %") for x in bill["lines"]]
    width = max(len(r[0]) for r in rows)
    out = [f"  {'line':<{width}}  {'quantity':>16}  {'price':>9}  {cost_head:>10}  {'share':>7}"]
    out += [f"  {a:<{width}}  {b:>16}  {c:>9}  {d:>10}  {e:>7}" for a, b, c, d, e in rows]
    out.append(f"  {'total':<{width}}  {'':>16}  {'':>9}  {'$' + format(bill['total'], ',.2f'):>10}")
    sources = sorted({x["source"] for x in bill["lines"]})
    out += ["  sources:"] + [f"    - {s}" for s in sources]
    return "\n".join(out)
