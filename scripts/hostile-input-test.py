#!/usr/bin/env python3
"""Hostile-input regression tests against a running swift-targetd, from a raw-socket initiator.

Usage: hostile-input-test.py --daemon BIN [--connections N] [--writes N] [--chap-seconds S] [TEST ...]
Tests (default: all): crash-ahs, connection-leak, abandoned-write, chap-throttle.

Each test starts its own daemon (serve mode, a file LUN in a temporary folder, 127.0.0.1 only),
measures what it claims from /proc/PID/status (VmRSS) and prints one RESULT line; the exit
status is non-zero when any check fails. The numbers go to the README's reliability section.
"""
import argparse
import hashlib
import os
import resource
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

from iscsi_raw import abort, connect, keys, login_none as raw_login_none, login_pdu, parse_keys, read_pdu, scsi_command

TARGET = "iqn.2026-12.org.swifttarget:hostile"
INITIATOR = "iqn.2026-12.org.example:attacker"

failures = []


def check(condition, message):
    print(("  ok    " if condition else "  FAIL  ") + message, flush=True)
    if not condition:
        failures.append(message)


def login_none(port, initiator=INITIATOR, isid=0x00023D000001):
    return raw_login_none(port, TARGET, initiator, isid)


def chap_login(port, user, secret, initiator, source="127.0.0.1", isid=0x00023D000002):
    """One CHAP login attempt; returns the final status class/detail (0, 0 on success)."""
    sock = connect(port, source)
    try:
        sock.sendall(login_pdu(0, 1, False, keys([("InitiatorName", initiator), ("TargetName", TARGET),
                                                  ("SessionType", "Normal"), ("AuthMethod", "CHAP")]), isid=isid))
        bhs, _ = read_pdu(sock)
        if bhs[36]:
            return bhs[36], bhs[37]
        sock.sendall(login_pdu(0, 1, False, keys([("CHAP_A", "5")]), isid=isid))
        bhs, body = read_pdu(sock)
        if bhs[36]:
            return bhs[36], bhs[37]
        challenge = parse_keys(body)
        ident = int(challenge["CHAP_I"])
        c = bytes.fromhex(challenge["CHAP_C"][2:])
        response = hashlib.md5(bytes([ident]) + secret.encode() + c).hexdigest()
        sock.sendall(login_pdu(0, 1, True, keys([("CHAP_N", user), ("CHAP_R", "0x" + response)]), isid=isid))
        bhs, _ = read_pdu(sock)
        return bhs[36], bhs[37]
    finally:
        abort(sock)


# ---------------------------------------------------------------------------------------------
# The daemon under test

class Daemon:
    def __init__(self, binary, extra=()):
        self.dir = tempfile.mkdtemp(prefix="swtgt-hostile.")
        self.port = 14000 + os.getpid() % 1000
        self.log = open(os.path.join(self.dir, "daemon.log"), "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--target", TARGET,
             "--lun", f"file:{self.dir}/disk.img,size=64M", "--nop-interval", "0", "--log-level", "notice", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("daemon did not start")

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        self.log.flush()
        return open(os.path.join(self.dir, "daemon.log"), errors="replace").read()

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        subprocess.run(["rm", "-rf", self.dir])


def settle(daemon):
    """Waits until RSS stops moving (connections being torn down, buffers returned)."""
    last = daemon.rss_kb()
    for _ in range(20):
        time.sleep(0.25)
        now = daemon.rss_kb()
        if abs(now - last) < 64:
            return now
        last = now
    return last


# ---------------------------------------------------------------------------------------------
# Tests

def test_crash_ahs(args):
    print("crash-ahs: Extended CDB AHS with AHSLength 0 after an AuthMethod=None login")
    daemon = Daemon(args.daemon)
    try:
        sock, cmdsn = login_none(daemon.port)
        # TEST UNIT READY with TotalAHSLength 1 and AHS 00 00 01 00 (type 1, AHSLength 0).
        sock.sendall(scsi_command(b"\x00", 0, itt=1, cmdsn=cmdsn, ahs=b"\x00\x00\x01\x00"))
        bhs, body = read_pdu(sock)
        check(bhs[0] & 0x3F == 0x3F, f"answered with a Reject (opcode 0x{bhs[0] & 0x3F:02x})")
        check(bhs[2] == 0x09, f"reason 0x{bhs[2]:02x} (0x09 Invalid PDU Field)")
        check(body[:48] == scsi_command(b"\x00", 0, itt=1, cmdsn=cmdsn, ahs=b"\x00\x00\x01\x00")[:48],
              "the Reject carries the rejected header")
        # Other AHS shapes: a length running past TotalAHSLength, an unknown type.
        for n, ahs in enumerate([b"\x00\x40\x01\x00", b"\x00\x01\x07\x00", b"\x00\x02\x01\x00"], start=2):
            sock.sendall(scsi_command(b"\x00", 0, itt=n, cmdsn=cmdsn + n - 1, ahs=ahs))
            bhs, _ = read_pdu(sock)
            check(bhs[0] & 0x3F == 0x3F and bhs[2] == 0x09, f"AHS {ahs.hex()} rejected (0x{bhs[0] & 0x3F:02x}/0x{bhs[2]:02x})")
        # The session goes on: TEST UNIT READY answers GOOD.
        # The session goes on: TEST UNIT READY answers GOOD (after the power-on unit attention).
        statuses = []
        for n in range(2):
            sock.sendall(scsi_command(b"\x00", 0, itt=9 + n, cmdsn=cmdsn + 4 + n))
            bhs, body = read_pdu(sock)
            statuses.append((bhs[0] & 0x3F, bhs[3], body[4] & 0x0F if len(body) > 4 else None))
        check(statuses[-1] == (0x21, 0x00, None), f"the same session still answers TEST UNIT READY: {statuses}")
        # A valid 32-byte CDB through the Extended CDB AHS (AHSLength 17): answered, not a crash.
        ext = struct.pack(">HBB", 17, 1, 0) + b"\0" * 16
        sock.sendall(scsi_command(b"\x7f" + b"\0" * 6 + b"\x18", 0, itt=20, cmdsn=cmdsn + 6, ahs=ext))
        bhs, _ = read_pdu(sock)
        check(bhs[0] & 0x3F == 0x21, f"a 32-byte CDB in a valid AHS is answered with SCSI status 0x{bhs[3]:02x}")
        abort(sock)
        time.sleep(0.3)
        check(daemon.alive(), "daemon alive")
    finally:
        daemon.stop()


def test_connection_leak(args):
    n = args.connections
    print(f"connection-leak: {n} connect/close cycles (RST, half-sent login, full login request)")
    daemon = Daemon(args.daemon)
    try:
        fds = daemon.open_fds()
        request = login_pdu(0, 1, False, keys([("InitiatorName", INITIATOR), ("TargetName", TARGET)]))

        def cycle(i):
            sock = connect(daemon.port)
            kind = i % 3
            if kind == 1:
                sock.sendall(request[:30])
            elif kind == 2:
                sock.sendall(request)
                try:
                    read_pdu(sock)
                except (ConnectionError, socket.timeout):
                    pass
            abort(sock)

        warm = min(n // 5, 20000)
        for i in range(warm):
            cycle(i)
        base = settle(daemon)
        started = time.time()
        for i in range(warm, n):
            cycle(i)
        elapsed = time.time() - started
        end = settle(daemon)
        growth = end - base
        per = growth * 1024 / max(1, n - warm)
        print(f"  RSS after {warm} (warm-up): {base} KiB; after {n}: {end} KiB; "
              f"{per:.1f} bytes per connection; {(n - warm) / elapsed:.0f} connections/s")
        check(per < 64, f"no growth after warm-up ({per:.1f} bytes retained per connection, limit 64)")
        time.sleep(0.5)
        check(daemon.open_fds() <= fds + 2, f"descriptors back to baseline ({daemon.open_fds()} vs {fds})")
        check(daemon.alive(), "daemon alive")
        print(f"RESULT connection-leak connections={n} rss_base_kib={base} rss_end_kib={end} bytes_per_connection={per:.1f}")
    finally:
        daemon.stop()


def test_abandoned_write(args):
    n = args.writes
    print(f"abandoned-write: {n} WRITE(10) of 1 MiB with 4 KiB immediate data, R2T ignored, socket closed")
    daemon = Daemon(args.daemon)
    try:
        def abandoned(i):
            sock, cmdsn = login_none(daemon.port, isid=0x00023D000000 + i % 1000 + 1)
            cdb = struct.pack(">BBIBHB", 0x2A, 0, 0, 0, 2048, 0)
            sock.sendall(scsi_command(cdb, 1 << 20, itt=7, cmdsn=cmdsn, write=True, data=os.urandom(4096)))
            bhs, _ = read_pdu(sock)  # the first R2T
            assert bhs[0] & 0x3F == 0x31, f"expected an R2T, got 0x{bhs[0] & 0x3F:02x}"
            abort(sock)

        warm = max(50, n // 5)
        for i in range(warm):
            abandoned(i)
        base = settle(daemon)
        for i in range(warm, n):
            abandoned(i)
        end = settle(daemon)
        per = (end - base) * 1024 / max(1, n - warm)
        print(f"  RSS after {warm} (warm-up): {base} KiB; after {n}: {end} KiB; {per:.0f} bytes per abandoned WRITE")
        check(per < 512, f"abandoned WRITEs leave nothing behind ({per:.0f} bytes each, limit 512)")
        check(daemon.alive(), "daemon alive")
        print(f"RESULT abandoned-write writes={n} rss_base_kib={base} rss_end_kib={end} bytes_per_write={per:.0f}")
    finally:
        daemon.stop()


def test_chap_throttle(args):
    seconds = args.chap_seconds
    print(f"chap-throttle: wrong CHAP secrets from 127.0.0.1 for {seconds} s (8 parallel guessers), "
          "then a right one from 127.0.0.2")
    daemon = Daemon(args.daemon, ["--chap", "alice:correct-horse-12"])
    try:
        counts = {"failed": 0, "other": 0}
        stop = time.time() + seconds
        lock = threading.Lock()

        def guesser(k):
            n = 0
            while time.time() < stop:
                n += 1
                try:
                    status = chap_login(daemon.port, "alice", f"guess-{k}-{n}", INITIATOR, isid=0x00023D100000 + k)
                except (ConnectionError, socket.timeout, OSError):
                    status = None
                with lock:
                    counts["failed" if status == (2, 1) else "other"] += 1

        threads = [threading.Thread(target=guesser, args=(k,)) for k in range(8)]
        started = time.time()
        for t in threads:
            t.start()
        time.sleep(min(3, seconds / 2))
        # Meanwhile a different initiator from another address, with the right secret, gets in.
        t0 = time.time()
        try:
            good = chap_login(daemon.port, "alice", "correct-horse-12", "iqn.2026-12.org.example:honest",
                              source="127.0.0.2", isid=0x00023D200000)
        except OSError as error:
            good = str(error)
        honest = time.time() - t0
        for t in threads:
            t.join()
        elapsed = time.time() - started
        rate = counts["failed"] / elapsed
        print(f"  {counts['failed']} wrong guesses answered in {elapsed:.1f} s = {rate:.1f}/s "
              f"({counts['other']} other outcomes); honest login from 127.0.0.2: {good} in {honest:.2f} s")
        check(rate <= 20, f"guesses per second from one address {rate:.1f} (limit 20)")
        check(good == (0, 0), f"another initiator from another address still logs in ({good})")
        check(honest < 2.0, f"... without waiting on the attacker's penalty ({honest:.2f} s)")
        log = daemon.log_text()
        lines = [l for l in log.splitlines() if "login refused" in l or "authentication failed" in l]
        check(len(lines) <= 20 + seconds, f"failed-login log rate-limited ({len(lines)} lines in {seconds} s)")
        check(any(INITIATOR in l and "alice" in l for l in lines), "failure lines name the initiator and the CHAP user")
        check("guess-" not in log and "correct-horse" not in log, "no secret in the log")
        check(daemon.alive(), "daemon alive")
        print(f"RESULT chap-throttle guesses_per_second={rate:.1f} honest_login_seconds={honest:.2f} log_lines={len(lines)}")
    finally:
        daemon.stop()


TESTS = {"crash-ahs": test_crash_ahs, "connection-leak": test_connection_leak,
         "abandoned-write": test_abandoned_write, "chap-throttle": test_chap_throttle}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", required=True)
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=2_000)
    parser.add_argument("--chap-seconds", type=int, default=10)
    parser.add_argument("tests", nargs="*", default=list(TESTS))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for name in args.tests:
        try:
            TESTS[name](args)
        except Exception as error:  # a dead daemon or a protocol surprise fails the test, loudly
            check(False, f"{name}: {type(error).__name__}: {error}")
    print(f"hostile-input: {len(failures)} failed check(s)" if failures else "hostile-input: all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
