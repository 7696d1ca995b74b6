"""invoiced's `/metrics` scraped by a real Prometheus server (Debian's `prometheus`): the query
API returns the invoices the test sent, and the scrape is healthy. In CI (CI=true) a missing
`prometheus` fails the test; elsewhere it is skipped, saying why (scripts/test.sh installs it)."""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from conftest import Invoiced

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prometheus_binary():
    path = shutil.which("prometheus")
    if path is None:
        message = "prometheus is not installed (scripts/test.sh installs Debian's package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must run this test)")
        pytest.skip(message)
    return path


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        answer = json.load(r)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_a_real_prometheus_scrapes_the_invoices_it_was_sent(tmp_path):
    binary = prometheus_binary()
    metrics_port, web_port = free_port(), free_port()
    inv = Invoiced(str(tmp_path / "invoiced")).start([f"--metrics-listen=127.0.0.1:{metrics_port}"])
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: invoiced\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n")
    prom = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{web_port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
    try:
        rpc = inv.rpc()
        sent = 7
        for i in range(sent):
            rpc.invoice(amount_msat=1000 + i, label=f"scraped-{i}", description="metrics")
        held = rpc.call("holdinvoice", {"amount_msat": 5000, "description": "held"})
        rpc.call("holdinvoicecancel", {"payment_hash": held["payment_hash"]})

        def scraped():
            try:
                created = query(web_port, 'sum(invoiced_invoices_created_total{kind="bolt11"})')
                canceled = query(web_port, 'invoiced_hold_invoices{state="canceled"}')
            except OSError:
                return None
            if not created or not canceled:
                return None
            return float(created[0]["value"][1]), float(canceled[0]["value"][1])

        deadline = time.time() + 60
        while scraped() != (sent, 1.0):
            assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.time() < deadline, f"Prometheus has {scraped()}"
            time.sleep(0.5)
        up = query(web_port, 'up{job="invoiced"}')
        assert up and up[0]["value"][1] == "1"
        requests = query(web_port, 'invoiced_rpc_requests_total{method="invoice",code="ok"}')
        assert float(requests[0]["value"][1]) == sent
        head = query(web_port, "invoiced_log_head_sequence")
        assert float(head[0]["value"][1]) == sent + 2

        # docs/OPERATIONS.md documents every metric the scrape shows, and the Grafana dashboard's
        # queries are valid PromQL to this Prometheus over documented metrics only.
        documented = set(re.findall(r"^\| `(invoiced_[a-z_]+)`", (ROOT / "docs" / "OPERATIONS.md").read_text(), re.M))
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            families = set(re.findall(r"^# TYPE (\S+) ", r.read().decode(), re.M))
        assert len(families) >= 20 and families <= documented, families - documented
        dashboard = json.loads((ROOT / "docs" / "grafana-invoiced.json").read_text())
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        assert len(exprs) >= 16
        for expr in exprs:
            for name in re.findall(r"invoiced_[a-z_]+", expr):
                family = re.sub(r"_(bucket|sum|count)$", "", name)
                assert family in documented, f"{name} (in {expr}) is not a metric invoiced documents"
            query(web_port, expr.replace("$job", ".*").replace("$__rate_interval", "1m"))
    finally:
        prom.terminate()
        prom.wait(30)
        inv.stop()
