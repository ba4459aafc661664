#!/usr/bin/env python3
"""Copy offload benchmark helper for scripts/xcopy-bench.sh, on scripts/iscsi_raw.py.

  xcopy_bench.py xcopy PORT IQN MIB   EXTENDED COPY(LID1) of MIB MiB, LUN 0 LBA 0 -> LUN 1 LBA 0
  xcopy_bench.py rw    PORT IQN MIB   the same copy by the initiator: READ(16) then WRITE(16)
  xcopy_bench.py probe PORT IQN       the designators and copy operating parameters

xcopy and rw end with SYNCHRONIZE CACHE on LUN 1 (not timed) and print one JSON line:
seconds (the copy commands only), iscsi_bytes (PDU bytes this session sent plus received
during the copy), lo_bytes (the `lo` tx counter of /proc/net/dev over the same span: every
TCP/IP byte on the loopback, headers included) and what was sent."""
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsi_raw  # noqa: E402

GOOD, CHECK_CONDITION = 0x00, 0x02


def lo_tx_bytes():
    for line in open("/proc/net/dev"):
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[8])
    return 0


class SCSIFailure(Exception):
    def __init__(self, what, status, sense):
        self.status, self.sense = status, sense
        key = sense[2] & 0x0F if len(sense) > 2 else None
        asc = (sense[12], sense[13]) if len(sense) > 13 else None
        text = f"{what}: status {status:#04x}"
        if key is not None:
            text += f" sense key {key:#x}"
        if asc:
            text += f" ASC/ASCQ {asc[0]:02x}/{asc[1]:02x}"
        text += f" sense {sense.hex()}"
        super().__init__(text)


class Session:
    """One logged-in session with commands to any LUN, Data-In gathered by offset and
    Data-Out sent as immediate data, then on R2T, within the negotiated limits."""

    def __init__(self, port, target, initiator="iqn.2026-11.org.swifttarget:xcopy-bench"):
        answers = {}
        self.sock, self.cmdsn = iscsi_raw.login_none(port, target, initiator, answers=answers)
        self.sock.settimeout(300)
        ours = dict(iscsi_raw.OPERATIONAL)

        def num(key):
            return min(int(ours[key]), int(answers.get(key, ours[key])))

        self.max_burst = num("MaxBurstLength")
        self.first_burst = num("FirstBurstLength")
        self.immediate = answers.get("ImmediateData", "Yes") == "Yes"
        self.initial_r2t = answers.get("InitialR2T", "Yes") == "Yes" or ours["InitialR2T"] == "Yes"
        # The target's declaration bounds what we send in one PDU (8192 when it declares none).
        self.target_mrdsl = int(answers.get("MaxRecvDataSegmentLength", 8192))
        self.itt = 0x1000
        self.exp_statsn = 0
        self.sent = self.received = 0

    # --- PDUs -----------------------------------------------------------------------
    def _send(self, data):
        self.sock.sendall(data)
        self.sent += len(data)

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:], n - got)
            if k == 0:
                raise ConnectionError("closed by the target")
            got += k
        self.received += n
        return buf

    def _read_pdu(self, data_in_buffer=None):
        """One PDU. A Data-In's data goes straight into `data_in_buffer` at its offset."""
        bhs = bytes(self._recv_exact(48))
        ahs = bhs[4] * 4
        dlen = int.from_bytes(bhs[5:8], "big")
        padded = (dlen + 3) // 4 * 4
        if ahs:
            self._recv_exact(ahs)
        if (bhs[0] & 0x3F) == 0x25 and data_in_buffer is not None:
            offset = int.from_bytes(bhs[40:44], "big")
            if offset + dlen > len(data_in_buffer):
                raise RuntimeError(f"Data-In past the buffer: offset {offset} length {dlen}")
            view = memoryview(data_in_buffer)[offset:offset + dlen]
            got = 0
            while got < dlen:
                k = self.sock.recv_into(view[got:], dlen - got)
                if k == 0:
                    raise ConnectionError("closed by the target")
                got += k
            self.received += dlen
            if padded > dlen:
                self._recv_exact(padded - dlen)
            return bhs, None
        body = bytes(self._recv_exact(padded))[:dlen] if padded else b""
        return bhs, body

    @staticmethod
    def _lun(lun):
        return bytes([0, lun, 0, 0, 0, 0, 0, 0])  # peripheral device addressing, LUN < 256

    def _command_pdu(self, lun, cdb, edtl, itt, read, write, data=b"", final=True):
        flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 0x01
        bhs = struct.pack(">BBHB3s8sIIII16s", 0x01, flags, 0, 0, len(data).to_bytes(3, "big"),
                          self._lun(lun), itt, edtl, self.cmdsn, self.exp_statsn, cdb.ljust(16, b"\0"))
        return bhs + iscsi_raw.pad4(data)

    def _data_out(self, lun, itt, ttt, datasn, offset, data, final):
        bhs = struct.pack(">BBHB3s8sIIIIIIII", 0x05, 0x80 if final else 0, 0, 0, len(data).to_bytes(3, "big"),
                          self._lun(lun), itt, ttt, 0, self.exp_statsn, 0, datasn, offset, 0)
        return bhs + iscsi_raw.pad4(data)

    def _send_burst(self, lun, itt, ttt, offset, data):
        """Data-Out PDUs for data[offset:offset+len] of one burst, each within the target's MRDSL."""
        datasn = 0
        end = offset + len(data)
        at = offset
        mv = memoryview(data)
        while at < end:
            n = min(self.target_mrdsl, end - at)
            self._send(self._data_out(lun, itt, ttt, datasn, at, bytes(mv[at - offset:at - offset + n]), at + n == end))
            datasn += 1
            at += n

    def command(self, lun, cdb, read_length=0, data_out=b"", what=None, raise_on_error=True):
        """Runs one command; returns (status, data-in bytes, sense)."""
        itt = self.itt
        self.itt = (self.itt + 1) & 0xFFFFFFFF or 1
        write = len(data_out) > 0
        edtl = len(data_out) if write else read_length
        buf = bytearray(read_length) if read_length else None
        immediate = b""
        if write and self.immediate:
            immediate = bytes(data_out[:min(self.first_burst, self.target_mrdsl)])
        self._send(self._command_pdu(lun, cdb, edtl, itt, read=read_length > 0, write=write, data=immediate))
        self.cmdsn += 1
        sent = len(immediate)
        if write and not self.initial_r2t and sent < min(self.first_burst, len(data_out)):
            unsolicited = bytes(data_out[sent:min(self.first_burst, len(data_out))])
            self._send_burst(lun, itt, 0xFFFFFFFF, sent, unsolicited)
        received = 0
        while True:
            bhs, body = self._read_pdu(buf)
            opcode = bhs[0] & 0x3F
            if opcode == 0x25:  # Data-In
                received += int.from_bytes(bhs[5:8], "big")
                if bhs[1] & 0x01:  # S: status in this PDU
                    self.exp_statsn = int.from_bytes(bhs[24:28], "big") + 1
                    status, sense = bhs[3], b""
                    break
            elif opcode == 0x31:  # R2T
                ttt = int.from_bytes(bhs[20:24], "big")
                offset = int.from_bytes(bhs[40:44], "big")
                length = int.from_bytes(bhs[44:48], "big")
                if offset + length > len(data_out) or length > self.max_burst:
                    raise RuntimeError(f"R2T beyond the data: offset {offset} length {length}")
                self._send_burst(lun, itt, ttt, offset, memoryview(data_out)[offset:offset + length])
            elif opcode == 0x21:  # SCSI Response
                self.exp_statsn = int.from_bytes(bhs[24:28], "big") + 1
                if bhs[2] != 0:
                    raise RuntimeError(f"iSCSI response {bhs[2]:#x} to {cdb.hex()}")
                status = bhs[3]
                sense = body[2:2 + int.from_bytes(body[0:2], "big")] if len(body) >= 2 else b""
                break
            elif opcode == 0x20:  # NOP-In: answer a ping the target wants answered
                ttt = int.from_bytes(bhs[20:24], "big")
                if ttt != 0xFFFFFFFF:
                    nop = struct.pack(">BBHB3s8sIIII16s", 0x40 | 0x00, 0x80, 0, 0, b"\0\0\0", bhs[8:16],
                                      0xFFFFFFFF, ttt, self.cmdsn, self.exp_statsn, b"")
                    self._send(nop)
            elif opcode == 0x32:  # Async message: ignore
                continue
            else:
                raise RuntimeError(f"unexpected PDU opcode {opcode:#x}")
        data = bytes(buf[:received]) if buf is not None and received < read_length else (bytes(buf) if buf else b"")
        if raise_on_error and status != GOOD:
            raise SCSIFailure(what or f"CDB {cdb.hex()}", status, sense)
        return status, data, sense

    def clear_unit_attentions(self, luns):
        """TEST UNIT READY until GOOD: the power-on unit attention of a fresh daemon (and
        any other) is taken here, not by a measured command."""
        for lun in luns:
            for _ in range(8):
                status, _, sense = self.command(lun, bytes(6), what=f"TEST UNIT READY LUN {lun}", raise_on_error=False)
                if status == GOOD:
                    break
                if not (status == CHECK_CONDITION and len(sense) > 2 and sense[2] & 0x0F == 0x6):
                    raise SCSIFailure(f"TEST UNIT READY LUN {lun}", status, sense)

    def close(self):
        """Logout (close the session), then the socket; RST if the target does not answer."""
        try:
            bhs = struct.pack(">BBHB3s8sIHHII16s", 0x46, 0x80, 0, 0, b"\0\0\0", bytes(8),
                              self.itt, 0, 0, self.cmdsn, self.exp_statsn, b"")
            self._send(bhs)
            self.sock.settimeout(5)
            while (self._read_pdu()[0][0] & 0x3F) != 0x26:
                pass
            self.sock.close()
        except (OSError, ConnectionError):
            iscsi_raw.abort(self.sock)

    # --- SCSI commands ------------------------------------------------------------
    def naa(self, lun):
        """The 16-byte NAA designator (LU association) of VPD page 0x83 and its header."""
        _, page, _ = self.command(lun, bytes([0x12, 0x01, 0x83, 0x10, 0x00, 0x00]), read_length=4096,
                                  what=f"INQUIRY VPD 0x83 LUN {lun}")
        end = 4 + int.from_bytes(page[2:4], "big")
        at = 4
        while at + 4 <= end:
            code_set, piv_assoc_type, length = page[at] & 0x0F, page[at + 1], page[at + 3]
            if (piv_assoc_type & 0x0F) == 0x03 and (piv_assoc_type >> 4) & 0x03 == 0 and length == 16:
                return code_set, page[at + 4:at + 20]
            at += 4 + length
        raise RuntimeError(f"LUN {lun}: no 16-byte NAA designator in VPD 0x83: {page[:end].hex()}")

    def block_size_and_count(self, lun):
        _, d, _ = self.command(lun, bytes([0x9E, 0x10]) + bytes(8) + (32).to_bytes(4, "big") + bytes(2),
                               read_length=32, what=f"READ CAPACITY(16) LUN {lun}")
        return int.from_bytes(d[8:12], "big"), int.from_bytes(d[0:8], "big") + 1

    def operating_parameters(self, lun):
        cdb = bytes([0x84, 0x03, 0x00]) + bytes(7) + (1024).to_bytes(4, "big") + bytes(2)
        _, d, _ = self.command(lun, cdb, read_length=1024, what="RECEIVE COPY RESULTS OPERATING PARAMETERS")
        u16 = lambda o: int.from_bytes(d[o:o + 2], "big")  # noqa: E731
        u32 = lambda o: int.from_bytes(d[o:o + 4], "big")  # noqa: E731
        return {"snlid": d[4] & 1, "max_target_descriptors": u16(8), "max_segment_descriptors": u16(10),
                "max_descriptor_list_length": u32(12), "max_segment_length": u32(16),
                "max_inline_data_length": u32(20), "total_concurrent_copies": u16(34),
                "data_segment_granularity": 1 << d[37] if d[37] < 32 else d[37],
                "descriptor_types": d[44:44 + d[43]].hex()}

    def copy_status(self, lun, list_id):
        cdb = bytes([0x84, 0x00, list_id]) + bytes(7) + (64).to_bytes(4, "big") + bytes(2)
        _, d, _ = self.command(lun, cdb, read_length=64, what=f"RECEIVE COPY RESULTS COPY STATUS list {list_id}")
        units = {0x00: 1, 0xF1: 1 << 10, 0xF2: 1 << 20, 0xF3: 1 << 30}
        return {"status": d[4] & 0x7F, "hdd": d[4] >> 7, "segments": int.from_bytes(d[5:7], "big"),
                "bytes": int.from_bytes(d[8:12], "big") * units.get(d[7], 0), "units": d[7]}

    def synchronize_cache(self, lun):
        self.command(lun, bytes([0x91, 0x00]) + bytes(14), what=f"SYNCHRONIZE CACHE(16) LUN {lun}")


def rw16(opcode, lba, blocks):
    return bytes([opcode, 0]) + lba.to_bytes(8, "big") + blocks.to_bytes(4, "big") + bytes(2)


def identification_descriptor(code_set, naa, block_length):
    """Target descriptor 0xE4 (SPC-4 6.4.6.2): LU ID TYPE 00b, NUL 0, peripheral type 0
    (block), the VPD 0x83 designation descriptor (NAA, LU association) padded to 20 bytes,
    then the block device parameters (SBC-3 6.x: DISK BLOCK LENGTH in bytes 29..31)."""
    d = bytes([0xE4, 0x00, 0x00, 0x00, code_set, 0x03, 0x00, 16]) + naa + bytes(4)
    d += bytes([0]) + block_length.to_bytes(3, "big")
    assert len(d) == 32
    return d


def block_segment(src_index, dst_index, blocks, src_lba, dst_lba):
    """Segment descriptor 0x02, block device to block device (SPC-4 6.4.6.5): 28 bytes."""
    d = bytes([0x02, 0x00]) + (0x18).to_bytes(2, "big") + src_index.to_bytes(2, "big") + dst_index.to_bytes(2, "big")
    d += bytes(2) + blocks.to_bytes(2, "big") + src_lba.to_bytes(8, "big") + dst_lba.to_bytes(8, "big")
    assert len(d) == 28
    return d


def parameter_list(list_id, usage, targets, segments):
    """LID1 parameter list header (SPC-4 6.4.3): LIST ID, STR 0, LIST ID USAGE, PRIORITY 0."""
    t, s = b"".join(targets), b"".join(segments)
    header = bytes([list_id, (usage & 3) << 3]) + len(t).to_bytes(2, "big") + bytes(4)
    header += len(s).to_bytes(4, "big") + bytes(4)
    return header + t + s


def extended_copy_cdb(length):
    return bytes([0x83, 0x00]) + bytes(8) + length.to_bytes(4, "big") + bytes(2)


def plan_segments(total_blocks, block_size, params, segment_blocks=None):
    per = min(0xFFFF, params["max_segment_length"] // block_size if params["max_segment_length"] else 0xFFFF)
    if segment_blocks:
        per = min(per, segment_blocks)
    gran = params["data_segment_granularity"] // block_size if params["data_segment_granularity"] > block_size else 1
    per -= per % gran
    if per <= 0:
        raise RuntimeError(f"no usable segment size from {params}")
    segs, lba = [], 0
    while lba < total_blocks:
        n = min(per, total_blocks - lba)
        segs.append((lba, n))
        lba += n
    return segs


def do_xcopy(s, mib, args):
    bs0, count0 = s.block_size_and_count(0)
    bs1, count1 = s.block_size_and_count(1)
    if bs0 != bs1:
        raise RuntimeError(f"block sizes differ: {bs0} / {bs1}")
    total_blocks = mib * (1 << 20) // bs0
    params = s.operating_parameters(0)
    (cs0, naa0), (cs1, naa1) = s.naa(0), s.naa(1)
    if naa0 == naa1:
        raise RuntimeError(f"LUN 0 and LUN 1 report the same NAA {naa0.hex()}")
    targets = [identification_descriptor(cs0, naa0, bs0), identification_descriptor(cs1, naa1, bs1)]
    segments = plan_segments(total_blocks, bs0, params, args.get("segment_blocks"))
    per_list = params["max_segment_descriptors"] or 1
    room = (params["max_descriptor_list_length"] - 32 * len(targets)) // 28
    per_list = max(1, min(per_list, room))
    usage = 0x00  # LIST ID USAGE 00b: held, so COPY STATUS can confirm what was copied
    lists = []
    for i in range(0, len(segments), per_list):
        chunk = segments[i:i + per_list]
        lists.append(parameter_list((i // per_list + 1) & 0xFF, usage,
                                    targets, [block_segment(0, 1, n, lba, lba) for lba, n in chunk]))
    before = (s.sent, s.received)
    lo0 = lo_tx_bytes()
    t0 = time.perf_counter()
    for pl in lists:
        s.command(0, extended_copy_cdb(len(pl)), data_out=pl, what="EXTENDED COPY")
    seconds = time.perf_counter() - t0
    lo1 = lo_tx_bytes()
    iscsi_bytes = s.sent - before[0] + s.received - before[1]
    statuses = []
    for n, pl in enumerate(lists):
        st = s.copy_status(0, pl[0])
        chunk = segments[n * per_list:(n + 1) * per_list]
        want = sum(b for _, b in chunk) * bs0
        if st["status"] != 1 or st["segments"] != len(chunk) or st["bytes"] != want:
            raise RuntimeError(f"COPY STATUS of list {pl[0]}: {st}, expected {len(chunk)} segments, {want} bytes")
        statuses.append(st)
    s.synchronize_cache(1)
    return {"method": "xcopy", "seconds": seconds, "iscsi_bytes": iscsi_bytes, "lo_bytes": lo1 - lo0,
            "commands": len(lists), "segments": len(segments), "segment_blocks": segments[0][1],
            "parameter_list_bytes": [len(p) for p in lists], "operating_parameters": params,
            "naa": [naa0.hex(), naa1.hex()], "copy_status": statuses[0],
            "first_cdb": extended_copy_cdb(len(lists[0])).hex(), "first_list_head": lists[0][:16 + 64 + 28].hex()}


def do_rw(s, mib, args):
    bs, _ = s.block_size_and_count(0)
    chunk = args.get("chunk_kib", 1024) * 1024
    total = mib * (1 << 20)
    before = (s.sent, s.received)
    lo0 = lo_tx_bytes()
    t0 = time.perf_counter()
    at = 0
    while at < total:
        n = min(chunk, total - at)
        _, data, _ = s.command(0, rw16(0x88, at // bs, n // bs), read_length=n, what="READ(16) LUN 0")
        if len(data) != n:
            raise RuntimeError(f"READ(16) at {at}: {len(data)} bytes of {n}")
        s.command(1, rw16(0x8A, at // bs, n // bs), data_out=data, what="WRITE(16) LUN 1")
        at += n
    seconds = time.perf_counter() - t0
    lo1 = lo_tx_bytes()
    iscsi_bytes = s.sent - before[0] + s.received - before[1]
    s.synchronize_cache(1)
    return {"method": "rw", "seconds": seconds, "iscsi_bytes": iscsi_bytes, "lo_bytes": lo1 - lo0,
            "chunk_bytes": chunk, "commands": 2 * ((total + chunk - 1) // chunk),
            "max_burst": s.max_burst, "first_burst": s.first_burst, "immediate": s.immediate,
            "initial_r2t": s.initial_r2t, "target_mrdsl": s.target_mrdsl}


def do_probe(s, _mib, _args):
    out = {"operating_parameters": s.operating_parameters(0)}
    for lun in (0, 1):
        cs, naa = s.naa(lun)
        out[f"lun{lun}"] = {"code_set": cs, "naa": naa.hex(), "block_size_count": s.block_size_and_count(lun)}
    return out


def main(argv):
    if len(argv) < 3 or argv[0] not in ("xcopy", "rw", "probe"):
        sys.exit(__doc__)
    mode, port, target = argv[0], int(argv[1]), argv[2]
    mib = int(argv[3]) if len(argv) > 3 else 0
    args = {}
    for a in argv[4:]:
        k, _, v = a.partition("=")
        args[k.lstrip("-").replace("-", "_")] = int(v)
    s = Session(port, target)
    try:
        s.clear_unit_attentions((0, 1))
        result = {"xcopy": do_xcopy, "rw": do_rw, "probe": do_probe}[mode](s, mib, args)
    except SCSIFailure as e:
        print(json.dumps({"method": mode, "error": str(e)}))
        return 1
    finally:
        s.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
