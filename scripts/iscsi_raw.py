"""A raw-socket iSCSI initiator for the project's scripts: just enough PDUs (RFC 7143 §11)
to log in without authentication and send SCSI commands byte by byte, so a test can send
what no real initiator would and read every field of the answer."""
import socket
import struct


def keys(pairs):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


def pad4(data):
    return data + b"\0" * ((4 - len(data) % 4) % 4)


def login_pdu(csg, nsg, transit, data, isid=0x00023D000001, itt=0, cmdsn=0, exp_statsn=0, cont=False):
    flags = (0x80 if transit else 0) | (0x40 if cont else 0) | (csg << 2) | nsg
    bhs = struct.pack(">BBBBB3s6sHIHHII16s", 0x43, flags, 0, 0, 0, len(data).to_bytes(3, "big"),
                      isid.to_bytes(6, "big"), 0, itt, 0, 0, cmdsn, exp_statsn, b"\0" * 16)
    return bhs + pad4(data)


def scsi_command(cdb, edtl, itt, cmdsn, read=False, write=False, final=True, ahs=b"", data=b""):
    flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | 0x01
    bhs = struct.pack(">BBHB3sQIIII16s", 0x01, flags, 0, len(ahs) // 4, len(data).to_bytes(3, "big"),
                      0, itt, edtl, cmdsn, 0, cdb.ljust(16, b"\0"))
    return bhs + ahs + pad4(data)


def recv_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed by the target")
        out += chunk
    return out


def read_pdu(sock):
    bhs = recv_exact(sock, 48)
    ahs = bhs[4] * 4
    dlen = int.from_bytes(bhs[5:8], "big")
    rest = recv_exact(sock, ahs + (dlen + 3) // 4 * 4)
    return bhs, rest[ahs:ahs + dlen]


def parse_keys(data):
    return dict(item.split("=", 1) for item in data.decode(errors="replace").split("\0") if "=" in item)


def connect(port, source="127.0.0.1"):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((source, 0))
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def abort(sock):
    """Closes with RST: no TIME_WAIT left on the client side over many connections."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


OPERATIONAL = [("HeaderDigest", "None"), ("DataDigest", "None"), ("ImmediateData", "Yes"),
               ("InitialR2T", "Yes"), ("MaxRecvDataSegmentLength", "262144"),
               ("MaxBurstLength", "1048576"), ("FirstBurstLength", "262144")]


def login_none(port, target, initiator, isid=0x00023D000001, answers=None):
    """AuthMethod=None login to full feature phase; returns (socket, next CmdSN). The keys
    of every login response are added to `answers` (a dict) when one is given."""
    sock = connect(port)
    sock.sendall(login_pdu(0, 1, True, keys([("InitiatorName", initiator), ("TargetName", target),
                                             ("SessionType", "Normal"), ("AuthMethod", "None")]), isid=isid))
    bhs, body = read_pdu(sock)
    if bhs[36] != 0:
        raise RuntimeError(f"login refused {bhs[36]:02x}/{bhs[37]:02x}")
    if answers is not None:
        answers.update(parse_keys(body))
    negotiated = {k for k, _ in OPERATIONAL}
    sock.sendall(login_pdu(1, 3, True, keys(OPERATIONAL), isid=isid))
    for _ in range(4):
        bhs, body = read_pdu(sock)
        if bhs[36] != 0:
            raise RuntimeError(f"login refused {bhs[36]:02x}/{bhs[37]:02x}")
        if answers is not None:
            answers.update(parse_keys(body))
        if bhs[1] & 0x80 and (bhs[1] & 0x03) == 3:
            return sock, 0  # the leading login was immediate: CmdSN stays (§3.2.2.1)
        # Accept what the target offered; declarations need no answer, keys once negotiated stay.
        offered = [(k, v) for k, v in parse_keys(body).items()
                   if k not in negotiated | {"TargetPortalGroupTag", "TargetAlias", "MaxRecvDataSegmentLength"}]
        negotiated |= {k for k, _ in offered}
        sock.sendall(login_pdu(1, 3, True, keys(offered), isid=isid))
    raise RuntimeError("login did not reach full feature phase")


def command(sock, cdb, edtl, itt, cmdsn, read=True):
    """Sends one SCSI command without data-out; returns (status, data-in, sense)."""
    sock.sendall(scsi_command(cdb, edtl, itt, cmdsn, read=read))
    data = b""
    while True:
        bhs, body = read_pdu(sock)
        opcode = bhs[0] & 0x3F
        if opcode == 0x25:  # Data-In
            data += body
            if bhs[1] & 0x01:  # S bit: status in this PDU
                return bhs[3], data, b""
        elif opcode == 0x21:  # SCSI Response
            sense = body[2:] if len(body) >= 2 else b""
            return bhs[3], data, sense
