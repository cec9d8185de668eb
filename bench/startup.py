"""`streamlit run` to the login page, with models already trained; idle memory of the process.

The baseline, measured in the same run, is Streamlit serving a one-line app the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from model.settings import PROJECT_ROOT

TIMEOUT = 60.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _serve(script: Path, env: dict[str, str], marker: str) -> tuple[float, float]:
    """Seconds from launch until the page shows ``marker`` in headless Chromium, and the RSS then."""
    from playwright.sync_api import sync_playwright

    from bench._common import free_port

    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
               "--server.headless", "true", "--server.address", "127.0.0.1"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = started + TIMEOUT
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)  # noqa: S310
                    break
                except OSError:
                    if time.perf_counter() > deadline:
                        raise TimeoutError("streamlit did not start") from None
                    time.sleep(0.05)
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text(marker).first.wait_for(timeout=TIMEOUT * 1000)
            seconds = time.perf_counter() - started
            return seconds, _rss_mb(process.pid)
        finally:
            process.terminate()
            process.wait(timeout=20)
            browser.close()


def main() -> None:
    from bench._common import engine_with_models, isolated_home

    home = isolated_home()
    engine_with_models()
    env = dict(os.environ, MATHSIGHT_HOME=str(home), MATHSIGHT_ADMIN_PASSWORD="bench-admin-password")
    trivial = Path(tempfile.mkdtemp()) / "hello.py"
    trivial.write_text("import streamlit as st\nst.write('hello bench')\n")
    base, base_rss = _serve(trivial, env, "hello bench")
    ours, ours_rss = _serve(PROJECT_ROOT / "dashboard" / "server.py", env, "Sign in to mathsight")
    print(f"login page shown after {ours:.2f} s  [target <= 5 s]; trivial Streamlit app: {base:.2f} s")
    print(f"ratio mathsight / trivial app: {ours / base:.2f}")
    print(f"dashboard process RSS at the login page: {ours_rss:.0f} MB  [target <= 400 MB]; trivial: {base_rss:.0f} MB")


if __name__ == "__main__":
    main()
