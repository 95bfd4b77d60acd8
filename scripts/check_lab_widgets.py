"""Drive every notebook's widget panel in a live JupyterLab, in a headless browser, and report what rendered.

The test suite builds the panels and drives them in Python; this script checks what a reader sees: it starts
JupyterLab, opens a copy of each notebook with its smoke parameters, runs all cells, then checks that the
widget panel rendered (no "Error displaying widget", no traceback in any output), presses the panel's first
button (or, without one, moves its first slider with the keyboard or picks its first dropdown's next option),
waits for the kernel and checks that what the panel shows changed. One screenshot per notebook goes to
``--out``.

``make test`` runs it for every notebook in ``notebooks/`` after the test suite (``make test-widgets`` alone). The
set-up installs Chromium from Debian's package and Playwright from PyPI (``scripts/install_browser.sh``); with
``--if-available`` a missing browser or Playwright is reported and the check is skipped (exit 0), so machines
without root still run the rest of the suite. By hand::

    python scripts/check_lab_widgets.py --out /tmp/lab-check          # all notebooks
    python scripts/check_lab_widgets.py --out /tmp/lab-check 03 05    # some

JupyterLab comes from the project's environment (``--venv .venv``); the browser is ``--chromium`` (default: the
``chromium`` on the PATH, else ``/usr/bin/chromium``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "workbench-check"


def smoke_copy(notebook: Path, dest: Path, runs: Path) -> Path:
    """A copy of ``notebook`` with its smoke parameters (and an OUTPUT_DIR under ``runs``) injected after its parameters cell."""
    nb = json.loads(notebook.read_text())
    smoke = dict(nb.get("metadata", {}).get("workbench", {}).get("smoke_parameters", {}))
    smoke["OUTPUT_DIR"] = str(runs / notebook.stem)
    for i, cell in enumerate(nb["cells"]):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            lines = ["# smoke parameters injected by scripts/check_lab_widgets.py\n"]
            lines += [f"{k} = {v!r}\n" for k, v in smoke.items()]
            nb["cells"].insert(i + 1, {"cell_type": "code", "execution_count": None, "id": f"smoke-{i}", "metadata": {},
                                       "outputs": [], "source": lines})
            break
    out = dest / notebook.name
    out.write_text(json.dumps(nb, indent=1))
    return out


def select_notebooks(prefixes: list[str]) -> list[Path]:
    """Every notebook in notebooks/ (or those whose name starts with one of ``prefixes``)."""
    return sorted(p for p in (ROOT / "notebooks").glob("*.ipynb")
                  if not p.name.startswith(".") and (not prefixes or any(p.name.startswith(x) for x in prefixes)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KERNEL_IDLE = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle';
}"""
ALL_RAN = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    if (!kernel || kernel.status !== 'idle') return false;
    const cells = w.content.widgets.filter(c => c.model.type === 'code');
    const ran = cells.every(c => c.model.executionCount !== null && c.model.executionCount !== undefined);
    const failed = cells.some(c => { const o = c.model.outputs;
        for (let i = 0; i < o.length; i++) { if (o.get(i).type === 'error') return true; } return false; });
    return ran || failed;
}"""


def wait_idle(page, timeout: float) -> None:
    """Until no cell shows the busy prompt ``[*]`` and the kernel reports idle."""
    deadline = time.time() + timeout
    time.sleep(1.0)
    while time.time() < deadline:
        busy = page.evaluate("""() => {
            const prompts = [...document.querySelectorAll('.jp-InputArea-prompt')].map(p => p.textContent);
            const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
            const state = status ? status.getAttribute('data-status') : null;
            return prompts.some(t => t.includes('[*]')) || state === 'busy';
        }""")
        if not busy:
            return
        time.sleep(1.0)
    raise TimeoutError(f"kernel still busy after {timeout:.0f} s")


def panel_state(page) -> dict:
    return page.evaluate("""() => {
        const text = sel => [...document.querySelectorAll(sel)].map(e => e.textContent).join('\\n');
        return {
            widgets: document.querySelectorAll('.jupyter-widgets.widget-container, .jupyter-widgets.widget-box').length,
            controls: document.querySelectorAll('.widget-slider, .widget-dropdown, .widget-button, .widget-toggle-buttons').length,
            buttons: document.querySelectorAll('.jupyter-widgets button.widget-button').length,
            plots: document.querySelectorAll('.js-plotly-plot').length,
            widget_errors: (document.body.innerText.match(/Error displaying widget|Failed to load model class/g) || []).length,
            tracebacks: (text('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').match(/Traceback/g) || []).length
                + document.querySelectorAll('.jp-OutputArea-output .ansi-red-fg').length,
            signature: (() => {  // a hash of everything the panels show (text, plots)
                const html = [...document.querySelectorAll('.jupyter-widgets, .jp-OutputArea-output')]
                    .map(e => e.innerText + e.innerHTML).join('');
                let h = 0;
                for (let i = 0; i < html.length; i++) h = (h * 31 + html.charCodeAt(i)) | 0;
                return h;
            })(),
        };
    }""")


def check(page, base: str, name: str, out: Path, timeout: float) -> dict:
    page.goto(f"{base}/lab/tree/{name}?token={TOKEN}&reset")  # reset: only this notebook open
    page.wait_for_selector(".jp-Notebook", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout * 1000, polling=500)  # the kernel has started (slow when loaded)
    started = time.time()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(ALL_RAN, timeout=timeout * 1000, polling=500)  # every cell ran (or one failed)
    wait_idle(page, timeout)
    ran = time.time() - started
    before = panel_state(page)
    result = {"notebook": name, "run_seconds": round(ran, 1), **before}
    buttons = page.locator(".jupyter-widgets button.widget-button")
    sliders = page.locator(".widget-slider .noUi-handle")
    dropdowns = page.locator(".widget-dropdown select")

    def settle():
        time.sleep(1.0)
        wait_idle(page, timeout)
        time.sleep(2.0)
        return panel_state(page)

    after, target, label = None, None, None
    if buttons.count():  # a panel with a button: press it
        target, label = buttons.first, f"button {buttons.first.inner_text()!r}"
        target.scroll_into_view_if_needed()
        target.click()
        after = settle()
    elif sliders.count():  # move the first slider to one end, or to the other if it was there already
        target = sliders.first
        target.scroll_into_view_if_needed()
        for key in ("End", "Home"):
            target.focus()
            target.press(key)
            label, after = f"slider {key}", settle()
            if after["signature"] != before["signature"]:
                break
    elif dropdowns.count():  # pick the dropdown's next option
        target = dropdowns.first
        target.scroll_into_view_if_needed()
        options = target.locator("option")
        index = 1 if options.count() > 1 else 0
        label = f"dropdown -> {options.nth(index).inner_text()!r}"
        target.select_option(index=index)
        after = settle()
    if after is not None:
        result.update(interaction=label, output_changed=after["signature"] != before["signature"],
                      plots_after=after["plots"], widget_errors=after["widget_errors"], tracebacks=after["tracebacks"])
        target.scroll_into_view_if_needed()
    page.screenshot(path=str(out / f"{Path(name).stem}.png"), full_page=False)
    result["ok"] = (result["widgets"] > 0 and result["widget_errors"] == 0 and result["tracebacks"] == 0
                    and result.get("output_changed", True))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="notebook name prefixes (default: all)")
    parser.add_argument("--out", default="lab-check", help="folder for screenshots and results.json")
    parser.add_argument("--venv", default=str(ROOT / ".venv"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--if-available", action="store_true",
                        help="if Playwright or Chromium is missing, say so and exit 0 (used by make test)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run-all or click")
    args = parser.parse_args(argv)
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("Playwright (pip install playwright)")
    if not Path(args.chromium).exists():
        missing.append(f"Chromium at {args.chromium} (apt-get install chromium, as root; or --chromium PATH)")
    if missing:
        message = "Live widget check NOT RUN: missing " + " and ".join(missing) + ". Run scripts/install_browser.sh."
        if args.if_available:
            print(message)
            return 0
        sys.exit(message)
    started_all = time.time()

    out = Path(args.out).resolve()
    work = out / "notebooks"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    notebooks = select_notebooks(args.prefixes)
    for nb in notebooks:
        smoke_copy(nb, work, out / "runs")
    port = free_port()
    env = dict(os.environ)
    lab = subprocess.Popen([str(Path(args.venv) / "bin" / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}",
                            "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={work}",
                            "--LabApp.expose_app_in_browser=True"],
                           stdout=open(out / "lab.log", "w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    results = []
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(60):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for nb in notebooks:
                try:
                    res = check(page, base, nb.name, out, args.timeout)
                except Exception as err:  # report and go on with the next notebook
                    res = {"notebook": nb.name, "ok": False, "error": f"{type(err).__name__}: {err}"}
                results.append(res)
                print(json.dumps(res), flush=True)
                page.evaluate("() => window.jupyterapp && window.jupyterapp.commands.execute('kernelmenu:shutdown')")
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=30)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    bad = [r["notebook"] for r in results if not r.get("ok")]
    print(f"{len(results) - len(bad)}/{len(results)} notebooks: panel rendered and responded" + (f"; failed: {bad}" if bad else "")
          + f" ({time.time() - started_all:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
