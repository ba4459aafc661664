#!/usr/bin/env python3
"""Regenerates the captured part of the fuzz seed corpora (Tests/Fuzz/Corpus/).

Runs swift-targetd on 127.0.0.1 behind a recording proxy, drives it with libiscsi's tools
(iscsi-ls, iscsi-inq, iscsi-readcapacity16 and a few iscsi-test-cu tests; plain, CHAP, mutual
CHAP and header digests), and turns what the initiator sent into seeds:

  pdu/       the initiator's byte stream, login phase and full-feature phase apart
  login/     the Login Requests of each connection as LoginFuzz records
  text-keys/ the text of the Login and Text Requests
  engine/    the SCSI Commands (CDB, data-out, expected length) as EngineFuzz records

It also lays out tcmu-ring seeds: mailbox, command ring and data area as the kernel's
target_core_user.c writes them (struct layouts of <linux/target_core_user.h>, mailbox
version 2). The input formats are described at the top of each Tests/Fuzz/*Fuzz.swift;
the config and ietd seeds are written by hand.

Usage: scripts/fuzz-seeds.py [--swift-targetd PATH] [--keep DIR] [--ring-only]
"""
import argparse
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(HERE, "Tests", "Fuzz", "Corpus")

# Must match Tests/Fuzz/LoginFuzz.swift: the same target names and CHAP accounts.
OPEN_TARGET = "iqn.2026-01.org.example:open"
CHAP_TARGET = "iqn.2026-01.org.example:chap"
CHAP_USER, CHAP_SECRET = "alice", "alice-secret-12"
TARGET_USER, TARGET_SECRET = "target", "target-secret-1"


class Recorder:
    """A TCP proxy that keeps, per connection, the bytes the initiator sent."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.streams = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            record = bytearray()
            with self.lock:
                self.streams.append(record)
            threading.Thread(target=self.pump, args=(client, server, record), daemon=True).start()
            threading.Thread(target=self.pump, args=(server, client, None), daemon=True).start()

    @staticmethod
    def pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    record.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def take(self):
        time.sleep(0.3)
        with self.lock:
            out = [bytes(s) for s in self.streams if s]
            self.streams = []
        return out


def pdus(stream, header_digest):
    """Splits an initiator stream into (header, ahs, data, raw) PDUs. Digests start after the
    Login Request that moves to full feature phase (T=1, NSG=3)."""
    out = []
    at = 0
    digests = False
    while at + 48 <= len(stream):
        bhs = stream[at:at + 48]
        ahs_len = bhs[4] * 4
        length = int.from_bytes(bhs[5:8], "big")
        hd = 4 if digests and header_digest else 0
        total = 48 + ahs_len + hd + ((length + 3) & ~3)
        if at + total > len(stream):
            break
        start = at + 48 + ahs_len + hd
        out.append((bhs, stream[at + 48:at + 48 + ahs_len], stream[start:start + length],
                    stream[at:at + total], digests))
        if bhs[0] & 0x3F == 0x03 and bhs[1] & 0x80 and bhs[1] & 0x03 == 3:
            digests = True
        at += total
    return out


SEEN = set()


def write_seed(target, name, data):
    """Writes one seed unless the same bytes are already a seed of that target."""
    key = (target, hashlib.sha1(data).digest())
    if key in SEEN:
        return
    SEEN.add(key)
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def seeds_from(label, stream, header_digest, setup=0):
    ps = pdus(stream, header_digest)
    login = [p for p in ps if not p[4]]
    ff = [p for p in ps if p[4]]
    # pdu: [flags][segment-limit exponent] stream; limit 512 << 9 = 256 KiB as negotiated.
    # Full-feature streams keep whole PDUs of at most 1 KiB (framing stays exact, seeds small).
    if label.split("-")[1] in ("ls", "inq", "cap16", "vpd83"):  # iscsi-test-cu logs in the same way each time
        write_seed("pdu", f"{label}-login", bytes([0, 9]) + b"".join(p[3] for p in login))
    small = b"".join(p[3] for p in ff if len(p[3]) <= 1024)[:4096]
    if small:
        write_seed("pdu", f"{label}-ff", bytes([1 if header_digest else 0, 9]) + small)
    # login: [setup] then [flags][control][length][text] per Login Request. Setup bit 0:
    # discovery requires CHAP (a CHAP discovery login was captured); bit 2 (digest target).
    text = b"".join(p[2] for p in login)
    if b"SessionType=Discovery" in text and b"CHAP_A=" in text:
        setup |= 1
    recs = bytearray([setup])
    for bhs, _, data, _, _ in login:
        if bhs[0] & 0x3F != 0x03:
            continue
        control = 0x10 if b"CHAP_R=" in data else 0
        recs += bytes([bhs[1], control]) + struct.pack(">H", len(data)) + data
    write_seed("login", label, bytes(recs))
    # text-keys: [flags] text, from Login and Text Requests.
    for i, (bhs, _, data, _, _) in enumerate(ps):
        if bhs[0] & 0x3F in (0x03, 0x04) and data:
            write_seed("text-keys", f"{label}-{i}", bytes([0]) + data)
    # engine: [setup] then [control][cdb len][cdb][out len][out][in capacity] per command;
    # each distinct CDB shape (opcode, service action) once, in the order the initiator sent them.
    commands = []
    by_itt = {}
    for bhs, ahs, data, _, _ in ff:
        op = bhs[0] & 0x3F
        itt = bhs[16:20]
        if op == 0x01:
            cdb = bytes(bhs[32:48])
            cdb = cdb[:cdb_length(cdb[0])] if cdb_length(cdb[0]) <= 16 else cdb
            if ahs:  # Extended CDB AHS: type 1, one reserved byte, then the rest of the CDB
                cdb += bytes(ahs[4:3 + int.from_bytes(ahs[0:2], "big")])
            entry = {"cdb": cdb, "out": bytearray(data), "expected": int.from_bytes(bhs[20:24], "big"),
                     "read": bool(bhs[1] & 0x40), "write": bool(bhs[1] & 0x20), "attr": bhs[1] & 7}
            commands.append(entry)
            by_itt[itt] = entry
        elif op == 0x05 and itt in by_itt:
            by_itt[itt]["out"] += data
        elif op == 0x02:
            commands.append({"tmf": bhs[1] & 0x7F})
    rec, shapes = bytearray([0]), set()
    for c in commands:
        if "tmf" in c:
            # TMF codes → EngineFuzz's list (abort task, abort task set, clear task set,
            # clear ACA, LU reset, target warm reset, target cold reset).
            pick = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 5, 7: 6}.get(c["tmf"], 9)
            rec += bytes([0x40, 1, pick]) + b"\0\0\0\0"
            continue
        shape = (c["cdb"][0], c["cdb"][1] & 0x1F if len(c["cdb"]) > 1 else 0, c["write"])
        if shape in shapes or len(shapes) >= 24:
            continue
        shapes.add(shape)
        attr = c["attr"] if c["attr"] < 4 else 1
        out = bytes(c["out"][:1024])  # the rest is padded by the harness
        out_len = min(len(c["out"]), 0xFFFF) if c["write"] else 0
        in_cap = min(c["expected"], 0xFFFF) if c["read"] else 0
        rec += bytes([attr << 3, len(c["cdb"])]) + c["cdb"] + struct.pack(">H", out_len)
        rec += out if out_len else b""
        rec += struct.pack(">H", in_cap)
    if shapes:
        write_seed("engine", label, bytes(rec))


# ---- TCMU ring images ----------------------------------------------------------------
MAILBOX = 128      # sizeof(struct tcmu_mailbox) == CMDR_OFF
CMD_ENTRY = 112    # sizeof(struct tcmu_cmd_entry)
IOV_OFF = 48       # offsetof(struct tcmu_cmd_entry, req.iov)
OP_PAD, OP_CMD, OP_TMR = 0, 1, 2
CAP_OOOC, CAP_READ_LEN, CAP_TMR = 1, 2, 4


class Ring:
    def __init__(self, ring_bytes, data_bytes, flags):
        self.size = ring_bytes - MAILBOX
        self.data = ring_bytes
        self.m = bytearray(ring_bytes + data_bytes)
        struct.pack_into("<HHII", self.m, 0, 2, flags, MAILBOX, self.size)
        self.head = 0
        self.next_block = 0

    def put(self, entry):
        if self.head + len(entry) > self.size:  # the kernel pads to the ring end and wraps
            pad = self.size - self.head
            struct.pack_into("<IHBB", self.m, MAILBOX + self.head, pad | OP_PAD, 0, 0, 0)
            self.head = 0
        off = MAILBOX + self.head
        self.m[off:off + len(entry)] = entry
        self.head = (self.head + len(entry)) % self.size
        return off

    def block(self, length):
        at = self.data + self.next_block
        self.next_block += (length + 511) & ~511
        return at

    def command(self, cmd_id, cdb, lengths, bidi=()):
        # Sized like tcmu_cmd_get_cmd_size: max(offsetof(req.iov[n]), sizeof(entry)) + CDB.
        iovs = [(self.block(n), n) for n in lengths] + [(self.block(n), n) for n in bidi]
        base = max(IOV_OFF + 16 * len(iovs), CMD_ENTRY)
        size = (base + len(cdb) + 7) & ~7
        e = bytearray(size)
        struct.pack_into("<IHBB", e, 0, size | OP_CMD, cmd_id, 0, 0)
        struct.pack_into("<III", e, 8, len(lengths), len(bidi), 0)
        for i, (b, n) in enumerate(iovs):
            struct.pack_into("<QQ", e, IOV_OFF + 16 * i, b, n)
        e[base:base + len(cdb)] = cdb
        cdb_off = MAILBOX + (self.head if self.head + size <= self.size else 0) + base
        struct.pack_into("<Q", e, 24, cdb_off)
        self.put(e)

    def tmr(self, tmr_type, ids):
        size = (32 + 2 * len(ids) + 7) & ~7
        e = bytearray(size)
        struct.pack_into("<IHBBBBBBI", e, 0, size | OP_TMR, 0, 0, 0, tmr_type, 0, 0, 0, len(ids))
        for i, cid in enumerate(ids):
            struct.pack_into("<H", e, 32 + 2 * i, cid)
        self.put(e)

    def image(self, tail=0):
        struct.pack_into("<I", self.m, 12, self.head)
        struct.pack_into("<I", self.m, 64, tail)
        return bytes(self.m)


def read10(lba, n):
    return bytes([0x28, 0]) + lba.to_bytes(4, "big") + bytes([0]) + n.to_bytes(2, "big") + bytes([0])


def write10(lba, n):
    return bytes([0x2A, 0]) + lba.to_bytes(4, "big") + bytes([0]) + n.to_bytes(2, "big") + bytes([0])


def ring_seeds():
    # Mixed traffic with every capability: reads, writes over two iovecs, a TUR, a TMR
    # aborting a command still on the ring, an INQUIRY.
    r = Ring(2048, 2560, CAP_OOOC | CAP_READ_LEN | CAP_TMR)
    r.command(1, read10(0, 1), [512])
    r.command(2, write10(8, 2), [512, 512])
    r.command(3, bytes(6), [])
    r.tmr(1, [2])
    r.command(4, bytes([0x12, 0, 0, 0, 96, 0]), [96])
    write_seed("tcmu-ring", "mixed", bytes([0]) + r.image())
    write_seed("tcmu-ring", "mixed-fast-reads", bytes([4]) + r.image())
    # In-order completion only (no CAP_OOOC), two workers, a bidirectional XDWRITEREAD(10)
    # and a variable-length CDB (0x7F, additional length 0x18).
    r = Ring(1024, 2048, CAP_READ_LEN)
    r.command(7, bytes([0x53, 0]) + (0).to_bytes(4, "big") + bytes([0, 0, 1, 0]), [512], bidi=[512])
    r.command(8, bytes([0x7F, 0, 0, 0, 0, 0, 0, 0x18, 0, 0x0D]) + bytes(22), [512])
    r.command(9, read10(3, 1), [512])
    write_seed("tcmu-ring", "in-order-bidi-varlen", bytes([8]) + r.image())
    # Commands queued near the ring end: a PAD fills it and the ring wraps. The reader
    # starts at the tail the previous handler left.
    r = Ring(600, 2048, CAP_OOOC | CAP_READ_LEN)
    r.head = 256
    r.command(11, read10(0, 2), [1024])
    r.command(12, write10(2, 1), [512])
    write_seed("tcmu-ring", "wrap-with-pad", bytes([0]) + r.image(tail=256))
    # An unknown opcode (answered with TCMU_UFLAG_UNKNOWN_OP) between commands.
    r = Ring(512, 1024, CAP_OOOC)
    r.command(21, bytes(6), [])
    off = r.put(bytearray(16))
    struct.pack_into("<IHBB", r.m, off, 16 | 5, 0, 0, 0)
    r.command(22, read10(1, 1), [512])
    write_seed("tcmu-ring", "unknown-opcode", bytes([0]) + r.image())


def cdb_length(opcode):
    return {0: 6, 1: 10, 2: 10, 3: 16, 4: 16, 5: 12}.get(opcode >> 5, 10)


def run(cmd, env=None):
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
                   env=dict(os.environ, **(env or {})))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swift-targetd", default=os.path.join(HERE, ".build", "debug", "swift-targetd"))
    ap.add_argument("--keep", help="also write the raw streams here")
    ap.add_argument("--ring-only", action="store_true", help="only lay out the tcmu-ring seeds")
    args = ap.parse_args()
    ring_seeds()
    if args.ring_only:
        return 0
    work = tempfile.mkdtemp(prefix="swtgt-seeds.")
    # Every "Simple" test of iscsi-test-cu's SCSI family (one CDB shape each), a few more.
    listing = subprocess.run(["iscsi-test-cu", "-l"], capture_output=True, text=True).stdout.split()
    tests = [t for t in listing if t.startswith("SCSI.") and t.endswith(".Simple") and "MultipathIO" not in t]
    tests += ["SCSI.Inquiry.Standard", "SCSI.Inquiry.SupportedVPD", "SCSI.ModeSense6.AllPages",
              "SCSI.ReportSupportedOpcodes.OneCommand", "iSCSI.iSCSITMF.AbortTaskSimpleAsync"]
    digest_tests = ["SCSI.Read10.Simple", "SCSI.Write10.Simple", "SCSI.Unmap.Simple", "SCSI.CompareAndWrite.Simple"]
    setups = [
        ("plain", OPEN_TARGET, [], "", "", False, 0),
        ("chap", CHAP_TARGET, ["--chap", f"{CHAP_USER}:{CHAP_SECRET}"], f"{CHAP_USER}%{CHAP_SECRET}@", "", False, 0),
        ("mutual", CHAP_TARGET, ["--chap", f"{CHAP_USER}:{CHAP_SECRET}", "--mutual-chap", f"{TARGET_USER}:{TARGET_SECRET}"],
         f"{CHAP_USER}%{CHAP_SECRET}@", f"?target_user={TARGET_USER}&target_password={TARGET_SECRET}", False, 0),
        ("digest", OPEN_TARGET, ["--digests", "CRC32C"], "", "?header_digest=crc32c", True, 4),
    ]
    try:
        for label, iqn, extra, userinfo, query, digest, setup in setups:
            port = 15000 + os.getpid() % 1000
            disk = os.path.join(work, f"{label}.img")
            daemon = subprocess.Popen([args.swift_targetd, "serve", "--listen", f"127.0.0.1:{port}", "--target", iqn,
                                       "--lun", f"sparse:{disk},size=64M", "--nop-interval", "0",
                                       "--log-level", "error"] + extra,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(100):
                    try:
                        socket.create_connection(("127.0.0.1", port)).close()
                        break
                    except OSError:
                        time.sleep(0.1)
                proxy = Recorder(port)
                base = f"iscsi://{userinfo}127.0.0.1:{proxy.port}"
                steps = [
                    ("ls", ["iscsi-ls", "-s", f"{base}{query}"]),
                    ("inq", ["iscsi-inq", f"{base}/{iqn}/0{query}"]),
                    ("vpd83", ["iscsi-inq", "-e", "1", "-c", "0x83", f"{base}/{iqn}/0{query}"]),
                    ("cap16", ["iscsi-readcapacity16", f"{base}/{iqn}/0{query}"]),
                ]
                if label in ("plain", "digest"):
                    for t in tests if label == "plain" else digest_tests:
                        steps.append((t.split(".", 1)[1].replace(".", "-").lower(),
                                      ["iscsi-test-cu", "--dataloss", f"--test={t}", f"{base}/{iqn}/0{query}"]))
                for name, cmd in steps:
                    run(cmd)
                    for i, s in enumerate(proxy.take()):
                        tag = f"{label}-{name}-{i}"
                        if args.keep:
                            os.makedirs(args.keep, exist_ok=True)
                            open(os.path.join(args.keep, tag + ".bin"), "wb").write(s)
                        seeds_from(tag, s, digest, setup)
            finally:
                daemon.terminate()
                daemon.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for t in ("pdu", "login", "text-keys", "engine"):
        d = os.path.join(CORPUS, t)
        files = os.listdir(d) if os.path.isdir(d) else []
        print(f"{t}: {len(files)} seeds, {sum(os.path.getsize(os.path.join(d, f)) for f in files)} bytes")


if __name__ == "__main__":
    sys.exit(main())
