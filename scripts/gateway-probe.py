#!/usr/bin/env python3
"""What one gateway tells an initiator about itself (SPC-4 ALUA): logs in to TARGET on
127.0.0.1:PORT and prints one JSON line with the portal group tag of the login response,
the VPD 0x83 designators (NAA of the LU, relative target port, target port group, target
port name) and the groups of REPORT TARGET PORT GROUPS with their states.

Usage: gateway-probe.py PORT TARGET
"""
import json
import sys

from iscsi_raw import command, login_none

INITIATOR = "iqn.2026-12.org.example:gateway-probe"


def designators(page):
    out = {}
    body = page[4:4 + int.from_bytes(page[2:4], "big")]
    i = 0
    while i + 4 <= len(body):
        kind, length = body[i + 1] & 0x0F, body[i + 3]
        value = body[i + 4:i + 4 + length]
        if kind == 3:
            out["naa"] = value.hex()
        elif kind == 4:
            out["relativeTargetPort"] = int.from_bytes(value[2:4], "big")
        elif kind == 5:
            out["targetPortGroup"] = int.from_bytes(value[2:4], "big")
        elif kind == 8 and (body[i + 1] >> 4) & 3 == 1:
            out["targetPortName"] = value.rstrip(b"\0").decode()
        i += 4 + length
    return out


def main():
    port, target = int(sys.argv[1]), sys.argv[2]
    answers = {}
    sock, cmdsn = login_none(port, target, INITIATOR, answers=answers)
    tag = answers.get("TargetPortalGroupTag")
    # TEST UNIT READY until the power-on unit attention is consumed.
    for itt in range(1, 4):
        status, _, _ = command(sock, bytes(6), 0, itt, cmdsn, read=False)
        cmdsn += 1
        if status == 0:
            break
    status, vpd, _ = command(sock, bytes([0x12, 1, 0x83, 0, 255, 0]), 255, 10, cmdsn)
    cmdsn += 1
    status2, rtpg, _ = command(sock, bytes([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]), 1024, 11, cmdsn)
    groups = []
    body = rtpg[4:4 + int.from_bytes(rtpg[0:4], "big")]
    i = 0
    while i + 8 <= len(body):
        count = body[i + 7]
        ports = [int.from_bytes(body[i + 8 + 4 * p + 2:i + 8 + 4 * p + 4], "big") for p in range(count)]
        groups.append({"group": int.from_bytes(body[i + 2:i + 4], "big"), "state": body[i] & 0x0F,
                       "preferred": bool(body[i] & 0x80), "ports": ports})
        i += 8 + 4 * count
    print(json.dumps({"loginTag": tag, "vpdStatus": status, "rtpgStatus": status2, **designators(vpd), "groups": groups}))


if __name__ == "__main__":
    main()
