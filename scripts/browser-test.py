#!/usr/bin/env python3
"""End-to-end test of the swift-targetd web console in headless Chromium, then libiscsi.

Starts the daemon with a fresh configuration (two portals 127.0.0.1 and 127.0.0.2, no targets)
and a web credentials file, then through the browser: logs in, adds a target with a 64M file
LUN, adds a CHAP user, allows 127.0.0.1/32 and denies everyone else. Finally
`iscsi-inq iscsi://user%secret@127.0.0.1:PORT/IQN/0` must succeed and the same through the
127.0.0.2 portal (source address 127.0.0.2) must be refused. Screenshots of every page go to
ci-artifacts/screenshots/NN-page.png. See docs/web.md.

Daemon command: --daemon-cmd or $SWIFTTARGETD_CMD, a shell-style template with {config}, {web},
{credentials} and {workdir}; default:
    {swift_targetd} run --config {config} --web {web} --web-credentials {credentials}
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

DEFAULT_DAEMON = "{swift_targetd} run --config {config} --web {web} --web-credentials {credentials}"


def log(msg):
    print(f"[browser-test] {msg}", flush=True)


def fail(msg):
    log(f"FAIL: {msg}")
    raise SystemExit(1)


def make_credentials(password, user="admin", rounds=210000):
    """Same format as WebCredentials.make(password:) (docs/web.md)."""
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds, 32)
    return ("# swift-targetd web console credentials (PBKDF2-HMAC-SHA256); keep this file mode 0600\n"
            f"{user}:pbkdf2-sha256${rounds}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}\n")


def wait_for_http(url, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            fail(f"daemon exited with status {proc.returncode} before the console came up")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    fail(f"{url} did not answer within {timeout} s")


class Console:
    def __init__(self, base, shots_dir, headless=True):
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        opts = Options()
        if headless:
            opts.add_argument("--headless=new")
        for a in ("--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1800"):
            opts.add_argument(a)
        binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if binary:
            opts.binary_location = binary
        driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
        self.driver = webdriver.Chrome(service=Service(driver_path), options=opts)
        self.driver.set_page_load_timeout(60)
        self.base = base.rstrip("/")
        self.shots = shots_dir
        self.n = 0

    def by(self):
        from selenium.webdriver.common.by import By
        return By

    def go(self, path):
        self.driver.get(self.base + path)

    def shot(self, name):
        self.n += 1
        path = os.path.join(self.shots, f"{self.n:02d}-{name}.png")
        # Full page height so long forms are captured.
        h = self.driver.execute_script("return document.body.scrollHeight") or 1800
        self.driver.set_window_size(1400, max(900, min(int(h) + 100, 8000)))
        self.driver.save_screenshot(path)
        log(f"screenshot {path}")

    def el(self, css):
        return self.driver.find_element(self.by().CSS_SELECTOR, css)

    def fill(self, name, value):
        e = self.el(f'[name="{name}"]')
        e.clear()
        e.send_keys(value)

    def select(self, name, value):
        from selenium.webdriver.support.ui import Select
        Select(self.el(f'select[name="{name}"]')).select_by_value(value)

    def click(self, css):
        self.el(css).click()

    def submit(self, css, timeout=30):
        """Clicks a submit button and waits until the next page has replaced this one."""
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
        old = self.driver.find_element(self.by().TAG_NAME, "html")
        self.el(css).click()
        WebDriverWait(self.driver, timeout).until(EC.staleness_of(old))
        WebDriverWait(self.driver, timeout).until(
            lambda d: d.execute_script("return document.readyState") == "complete")

    def wait_for(self, needle, timeout=30):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, timeout).until(lambda d: needle in d.find_element(self.by().TAG_NAME, "body").text)

    def text(self):
        return self.driver.find_element(self.by().TAG_NAME, "body").text

    def expect_text(self, needle, what):
        body = self.text()
        if needle not in body:
            errs = [e.text for e in self.driver.find_elements(self.by().CSS_SELECTOR, ".err")]
            fail(f"{what}: expected {needle!r} on {self.driver.current_url}; errors shown: {errs}")

    def no_errors(self, what):
        errs = [e.text for e in self.driver.find_elements(self.by().CSS_SELECTOR, ".err")]
        if errs:
            fail(f"{what}: the page shows errors: {errs}")

    def quit(self):
        self.driver.quit()


def run_inq(url, timeout=30):
    cmd = ["iscsi-inq", "-i", "iqn.2007-10.com.github:sahlberg:libiscsi:browser-test", url]
    shown = url.replace(url.split("//", 1)[1].split("@", 1)[0], "USER%SECRET") if "@" in url else url
    log(f"iscsi-inq {shown}")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return 124, "", "timeout"
    return p.returncode, p.stdout, p.stderr


def check_iscsi(chap_user, chap_secret, iscsi_port, iqn):
    """Allowed from 127.0.0.1 with CHAP; refused through 127.0.0.2 (source address 127.0.0.2)."""
    user = urllib.parse.quote(chap_user, safe="")
    secret = urllib.parse.quote(chap_secret, safe="")
    rc, out, err = run_inq(f"iscsi://{user}%{secret}@127.0.0.1:{iscsi_port}/{iqn}/0")
    if rc != 0:
        fail(f"iscsi-inq through 127.0.0.1 failed (rc {rc}): {err.strip() or out.strip()}")
    log("iscsi-inq through 127.0.0.1: OK")
    rc2, out2, err2 = run_inq(f"iscsi://{user}%{secret}@127.0.0.2:{iscsi_port}/{iqn}/0")
    if rc2 == 0:
        fail("iscsi-inq through 127.0.0.2 (source address 127.0.0.2) succeeded but must be refused")
    log(f"iscsi-inq through 127.0.0.2 refused as expected (rc {rc2}): {(err2 or out2).strip()[:200]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--swift-targetd", default=os.environ.get("SWIFT_TARGETD", "swift-targetd"),
                    help="daemon binary used by the default command")
    ap.add_argument("--daemon-cmd", default=os.environ.get("SWIFTTARGETD_CMD", DEFAULT_DAEMON),
                    help="daemon command template ({config} {web} {credentials} {workdir} {swift_targetd})")
    ap.add_argument("--password-cmd", default=os.environ.get("WEB_PASSWORD_CMD"),
                    help="optional command creating the credentials file instead of the built-in writer, "
                         "e.g. '{swift_targetd} web-password {credentials}'; the password is given on stdin (twice)")
    ap.add_argument("--web-url", help="attach to a running daemon's console instead of starting one")
    ap.add_argument("--password", default=os.environ.get("WEB_PASSWORD"), help="admin password (generated if not given)")
    ap.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", "9860")))
    ap.add_argument("--iscsi-port", type=int, default=int(os.environ.get("ISCSI_PORT", "3260")))
    ap.add_argument("--artifacts", default=os.environ.get("CI_ARTIFACTS", "ci-artifacts"))
    ap.add_argument("--workdir", help="directory for config, credentials and images (default: a new temp dir)")
    ap.add_argument("--headed", action="store_true", help="show the browser window")
    ap.add_argument("--startup-timeout", type=int, default=60)
    ap.add_argument("--skip-iscsi", action="store_true",
                    help="only the browser part (e.g. against the in-memory console of AdminWebTests.DevServer)")
    args = ap.parse_args()

    shots = os.path.join(args.artifacts, "screenshots")
    os.makedirs(shots, exist_ok=True)
    workdir = args.workdir or tempfile.mkdtemp(prefix="swifttarget-browser-")
    os.makedirs(workdir, exist_ok=True)
    password = args.password or base64.urlsafe_b64encode(os.urandom(12)).decode()
    iscsi_port = args.iscsi_port
    chap_user, chap_secret = "webuser", "websecret1234"   # 13 bytes: within Microsoft's 12..16
    lun_path = os.path.join(workdir, "lun0.img")

    proc = None
    daemon_log = None
    if args.web_url:
        base = args.web_url
        if not args.password:
            fail("--password is required with --web-url")
    else:
        base = f"http://127.0.0.1:{args.web_port}"
        config = os.path.join(workdir, "config.json")
        creds = os.path.join(workdir, "web-credentials")
        with open(config, "w") as f:
            json.dump({"version": 1, "portals": [f"127.0.0.1:{iscsi_port}", f"127.0.0.2:{iscsi_port}"], "targets": []}, f, indent=2)
        os.chmod(config, 0o600)
        subst = dict(config=config, web=f"127.0.0.1:{args.web_port}", credentials=creds, workdir=workdir,
                     swift_targetd=args.swift_targetd)
        if args.password_cmd:
            cmd = [a.format(**subst) for a in shlex.split(args.password_cmd)]
            log(f"creating credentials: {' '.join(cmd)}")
            subprocess.run(cmd, input=f"{password}\n{password}\n", text=True, check=True)
        else:
            with open(creds, "w") as f:
                f.write(make_credentials(password))
        os.chmod(creds, 0o600)
        cmd = [a.format(**subst) for a in shlex.split(args.daemon_cmd)]
        log(f"starting daemon: {' '.join(cmd)}")
        daemon_log = open(os.path.join(args.artifacts, "daemon.log"), "w")
        proc = subprocess.Popen(cmd, stdout=daemon_log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_http(base + "/login", args.startup_timeout, proc)

    ui = None
    ok = False
    try:
        ui = Console(base, shots, headless=not args.headed)
        By = ui.by()

        # 1. Log in (a wrong password first: must be refused).
        ui.go("/")
        if "/login" not in ui.driver.current_url:
            fail("an anonymous visit was not sent to the login page")
        ui.fill("user", "admin")
        ui.fill("password", password)
        ui.shot("login")
        ui.submit("#login")
        ui.expect_text("iSCSI Targets", "login")
        ui.shot("targets-empty")

        # 2. Add a target with a 64M file LUN.
        ui.click("#add-target")
        ui.wait_for("Add a new iSCSI target")
        ui.expect_text("Add a new iSCSI target", "add form")
        prefix = ui.el('[name="prefix"]').get_attribute("value")
        ui.fill("suffix", "webtest")
        ui.fill("alias", "browser-test")
        ui.select("new_dev_0", "")
        ui.fill("new_path_0", lun_path)
        ui.select("new_kind_0", "file")
        ui.fill("new_size_0", "64M")
        ui.select("new_mode_0", "wt")
        ui.shot("add-target")
        ui.submit("#save")
        ui.no_errors("add target")
        iqn = f"{prefix.rstrip(':')}:webtest"
        ui.expect_text(f"Created target {iqn}", "add target")
        ui.shot("target-created")

        # 3. Add a CHAP user on the target's page.
        ui.go("/target?name=" + urllib.parse.quote(iqn, safe=""))
        ui.click("#auth_own")
        ui.fill("t_user_0", chap_user)
        ui.fill("t_secret_0", chap_secret)
        ui.shot("edit-target-chap")
        ui.submit("#save")
        ui.no_errors("add CHAP user")
        ui.expect_text(f"Saved target {iqn}", "add CHAP user")
        if chap_secret in ui.driver.page_source:
            fail("the CHAP secret was echoed back in the page")
        ui.shot("target-saved")

        # 4. Allowed clients for this target: 127.0.0.1/32, then deny everyone else.
        for action, addr in (("allow", "127.0.0.1/32"), ("deny", "ALL")):
            ui.go("/clients/edit?scope=" + urllib.parse.quote(iqn, safe=""))
            ui.select("action", action)
            ui.fill("addresses", addr)
            ui.fill("comment", "browser test")
            ui.shot(f"client-rule-{action}")
            ui.submit("#save")
            ui.no_errors(f"client rule {action} {addr}")
        ui.expect_text("127.0.0.1", "allowed clients")
        ui.shot("allowed-clients")

        # 5. Every other page.
        for path, name in (("/", "targets"), ("/auth", "authentication"), ("/connection", "connection-settings"),
                           ("/timeouts", "timeout-settings"), ("/servers", "server-addresses"),
                           ("/statistics", "statistics"), ("/config", "configuration")):
            ui.go(path)
            ui.no_errors(path)
            ui.shot(name)
        if "TOPSECRET" in ui.driver.page_source or chap_secret in ui.driver.page_source:
            fail("a secret appears on the configuration page")

        # 6. libiscsi: allowed from 127.0.0.1 with CHAP, refused from 127.0.0.2.
        if args.skip_iscsi:
            log("skipping the iSCSI checks (--skip-iscsi)")
        else:
            check_iscsi(chap_user, chap_secret, iscsi_port, iqn)

        # A live session on the sessions page, which must fit a 1280-pixel-wide screen.
        perf = None
        if not args.skip_iscsi:
            perf = subprocess.Popen(["iscsi-perf", "-m", "2", "-b", "8",
                                     f"iscsi://{urllib.parse.quote(chap_user, safe='')}%{urllib.parse.quote(chap_secret, safe='')}"
                                     f"@127.0.0.1:{iscsi_port}/{iqn}/0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(2)
        try:
            ui.driver.set_window_size(1280, 900)
            ui.go("/sessions?refresh=off")
            if perf is not None:
                rows = ui.driver.find_elements(By.CSS_SELECTOR, "#sessions tr")
                if len(rows) < 2:
                    fail("the sessions page lists no session while iscsi-perf is logged in")
                width = ui.driver.execute_script("return document.documentElement.scrollWidth")
                if width > 1280:
                    fail(f"the sessions page is {width} px wide with a session listed; it must fit 1280 px")
                log(f"sessions page with {len(rows) - 1} session(s): {width} px wide at a 1280 px window")
            ui.driver.save_screenshot(os.path.join(shots, "00-sessions-1280px.png"))
        finally:
            if perf is not None:
                perf.send_signal(signal.SIGINT)
                try:
                    perf.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    perf.kill()
        ui.go("/sessions")
        ui.shot("sessions")
        # Statistics with traffic: a sample before and after some reads, so the LUN's charts
        # have an interval with data.
        ui.go("/statistics")
        if not args.skip_iscsi:
            for _ in range(20):
                run_inq(f"iscsi://{urllib.parse.quote(chap_user, safe='')}%{urllib.parse.quote(chap_secret, safe='')}"
                        f"@127.0.0.1:{iscsi_port}/{iqn}/0")
        time.sleep(1.5)
        ui.go("/statistics")
        charts = ui.driver.find_elements(By.CSS_SELECTOR, "svg.chart")
        if len(charts) < 3:
            fail(f"the statistics page draws {len(charts)} charts, expected 3 per LUN")
        points = max(int(c.get_attribute("data-points") or 0) for c in charts)
        lines = ui.driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline")
        if points < 1 or not lines:
            fail(f"the charts have no data after traffic ({points} points, {len(lines)} lines)")
        iops = ui.driver.find_elements(By.CSS_SELECTOR, "svg.chart polyline.series-iops")
        log(f"statistics: {len(charts)} charts, {points} sampled interval(s), {len(iops)} IOPS line(s)")
        ui.shot("statistics-after-io")
        # It refreshes by itself (meta refresh, no script needed): a marker set on this page is
        # gone once the browser loaded it again.
        if not ui.driver.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]'):
            fail("the statistics page does not refresh by itself")
        ui.driver.execute_script("window.__swifttarget_marker = 1")
        deadline = time.time() + 15
        while time.time() < deadline:
            time.sleep(0.5)
            try:
                if ui.driver.execute_script("return window.__swifttarget_marker") is None:
                    break
            except Exception:
                pass
        else:
            fail("the statistics page did not reload itself within 15 s")
        log("statistics page reloaded by itself")
        ui.go("/statistics?refresh=off")
        if ui.driver.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]'):
            fail("?refresh=off still refreshes")
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            metrics = r.read().decode()
        with open(os.path.join(args.artifacts, "metrics.txt"), "w") as f:
            f.write(metrics)
        m = re.search(r"^swifttarget_acl_denials_total (\d+)$", metrics, re.M)
        if not m:
            fail("/metrics has no swifttarget_acl_denials_total")
        if int(m.group(1)) < 1:
            log("warning: swifttarget_acl_denials_total is 0 after a refused login")

        # 7. The target list shows the state in colour, and a delete is asked once more.
        ui.go("/")
        if not ui.driver.find_elements(By.CSS_SELECTOR, "#targets span.state-running"):
            fail("the target list does not mark the running target")
        ui.click(f'input[name="sel"][value="{iqn}"]')
        ui.submit("#delete-selected")
        ui.expect_text("Delete this target?", "delete confirmation")
        ui.shot("delete-confirmation")
        ui.driver.find_element(By.LINK_TEXT, "Cancel").click()
        ui.wait_for("iSCSI Targets")
        if iqn not in ui.driver.page_source:
            fail("the target went although the delete was cancelled")
        ui.click(f'input[name="sel"][value="{iqn}"]')
        ui.submit("#delete-selected")
        ui.submit("#confirm-delete")
        ui.no_errors("delete target")
        ui.expect_text("Deleted 1 target(s)", "delete target")
        if ui.driver.find_elements(By.CSS_SELECTOR, f'input[name="sel"][value="{iqn}"]'):
            fail("the deleted target is still listed")
        log("delete asked once more; cancel kept the target, confirm removed it")

        # 8. Log out.
        ui.go("/")
        old_html = ui.driver.find_element(By.TAG_NAME, "html")
        ui.driver.find_element(By.XPATH, "//header//button[text()='Log out']").click()
        from selenium.webdriver.support import expected_conditions as EC
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(ui.driver, 30).until(EC.staleness_of(old_html))
        if "/login" not in ui.driver.current_url:
            fail("logout did not return to the login page")
        ui.shot("logged-out")
        ok = True
        log("PASS")
    finally:
        if ui is not None:
            try:
                if not ok:
                    ui.shot("failure")
            except Exception:
                pass
            ui.quit()
        if proc is not None:
            log("stopping daemon")
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            except ProcessLookupError:
                pass
        if daemon_log is not None:
            daemon_log.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
