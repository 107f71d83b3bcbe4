"""The HTML report in a real browser: it renders, draws charts and stays offline.

Headless Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`,
fds 3 and 4, NUL-separated JSON), so no port is opened and no websocket library is needed.
The page session has the Network, Runtime and Log domains enabled before the report is
loaded, so the browser itself reports:

- every request the page makes (`Network.requestWillBeSent`): anything but the report's own
  file:// URL and data:/blob: URLs counts as a network request;
- console errors and assertions (`Runtime.consoleAPICalled`), uncaught exceptions
  (`Runtime.exceptionThrown`) and browser-side errors such as blocked or failed loads
  (`Log.entryAdded` at level error);
- any alert/confirm dialog (`Page.javascriptDialogOpening`), i.e. injected script running.

As a second fence `--host-resolver-rules="MAP * ~NOTFOUND"` makes every host name
unresolvable, so even a missed request could not leave the machine.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from reportdata import HOSTILE, build_document, vmvc_statistics_available

from vmvc.report import write_reports

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 900


class Browser:
    """A headless Chromium driven over `--remote-debugging-pipe`."""

    def __init__(self, user_data_dir: Path, log_path: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Park the child's ends above fd 10 so dup2 onto 3 and 4 cannot clobber them.
        child_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_r)
        os.close(from_browser_w)

        def wire_pipe() -> None:  # runs in the child between fork and exec
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        args = [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND", "--remote-debugging-pipe",
            f"--user-data-dir={user_data_dir}", f"--window-size={WIDTH},{HEIGHT}",
            "--hide-scrollbars", "about:blank",
        ]  # fmt: skip
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            close_fds=False,
            preexec_fn=wire_pipe,
        )
        os.close(child_r)
        os.close(child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # -- protocol ---------------------------------------------------------------------
    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no DevTools message from chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, *, page: bool = True,
             timeout: float = 30) -> dict[str, Any]:  # fmt: skip
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self.session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def _event(self, message: dict[str, Any]) -> None:
        self.events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":
            # Dismiss, or the page stays blocked; the event is kept as evidence.
            self._next_id += 1
            dismiss = {"id": self._next_id, "method": "Page.handleJavaScriptDialog",
                       "params": {"accept": False}, "sessionId": self.session}  # fmt: skip
            os.write(self._to_browser, json.dumps(dismiss).encode() + b"\0")

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for seen in self.events:
            if seen.get("method") == method:
                return seen
        while True:
            message = self._read(deadline)
            if "id" in message:
                continue
            self._event(message)
            if message.get("method") == method:
                return message

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- page -------------------------------------------------------------------------
    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, page=False)
        attached = self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False
        )
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"never true: {expression}")

    def screenshot(self, *, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth,"
                                 " document.documentElement.scrollHeight]")  # fmt: skip
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
            }
        return base64.b64decode(self.send("Page.captureScreenshot", params)["data"])

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", page=False, timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._log.close()

    # -- what the page did ------------------------------------------------------------
    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]  # fmt: skip

    def errors(self) -> list[str]:
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                    for a in params.get("args", [])))  # fmt: skip
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append("exception: " + str(details.get("exception", {}).get(
                    "description", details.get("text"))))  # fmt: skip
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                found.append(f"log: {entry.get('text')} {entry.get('url', '')}")
        return found

    def dialogs(self) -> list[str]:
        return [e["params"].get("message", "") for e in self.events
                if e.get("method") == "Page.javascriptDialogOpening"]  # fmt: skip


# ---------------------------------------------------------------------------------------
# PNG decoding with zlib only (no Pillow in the project).


def decode_png(data: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, unfiltered rows) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows


def luminance_stats(png: bytes) -> tuple[int, int, float, int]:
    """(width, height, variance of grey levels, distinct grey levels) of a PNG."""
    width, height, bpp, rows = decode_png(png)
    greys = [
        (row[i] * 299 + row[i + 1] * 587 + row[i + 2] * 114) // 1000
        for row in rows[::2]
        for i in range(0, width * bpp, bpp * 2)
    ]
    mean = sum(greys) / len(greys)
    variance = sum((g - mean) ** 2 for g in greys) / len(greys)
    return width, height, variance, len(set(greys))


# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium_available() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")


def _load(tmp_path: Path, doc) -> tuple[Browser, Path]:
    (report,) = write_reports(doc, tmp_path / "out", formats=("html",))
    browser = Browser(tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.open(report.resolve().as_uri())
        browser.wait_for("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
        time.sleep(0.5)  # let responsive relayouts settle before looking
        browser.evaluate("1")  # drain events that arrived meanwhile
    except BaseException:
        browser.close()
        raise
    return browser, report


def _only_local(browser: Browser, report: Path) -> None:
    own = report.resolve().as_uri()
    foreign = [u for u in browser.requests() if u != own and not u.startswith(("data:", "blob:"))]
    assert foreign == [], f"the report made requests: {foreign}"


def test_report_renders_offline_in_chromium(tmp_path: Path, chromium_available) -> None:
    doc = build_document(seed=3, statistics="vmvc" if vmvc_statistics_available() else "builtin")
    browser, report = _load(tmp_path, doc)
    try:
        page = browser.evaluate(
            """JSON.stringify({
              verdictRows: document.querySelectorAll('#verdict-table tbody tr').length,
              claims: Array.from(document.querySelectorAll('#verdict-table tbody tr'))
                           .map(r => r.dataset.claim),
              plots: document.querySelectorAll('.js-plotly-plot').length,
              chartDivs: document.querySelectorAll('div.chart').length,
              svgs: document.querySelectorAll('.js-plotly-plot svg.main-svg').length,
              bars: document.querySelectorAll('.js-plotly-plot g.point').length,
              boxes: document.querySelectorAll('.js-plotly-plot g.trace.boxes').length,
              sampleRows: document.querySelectorAll('#sample-table tbody tr').length,
              banner: !!document.getElementById('emulation-banner'),
              title: document.title
            })"""
        )
        page = json.loads(page)
        assert page["verdictRows"] == 10
        assert page["claims"] == [f"C{i:02d}" for i in range(1, 11)]
        assert page["plots"] == page["chartDivs"] >= 10
        assert page["svgs"] >= page["plots"]
        assert page["bars"] > 20 and page["boxes"] >= 3
        assert page["sampleRows"] == len(doc.samples)
        assert page["banner"]
        assert doc.run_id in page["title"]

        # Filter box, backend checkbox (rows and plotly traces) and sorting all work.
        shown = browser.evaluate(
            """(() => { const box = document.getElementById('sample-filter');
                 box.value = 'randread_4k_iops'; box.dispatchEvent(new Event('input'));
                 return Array.from(document.querySelectorAll('#sample-table tbody tr'))
                   .filter(r => !r.hidden).length; })()"""
        )
        expected = sum(1 for s in doc.samples if s.metric.startswith("randread_4k_iops"))
        assert shown == expected
        hidden = json.loads(
            browser.evaluate(
                """(() => { const box = document.getElementById('sample-filter');
                 box.value = ''; box.dispatchEvent(new Event('input'));
                 document.querySelector('input[data-backend-toggle="libvirt"]').click();
                 const rows = Array.from(document.querySelectorAll('#sample-table tbody tr'));
                 const traces = Array.from(document.querySelectorAll('.js-plotly-plot'))
                   .flatMap(gd => gd.data).filter(t => t.meta && t.meta.backend === 'libvirt');
                 return JSON.stringify({
                   visibleVm: rows.filter(r => !r.hidden && r.dataset.backend === 'libvirt').length,
                   visible: rows.filter(r => !r.hidden).length,
                   vmTraces: traces.length,
                   vmTracesShown: traces.filter(t => t.visible !== false).length }); })()"""
            )
        )
        assert hidden["visibleVm"] == 0
        assert hidden["visible"] == sum(1 for s in doc.samples if s.backend != "libvirt")
        assert hidden["vmTraces"] > 5 and hidden["vmTracesShown"] == 0
        browser.evaluate("document.querySelector('input[data-backend-toggle=\"libvirt\"]').click()")
        order = browser.evaluate(
            """(() => { const th = document.querySelectorAll('#sample-table thead th')[4];
                 th.click(); th.click();
                 return Array.from(document.querySelectorAll('#sample-table tbody tr'))
                   .map(r => parseFloat(r.cells[4].dataset.value)); })()"""
        )
        assert order == sorted(order, reverse=True)

        top = browser.screenshot()
        full = browser.screenshot(full_page=True)
        (tmp_path / "report-top.png").write_bytes(top)
        (tmp_path / "report-full.png").write_bytes(full)
        width, height, variance, levels = luminance_stats(top)
        assert (width, height) == (WIDTH, HEIGHT)
        assert variance > 200 and levels > 30, (variance, levels)

        browser.evaluate("1")
        assert browser.errors() == []
        _only_local(browser, report)
    finally:
        browser.close()
    if os.environ.get("VMVC_SCREENSHOT_DIR"):
        keep = Path(os.environ["VMVC_SCREENSHOT_DIR"])
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("report-top.png", "report-full.png"):
            shutil.copy(tmp_path / name, keep / name)


def test_hostile_strings_stay_text_in_chromium(tmp_path: Path, chromium_available) -> None:
    doc = build_document(seed=4, hostile=True)
    browser, report = _load(tmp_path, doc)
    try:
        found = json.loads(
            browser.evaluate(
                f"""JSON.stringify({{
                  injected: document.querySelectorAll('script').length,
                  bodyText: document.body.innerText.includes({json.dumps(HOSTILE)}),
                  title: document.title.includes({json.dumps(HOSTILE)}),
                  chartText: Array.from(document.querySelectorAll('.js-plotly-plot text'))
                      .some(t => t.textContent.includes({json.dumps(HOSTILE)}))
                }})"""
            )
        )
        assert found["injected"] == 3  # chart data, plotly.js, the report's own script
        assert found["bodyText"] and found["title"] and found["chartText"]
        assert browser.dialogs() == []
        assert browser.errors() == []
        _only_local(browser, report)
    finally:
        browser.close()
