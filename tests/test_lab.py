"""The chapters open as notebooks in JupyterLab, checked in a real browser.

Starts ``jupyter lab`` on a loopback port with a token, with every Jupyter and
JupyterLab folder of its own (no ~/.jupyter, no user settings), its application
folder configured by ``scripts/setup_lab.sh`` exactly as the README says; opens
``/lab/tree/book/views.md`` in headless Chromium (Debian's ``chromium``) driven
over the DevTools protocol (``websocket-client``, which jupyter-server installs);
and asserts that a notebook panel with code cells is shown and that the browser's
console reports no extension that failed to load (JupyterLab logs a federated
extension it cannot load as ``Failed to create module: package: …``, and the
chapter then opens in the text editor).

No browser: skipped here with the reason, but a failure when ``MVBOOK_REQUIRE_BROWSER``
is set (``.ci/run`` sets it and installs ``chromium``). ``MVBOOK_CHROMIUM`` names
another Chromium binary. Takes about 20–60 s.
"""
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTER = "book/views.md"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 120                      # s: the page, every extension and the notebook model


def browser() -> str:
    found = os.environ.get("MVBOOK_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if found:
        return found
    why = ("no Chromium found (looked for MVBOOK_CHROMIUM, " + ", ".join(BROWSERS) + "); on Debian: "
           "apt-get install -y chromium")
    if os.environ.get("MVBOOK_REQUIRE_BROWSER"):
        pytest.fail(f"the JupyterLab browser test cannot run: {why}", pytrace=False)
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc, seconds: float, log: Path) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"jupyter lab exited with status {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


def lab_env(tmp: Path) -> dict:
    """Jupyter's and JupyterLab's folders in ``tmp``: nothing read from HOME or the user's config.
    The application folder is the venv's (its static files), settings written there by setup_lab.sh."""
    bin_dir = Path(sys.executable).parent
    app_dir = Path(subprocess.run([str(bin_dir / "jupyter"), "lab", "path"], capture_output=True, text=True,
                                  check=True).stdout.split("Application directory:", 1)[1].split()[0])
    lab = tmp / "lab-app"
    lab.mkdir()
    for sub in ("static", "schemas", "themes"):
        if (app_dir / sub).exists():
            (lab / sub).symlink_to(app_dir / sub)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    env.update(HOME=str(tmp / "home"), JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "ipython"),
               JUPYTERLAB_DIR=str(lab), JUPYTERLAB_SETTINGS_DIR=str(tmp / "user-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), JUPYTER_PLATFORM_DIRS="1",
               PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", XDG_CONFIG_HOME=str(tmp / "xdg"))
    (tmp / "home").mkdir()
    out = subprocess.run([str(REPO / "scripts" / "setup_lab.sh")], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert (lab / "settings" / "overrides.json").is_file(), out.stdout + out.stderr
    return env


class DevTools:
    """The least of the Chrome DevTools protocol: commands, and the console's messages."""

    def __init__(self, ws_url: str):
        import websocket
        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT, suppress_origin=True)
        self.next_id, self.console = 0, []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg):
        p = msg.get("params", {})
        if msg.get("method") == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            self.console.append((p.get("type"), text))
        elif msg.get("method") == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.console.append(("exception", d.get("exception", {}).get("description") or d.get("text", "")))
        elif msg.get("method") == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append((e.get("level"), f"{e.get('text', '')} {e.get('url', '')}".strip()))

    def evaluate(self, js: str):
        return self.call("Runtime.evaluate", expression=js, returnByValue=True).get("result", {}).get("value")


PROBE = """(() => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(p => !p.classList.contains('lm-mod-hidden'));
  const editor = [...document.querySelectorAll('.jp-FileEditor')].find(p => !p.closest('.lm-mod-hidden'));
  return {notebook: !!panel, codeCells: panel ? panel.querySelectorAll('.jp-CodeCell').length : 0,
          markdownCells: panel ? panel.querySelectorAll('.jp-MarkdownCell').length : 0,
          textEditor: !!editor, title: document.title,
          extensionErrors: document.body.innerText.includes('Failed to create module')};
})()"""


@contextlib.contextmanager
def chromium(exe: str, profile: Path, *args: str):
    """Headless Chromium (``args`` added to its command line) on ``about:blank``, driven over
    the DevTools protocol: yields its :class:`DevTools` client; stops the browser after."""
    proc = subprocess.Popen([exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-extensions", "--disable-sync",
                             "--disable-dev-shm-usage", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             *args, "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port_file, end = profile / "DevToolsActivePort", time.time() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if proc.poll() is not None or time.time() > end:
                raise AssertionError(f"{exe} did not start: {proc.stderr.read()[-2000:] if proc.poll() else ''}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        yield DevTools(next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"])
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_in_browser(url: str, tmp: Path, exe: str) -> tuple[dict, list]:
    with chromium(exe, tmp / "chromium-profile", "--window-size=1400,1000") as dt:
        for domain in ("Runtime", "Log", "Page"):
            dt.call(f"{domain}.enable")
        dt.call("Page.navigate", url=url)
        end, state = time.time() + TIMEOUT, {}
        while time.time() < end:
            time.sleep(1)
            state = dt.evaluate(PROBE) or {}
            if state.get("codeCells") or state.get("textEditor"):
                time.sleep(2)                        # late console messages of the extensions
                state = dt.evaluate(PROBE) or {}
                break
        return state, dt.console


def test_views_chapter_opens_as_a_notebook_in_jupyterlab(tmp_path):
    exe = browser()
    env = lab_env(tmp_path)
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyter-lab.log", "w")
    lab = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "lab", "--no-browser",
                            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={REPO}",
                            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
                            "--LabApp.news_url=", "--LabApp.extension_manager=readonly",
                            "--LanguageServerManager.autodetect=False"]
                           + (["--allow-root"] if os.geteuid() == 0 else []),
                           env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/api/status?token={token}", lab, 60, tmp_path / "jupyter-lab.log")
        state, console = open_in_browser(f"{base}/lab/tree/{CHAPTER}?token={token}&reset", tmp_path, exe)
    finally:
        lab.terminate()
        try:
            lab.wait(15)
        except subprocess.TimeoutExpired:
            lab.kill()
        log.close()
    errors = [f"{level}: {text}" for level, text in console if level in ("error", "exception")]
    failed = [e for e in errors if "Failed to create module" in e or "not found" in e or "extension" in e.lower()]
    print(f"{CHAPTER} in JupyterLab: {state}")
    print(f"console: {len(console)} messages, {len(errors)} errors" + "".join(f"\n  {e[:300]}" for e in errors))
    assert not failed and not state.get("extensionErrors"), "extensions failed to load:\n" + "\n".join(failed)
    assert state.get("notebook") and not state.get("textEditor"), \
        f"{CHAPTER} did not open as a notebook: {state}\n" + "\n".join(errors)
    assert state.get("codeCells", 0) > 0, f"a notebook panel without code cells: {state}"
